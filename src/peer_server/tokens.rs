//! Tokens for the host's background jobs: a job may delete files of a table
//! shard only while no copy session of it is open. Quirk Q9 off: a grant is
//! held until released and blocks new sessions meanwhile; on: it reserves
//! nothing, as upstream. The server is the store's [`TokenSource`].

use crate::env::Env;
use crate::probe::Probe;
use crate::quirks::Quirk;
use crate::store::TokenSource;
use crate::types::TableShardId;

use super::server::{PeerServer, TARGET};

impl<E: Env> PeerServer<E> {
    /// Whether a granted token is held for `shard` (always false with Q9 on,
    /// where a token reserves nothing).
    pub fn token_held(&self, shard: &TableShardId) -> bool {
        self.inner
            .state
            .borrow()
            .tokens
            .get(shard)
            .is_some_and(|n| *n > 0)
    }

    /// May a background job delete files of `shard` now? Reaps expired
    /// sessions first, then grants only if no session is open for it.
    ///
    /// Q9 off: a grant is held until [`PeerServer::release_token`] and blocks
    /// new sessions for the table shard meanwhile. Q9 on: it reserves nothing.
    pub fn acquire_token(&self, shard: &TableShardId) -> bool {
        self.sweep();
        let granted = {
            let mut state = self.inner.state.borrow_mut();
            let open = state.sessions.values().any(|s| s.info.shard == *shard);
            if !open && !self.quirk(Quirk::Q9) {
                *state.tokens.entry(shard.clone()).or_default() += 1;
            }
            !open
        };
        if granted {
            tracing::debug!(target: TARGET, table = %shard.table, shard = %shard.shard, "token_granted");
        } else {
            tracing::info!(target: TARGET, table = %shard.table, shard = %shard.shard, "token_refused");
            Probe::TokenRefused.hit();
        }
        granted
    }

    /// Give back a token from [`PeerServer::acquire_token`]. With Q9 on no
    /// grant was counted, so this is a no-op, as upstream.
    pub fn release_token(&self, shard: &TableShardId) {
        let mut state = self.inner.state.borrow_mut();
        if let Some(n) = state.tokens.get_mut(shard) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.tokens.remove(shard);
            }
            tracing::debug!(target: TARGET, table = %shard.table, shard = %shard.shard, "token_released");
        }
    }
}

/// The host's peer-data server is the token source of its jobs.
impl<E: Env> TokenSource for PeerServer<E> {
    fn acquire_token(&self, shard: &TableShardId) -> bool {
        PeerServer::acquire_token(self, shard)
    }
    fn release_token(&self, shard: &TableShardId) {
        PeerServer::release_token(self, shard)
    }
}
