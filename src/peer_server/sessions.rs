//! Copy sessions on the server side: starting one (refused when not ready,
//! without a caller, for an unknown table, for a caller that already has
//! one for the table shard — quirk Q6 checks and inserts in two critical
//! sections — or, Q9 off, while a job holds the table shard's token),
//! validating the session a request names, and removing sessions: when
//! their keep-alive stream ends, or when they expire (swept on every request
//! with quirk Q7 off, only when a job asks for a token with it on).

use std::time::Duration;

use crate::env::Env;
use crate::probe::Probe;
use crate::protocol::{PeerError, SessionRef, StartSessionReply, StartSessionRequest};
use crate::quirks::Quirk;
use crate::types::{NodeId, SessionId, TableShardId};

use super::server::{PeerServer, Session, SessionInfo, TARGET, show};

impl<E: Env> PeerServer<E> {
    /// Open a copy session for one table shard from one caller.
    ///
    /// Refused when not ready, without a caller, for an unknown table, when
    /// the same caller already has a session for the table shard, or (Q9 off)
    /// while a background job holds the table shard's token.
    pub async fn start_session(
        &self,
        req: StartSessionRequest,
    ) -> Result<StartSessionReply, PeerError> {
        let result = self.start_session_inner(&req).await;
        match &result {
            Ok(reply) => tracing::info!(target: TARGET,
                table = %req.table, shard = %req.shard, session = %reply.session,
                caller = %show(req.node), ttl_ms = req.ttl.as_millis() as u64, "session_started"
            ),
            Err(e) => tracing::info!(target: TARGET,
                table = %req.table, shard = %req.shard, caller = %show(req.node),
                error = %e, "session_refused"
            ),
        }
        result
    }

    async fn start_session_inner(
        &self,
        req: &StartSessionRequest,
    ) -> Result<StartSessionReply, PeerError> {
        self.sweep_if_fixed();
        if !self.health() {
            return Err(PeerError::NotReady);
        }
        let node = req.node.ok_or(PeerError::CallerNotSet)?;
        self.schema(&req.table)?;
        let shard = TableShardId::new(req.table.clone(), req.shard);
        if self.quirk(Quirk::Q6) {
            // Upstream checks under one lock and inserts under another: two
            // concurrent starts from one node can both pass the check.
            self.check_can_start(&shard, node)?;
            crate::env::yield_now().await;
            Ok(self.insert_session(shard, node, req.ttl))
        } else {
            self.check_can_start(&shard, node)?;
            Ok(self.insert_session(shard, node, req.ttl))
        }
    }

    fn check_can_start(&self, shard: &TableShardId, node: NodeId) -> Result<(), PeerError> {
        let state = self.inner.state.borrow();
        if state
            .sessions
            .values()
            .any(|s| s.info.shard == *shard && s.info.node == node)
        {
            Probe::SessionAlreadyRunning.hit();
            return Err(PeerError::SessionAlreadyRunning);
        }
        if state.tokens.get(shard).is_some_and(|n| *n > 0) {
            return Err(PeerError::TokenHeld);
        }
        Ok(())
    }

    fn insert_session(
        &self,
        shard: TableShardId,
        node: NodeId,
        ttl: Duration,
    ) -> StartSessionReply {
        let now = self.inner.env.now();
        let mut state = self.inner.state.borrow_mut();
        state.last_id += 1;
        let id = SessionId(state.last_id);
        let info = SessionInfo {
            id,
            shard,
            node,
            ttl,
            last_live: now,
            bound: false,
        };
        state.sessions.insert(id, Session { info, stop: None });
        StartSessionReply { session: id, ttl }
    }

    /// Remove a session whose keep-alive stream ended (`cause`: how).
    pub(super) fn remove_session(&self, id: SessionId, cause: &'static str) {
        let removed = self.inner.state.borrow_mut().sessions.remove(&id);
        if let Some(s) = removed {
            tracing::info!(target: TARGET, session = %id, table = %s.info.shard.table,
                shard = %s.info.shard.shard, cause, "session_removed");
        }
    }

    /// Remove every expired session. With Q3 off the stream bound to a swept
    /// session is ended, so its client learns the session is gone.
    pub(super) fn sweep(&self) {
        let now = self.inner.env.now();
        let swept: Vec<Session> = {
            let mut state = self.inner.state.borrow_mut();
            let expired: Vec<SessionId> = state
                .sessions
                .values()
                .filter(|s| now.since(s.info.last_live) > s.info.ttl)
                .map(|s| s.info.id)
                .collect();
            expired
                .iter()
                .filter_map(|id| state.sessions.remove(id))
                .collect()
        };
        for s in swept {
            tracing::info!(target: TARGET, session = %s.info.id, table = %s.info.shard.table,
                shard = %s.info.shard.shard, "session_expired");
            Probe::SessionExpired.hit();
            if let Some(stop) = s.stop
                && !self.quirk(Quirk::Q3)
            {
                let _ = stop.send(());
            }
        }
    }

    /// Q7 off: expired sessions are swept on every request, not only when a
    /// job asks for a token.
    pub(super) fn sweep_if_fixed(&self) {
        if !self.quirk(Quirk::Q7) {
            self.sweep();
        }
    }

    /// Validate a session-bound request: caller set, session set, session
    /// known, caller and table shard match the session.
    pub(super) fn validate(&self, r: &SessionRef) -> Result<(SessionId, TableShardId), PeerError> {
        let node = r.node.ok_or(PeerError::CallerNotSet)?;
        let id = r.session.ok_or(PeerError::SessionNotSet)?;
        let state = self.inner.state.borrow();
        let session = state
            .sessions
            .get(&id)
            .ok_or(PeerError::InvalidSession(id))?;
        if session.info.node != node
            || session.info.shard.table != r.table
            || session.info.shard.shard != r.shard
        {
            return Err(PeerError::Mismatch);
        }
        Ok((id, session.info.shard.clone()))
    }
}
