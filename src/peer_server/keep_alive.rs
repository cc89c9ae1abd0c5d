//! The server side of a session's keep-alive stream: the first message binds
//! the stream to its session, every message refreshes it, and the stream's
//! end removes it (a broken one lingers with quirk Q7 on). A swept session's
//! stream is ended by the server (quirk Q3 off) or answered as if nothing
//! happened (Q3 on).

use std::pin::pin;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};

use crate::env::{Env, Incoming, KeepAliveServer};
use crate::protocol::{KeepAlive, PeerError};
use crate::quirks::Quirk;
use crate::types::SessionId;

use super::server::{PeerServer, TARGET};

/// How a keep-alive loop iteration ended.
enum Step {
    Incoming(Incoming<KeepAlive>),
    /// The session was swept and (Q3 off) the server ends its stream.
    Stop,
    /// The stop switch was dropped without firing: never end from here.
    StopGone,
}

impl<E: Env> PeerServer<E> {
    /// Serve one keep-alive stream until it ends.
    ///
    /// The first message binds the stream to its session (validated like
    /// every request); each message refreshes the session's last-live time
    /// and is answered with its ttl. A clean close removes the session. A
    /// broken stream leaves it (Q7 on: until `acquire_token` reaps it; Q7
    /// off: it is removed too). When the session is swept, the server ends
    /// the stream (Q3 off) or keeps answering as if nothing happened (Q3 on).
    /// A first message that fails validation ends the stream and is returned.
    pub async fn serve_keep_alive(
        &self,
        mut stream: impl KeepAliveServer,
    ) -> Result<(), PeerError> {
        let mut bound: Option<(SessionId, Duration)> = None;
        let mut stop: Option<oneshot::Receiver<()>> = None;
        loop {
            let step = match stop.as_mut() {
                // The stop switch first, so queued messages cannot starve it.
                Some(rx) => match select(rx, pin!(stream.recv())).await {
                    Either::Left((Ok(()), _)) => Step::Stop,
                    Either::Left((Err(oneshot::Canceled), _)) => Step::StopGone,
                    Either::Right((incoming, _)) => Step::Incoming(incoming),
                },
                None => Step::Incoming(stream.recv().await),
            };
            match step {
                Step::StopGone => stop = None,
                Step::Stop => {
                    if let Some((id, _)) = bound {
                        tracing::info!(target: TARGET, session = %id, "keep_alive_ended_by_server");
                    }
                    stream.end();
                    return Ok(());
                }
                Step::Incoming(Incoming::Message(msg)) => {
                    self.sweep_if_fixed();
                    let (id, ttl) = match bound {
                        Some(b) => b,
                        None => match self.bind(&msg) {
                            Ok((id, ttl, rx)) => {
                                bound = Some((id, ttl));
                                stop = Some(rx);
                                (id, ttl)
                            }
                            Err(e) => {
                                tracing::info!(target: TARGET, error = %e, "keep_alive_refused");
                                stream.end();
                                return Err(e);
                            }
                        },
                    };
                    let now = self.inner.env.now();
                    let alive = match self.inner.state.borrow_mut().sessions.get_mut(&id) {
                        Some(s) => {
                            s.info.last_live = now;
                            true
                        }
                        None => false,
                    };
                    if !alive && !self.quirk(Quirk::Q3) {
                        tracing::info!(target: TARGET, session = %id, "keep_alive_ended_by_server");
                        stream.end();
                        return Ok(());
                    }
                    // With Q3 on a swept session is answered all the same: the
                    // client believes its session is alive.
                    stream.reply(ttl);
                }
                Step::Incoming(Incoming::Closed) => {
                    if let Some((id, _)) = bound {
                        self.remove_session(id, "closed");
                    }
                    return Ok(());
                }
                Step::Incoming(Incoming::Broken) => {
                    if let Some((id, _)) = bound {
                        if self.quirk(Quirk::Q7) {
                            tracing::info!(target: TARGET, session = %id, "keep_alive_broken");
                        } else {
                            self.remove_session(id, "broken");
                        }
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Validate the first keep-alive message and bind the stream's stop
    /// switch to its session.
    fn bind(
        &self,
        msg: &KeepAlive,
    ) -> Result<(SessionId, Duration, oneshot::Receiver<()>), PeerError> {
        let node = msg.node.ok_or(PeerError::CallerNotSet)?;
        let id = msg.session.ok_or(PeerError::SessionNotSet)?;
        let mut state = self.inner.state.borrow_mut();
        let session = state
            .sessions
            .get_mut(&id)
            .ok_or(PeerError::InvalidSession(id))?;
        if session.info.node != node {
            return Err(PeerError::Mismatch);
        }
        let (tx, rx) = oneshot::channel();
        session.stop = Some(tx);
        session.info.bound = true;
        tracing::info!(target: TARGET, session = %id, table = %session.info.shard.table,
            shard = %session.info.shard.shard, "keep_alive_bound");
        Ok((id, session.info.ttl, rx))
    }
}
