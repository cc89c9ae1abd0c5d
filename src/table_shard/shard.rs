//! The table shard itself: its identity, schema, bootstrap state, progress
//! details and data ([`ShardStore`]). The bootstrap that drives the state
//! lives in `bootstrap.rs`, the peer copy in `copy.rs`; both add methods to
//! [`TableShard`] and read its fields, so those are visible to the
//! `table_shard` module.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::details::BootstrapDetails;
use crate::env::Env;
use crate::model::TableSchema;
use crate::store::{ShardStore, StoreConfig};
use crate::types::TableShardId;

/// Where a table shard's bootstrap stands. Only `NotStarted → Bootstrapping
/// → {Bootstrapped, NotStarted}` ever happens (docs/MODEL.md §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BootstrapState {
    #[default]
    NotStarted,
    Bootstrapping,
    Bootstrapped,
}

/// One table shard on one host: its bootstrap state and progress, and its
/// data.
pub struct TableShard<E: Env> {
    pub(super) env: E,
    pub(super) id: TableShardId,
    pub(super) schema: TableSchema,
    pub(super) state: Cell<BootstrapState>,
    pub(super) needs_peer_copy: Cell<bool>,
    /// A copy succeeded but its recovery has not: the local redo log does
    /// not hold the copied range, so recovery must replay it from upstream
    /// (also on a retried bootstrap that no longer needs the copy).
    pub(super) replay_from_upstream: Cell<bool>,
    /// The last bootstrap failed (so the next one is a retry).
    pub(super) failed: Cell<bool>,
    /// Shared with the copy workers, which mark vector parties finished.
    pub(super) details: Rc<RefCell<BootstrapDetails>>,
    pub(super) store: Rc<ShardStore<E>>,
}

impl<E: Env> TableShard<E> {
    /// A table shard that has not been bootstrapped. `needs_peer_copy` is
    /// whether its replica here was `Initializing` when it was assigned.
    pub fn new(
        env: E,
        id: TableShardId,
        schema: TableSchema,
        needs_peer_copy: bool,
        config: StoreConfig,
    ) -> Self {
        let store = Rc::new(ShardStore::new(
            env.clone(),
            id.clone(),
            schema.clone(),
            config,
        ));
        TableShard {
            env,
            id,
            schema,
            state: Cell::new(BootstrapState::NotStarted),
            needs_peer_copy: Cell::new(needs_peer_copy),
            replay_from_upstream: Cell::new(false),
            failed: Cell::new(false),
            details: Rc::new(RefCell::new(BootstrapDetails::new())),
            store,
        }
    }

    pub fn id(&self) -> &TableShardId {
        &self.id
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn state(&self) -> BootstrapState {
        self.state.get()
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.state.get() == BootstrapState::Bootstrapped
    }

    /// Whether the replica still has to copy its data from a peer (cleared
    /// only after a copy succeeded, or was skipped).
    pub fn needs_peer_copy(&self) -> bool {
        self.needs_peer_copy.get()
    }

    /// A snapshot of the bootstrap progress.
    pub fn details(&self) -> BootstrapDetails {
        self.details.borrow().clone()
    }

    /// The shard's data: the host runs ingestion and the jobs on it.
    pub fn store(&self) -> &Rc<ShardStore<E>> {
        &self.store
    }
}
