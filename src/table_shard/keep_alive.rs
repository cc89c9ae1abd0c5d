//! The client side of a peer copy's keep-alive: the first keep-alive that
//! binds the stream to the session (retried), and the task that keeps the
//! session alive while the copy runs.
//!
//! Quirk Q3 on: a lost keep-alive is only logged and the copy goes on; off:
//! the first failure is recorded for the copy (and its workers) to abort.

use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};
use thiserror::Error;

use crate::buggify;
use crate::env::{Env, KeepAliveClient, PeerClient};
use crate::probe::Probe;
use crate::protocol::{KeepAlive, RpcError};
use crate::types::TableShardId;

use super::TableShard;

/// The `tracing` target of this file's events:
/// `shardboot::table_shard::copy`, the module they were written in before it
/// was split. The simulator's trace hash covers event targets, so moving code
/// must not change them.
const TARGET: &str = "shardboot::table_shard::copy";

/// Pause between attempts of the first keep-alive, and between attempts of
/// one vector-party copy: long enough for a transient fault to clear.
pub(super) const RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// Attempts of the first keep-alive before the copy gives up.
const FIRST_KEEP_ALIVE_ATTEMPTS: u32 = 3;
/// Shortest pause between keep-alives, whatever ttl the peer answers.
const MIN_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// Why the keep-alive exchange failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum KeepAliveFailure {
    #[error(transparent)]
    Rpc(RpcError),
    /// The server ended the stream (it swept the session).
    #[error("stream ended by the peer")]
    Ended,
}

impl<E: Env> TableShard<E> {
    /// The first keep-alive binds the stream to the session; retried.
    pub(super) async fn first_keep_alive(
        &self,
        stream: &mut <E::Peer as PeerClient>::KeepAliveStream,
        msg: KeepAlive,
    ) -> Result<Duration, KeepAliveFailure> {
        let mut attempt = 1;
        loop {
            match exchange(stream, msg).await {
                Ok(ttl) => return Ok(ttl),
                Err(failure) => {
                    tracing::info!(target: TARGET,
                        table = %self.id.table,
                        shard = %self.id.shard,
                        attempt,
                        error = %failure,
                        "first_keep_alive_failed"
                    );
                    if attempt >= FIRST_KEEP_ALIVE_ATTEMPTS {
                        return Err(failure);
                    }
                }
            }
            attempt += 1;
            self.env.sleep(RETRY_BACKOFF).await;
        }
    }
}

/// One send and its reply: the ttl the peer answers with.
async fn exchange<K: KeepAliveClient>(
    stream: &mut K,
    msg: KeepAlive,
) -> Result<Duration, KeepAliveFailure> {
    stream.send(msg).await.map_err(KeepAliveFailure::Rpc)?;
    match stream.recv().await {
        Ok(Some(ttl)) => Ok(ttl),
        Ok(None) => Err(KeepAliveFailure::Ended),
        Err(e) => Err(KeepAliveFailure::Rpc(e)),
    }
}

pub(super) struct KeepAliveTask<E: Env> {
    pub(super) env: E,
    pub(super) shard: TableShardId,
    pub(super) stream: <E::Peer as PeerClient>::KeepAliveStream,
    pub(super) msg: KeepAlive,
    pub(super) ttl: Duration,
    pub(super) stop: oneshot::Receiver<()>,
    pub(super) lost: Rc<RefCell<Option<KeepAliveFailure>>>,
    pub(super) abort_on_loss: bool,
}

/// Send a keep-alive every ttl/2 until told to stop; hand the stream back
/// so the copy can end the session. Quirk Q3 on: failures are only logged.
/// Q3 off: the first failure is recorded (the copy aborts) and the loop
/// ends.
pub(super) async fn keep_alive_loop<E: Env>(
    task: KeepAliveTask<E>,
) -> <E::Peer as PeerClient>::KeepAliveStream {
    let KeepAliveTask {
        env,
        shard,
        mut stream,
        msg,
        mut ttl,
        mut stop,
        lost,
        abort_on_loss,
    } = task;
    loop {
        let outcome = {
            // BUGGIFY: a stalled client sends late, though within the ttl.
            let wait = if env.buggify(buggify::KEEP_ALIVE_LATE) {
                ttl * 9 / 10
            } else {
                ttl / 2
            };
            let step = pin!(async {
                env.sleep(wait.max(MIN_KEEP_ALIVE_INTERVAL)).await;
                exchange(&mut stream, msg).await
            });
            match select(step, &mut stop).await {
                Either::Left((result, _)) => Some(result),
                Either::Right(_) => None,
            }
        };
        match outcome {
            None => return stream,
            Some(Ok(answered)) => {
                ttl = answered;
                tracing::debug!(target: TARGET, table = %shard.table, shard = %shard.shard, "keep_alive_sent");
            }
            Some(Err(failure)) => {
                tracing::info!(target: TARGET,
                    table = %shard.table,
                    shard = %shard.shard,
                    error = %failure,
                    aborts_copy = abort_on_loss,
                    "keep_alive_failed"
                );
                Probe::KeepAliveLost.hit();
                if abort_on_loss {
                    *lost.borrow_mut() = Some(failure);
                    return stream;
                }
            }
        }
    }
}
