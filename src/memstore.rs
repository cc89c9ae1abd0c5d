//! The host's table shards and the node-wide bootstrap of them
//! (docs/MODEL.md §3), plus the per-shard readiness the availability check
//! asks about (docs/MODEL.md §5).
//!
//! [`MemStore::bootstrap_all`] bootstraps every table shard that is not yet
//! `Bootstrapped`: those that need no peer copy first (they only recover
//! from local disk and are quick), then those that do, at most
//! `max_concurrent_table_shards` at a time, each on a task of its own so the
//! simulator's scheduler interleaves them. All errors come back together.
//!
//! The map is shared with the bootstrap workers: a table shard removed from
//! it (its shard left the host) is not started by a worker that had not yet
//! reached it. What it does not model: upstream's per-table locks and table
//! incarnations.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::env::Env;
use crate::options::Options;
use crate::peer_source::PeerSource;
use crate::placement::ClusterView;
use crate::quirks::{Quirk, Quirks};
use crate::table_shard::{BootstrapError, BootstrapState, TableShard};
use crate::types::{NodeId, ShardId, TableKind, TableShardId};

type ShardMap<E> = BTreeMap<TableShardId, Rc<TableShard<E>>>;

/// The errors of a node-wide bootstrap: one per table shard that failed.
pub type BootstrapErrors = Vec<(TableShardId, BootstrapError)>;

/// The table shards of one host, by id.
pub struct MemStore<E: Env> {
    env: E,
    shards: Rc<RefCell<ShardMap<E>>>,
}

impl<E: Env> MemStore<E> {
    /// An empty memstore (a host that just started holds nothing in memory).
    pub fn new(env: E) -> Self {
        MemStore {
            env,
            shards: Rc::new(RefCell::new(BTreeMap::new())),
        }
    }

    /// Add a table shard; returns the one it replaced, if any.
    pub fn insert(&self, shard: Rc<TableShard<E>>) -> Option<Rc<TableShard<E>>> {
        self.shards.borrow_mut().insert(shard.id().clone(), shard)
    }

    /// Remove a table shard from memory (its files stay; the caller deletes
    /// them). A bootstrap already running on it goes on to its end.
    pub fn remove(&self, id: &TableShardId) -> Option<Rc<TableShard<E>>> {
        self.shards.borrow_mut().remove(id)
    }

    pub fn get(&self, id: &TableShardId) -> Option<Rc<TableShard<E>>> {
        self.shards.borrow().get(id).cloned()
    }

    /// Whether this very table shard (not only its id) is held.
    pub fn holds(&self, shard: &Rc<TableShard<E>>) -> bool {
        holds(&self.shards, shard)
    }

    /// Every table shard, in id order.
    pub fn table_shards(&self) -> Vec<Rc<TableShard<E>>> {
        self.shards.borrow().values().cloned().collect()
    }

    /// The table shards of fact-table shard `shard` (not the dimension
    /// tables, which also live in shard 0).
    pub fn fact_shards_of(&self, shard: ShardId) -> Vec<Rc<TableShard<E>>> {
        self.shards
            .borrow()
            .values()
            .filter(|ts| ts.schema().kind == TableKind::Fact && ts.id().shard == shard)
            .cloned()
            .collect()
    }

    /// The dimension table shards (all in shard 0).
    pub fn dimension_shards(&self) -> Vec<Rc<TableShard<E>>> {
        self.shards
            .borrow()
            .values()
            .filter(|ts| ts.schema().kind == TableKind::Dimension)
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.borrow().is_empty()
    }

    /// Bootstrap every table shard not yet `Bootstrapped` (docs/MODEL.md §3):
    /// those needing no peer copy first, then those that do, at most
    /// `options.max_concurrent_table_shards` at a time. `view` is the
    /// topology snapshot taken when this pass began; `origin` is this host.
    /// Returns every table shard's error together.
    pub async fn bootstrap_all(
        &self,
        source: &Rc<PeerSource<E>>,
        origin: NodeId,
        view: &Rc<ClusterView>,
        options: &Rc<Options>,
    ) -> Result<(), BootstrapErrors> {
        let mut todo: Vec<Rc<TableShard<E>>> = self
            .table_shards()
            .into_iter()
            .filter(|ts| ts.state() != BootstrapState::Bootstrapped)
            .collect();
        // Stable: id order within each group.
        todo.sort_by_key(|ts| ts.needs_peer_copy());
        tracing::info!(
            node = %origin,
            table_shards = todo.len(),
            peer_copies = todo.iter().filter(|ts| ts.needs_peer_copy()).count(),
            version = view.version,
            "memstore_bootstrap_started"
        );
        let queue = Rc::new(RefCell::new(VecDeque::from(todo)));
        let workers = options.max_concurrent_table_shards.max(1);
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let queue = Rc::clone(&queue);
                let shards = Rc::clone(&self.shards);
                let source = Rc::clone(source);
                let view = Rc::clone(view);
                let options = Rc::clone(options);
                self.env.spawn("table_shard_bootstrap", async move {
                    let mut errors = Vec::new();
                    loop {
                        let next = queue.borrow_mut().pop_front();
                        let Some(ts) = next else { break };
                        // Checked in the same poll as the bootstrap sets
                        // `Bootstrapping`, so a removal either sees it
                        // running or is seen here.
                        if !holds(&shards, &ts) || ts.is_bootstrapped() {
                            continue;
                        }
                        if let Err(e) = ts.bootstrap(&source, origin, &view, &options).await {
                            errors.push((ts.id().clone(), e));
                        }
                    }
                    errors
                })
            })
            .collect();
        let mut errors: BootstrapErrors = Vec::new();
        for h in handles {
            errors.extend(h.await);
        }
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        tracing::info!(node = %origin, failed = errors.len(), "memstore_bootstrap_finished");
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether `shard` may be marked `Available` (docs/MODEL.md §5): every
    /// **fact** table shard of it is `Bootstrapped`. With quirk Q13 off the
    /// dimension tables (shard 0 on this host) must be `Bootstrapped` too;
    /// with it on they are not checked, so with no fact tables every shard is
    /// ready.
    pub fn shard_ready(&self, shard: ShardId, quirks: Quirks) -> bool {
        let shards = self.shards.borrow();
        let facts = shards
            .values()
            .filter(|ts| ts.schema().kind == TableKind::Fact && ts.id().shard == shard)
            .all(|ts| ts.is_bootstrapped());
        if quirks.on(Quirk::Q13) {
            return facts;
        }
        facts
            && shards
                .values()
                .filter(|ts| ts.schema().kind == TableKind::Dimension)
                .all(|ts| ts.is_bootstrapped())
    }
}

fn holds<E: Env>(shards: &RefCell<ShardMap<E>>, shard: &Rc<TableShard<E>>) -> bool {
    shards
        .borrow()
        .get(shard.id())
        .is_some_and(|held| Rc::ptr_eq(held, shard))
}

#[cfg(test)]
mod tests;
