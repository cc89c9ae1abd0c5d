//! Assigning the shard set (docs/MODEL.md §5): what a data node does with
//! every new cluster view.
//!
//! Under the node lock, comparing the view's shards for this host with the
//! last assigned set:
//! - **removed** shards: their table shards leave memory (after any running
//!   bootstrap of them ends and any ingestion or job in flight finishes),
//!   then their files and metadata are deleted;
//! - **added** shards: a table shard per fact table, needing a peer copy iff
//!   the replica is `Initializing` — and then purged of any local data and
//!   metadata first (a stale leftover must not be mistaken for data);
//! - shards whose **state only changed** are left as they are;
//! - **dimension tables** (shard 0) arrive with the first shards, needing a
//!   copy only if every incoming shard is `Initializing`, and leave with the
//!   last;
//! - a **new table** is added to every shard already held, without a copy.
//!
//! Then the peer source learns the placement, and a bootstrap is requested
//! in the background.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use futures::lock::Mutex;

use crate::env::Env;
use crate::model::TableSchema;
use crate::placement::ClusterView;
use crate::probe::Probe;
use crate::table_shard::{BootstrapState, TableShard};
use crate::types::{ShardId, ShardState, TableKind, TableShardId};

use super::node::{DataNode, Work};

/// How often a removal looks whether a running bootstrap of the table shard
/// has ended (the table shard has no completion signal to wait on).
const REMOVAL_POLL: Duration = Duration::from_millis(100);

impl<E: Env> DataNode<E> {
    /// Assign the shard set of `view` (see the module docs), then request a
    /// bootstrap in the background.
    pub(super) async fn assign_shard_set(self: &Rc<Self>, view: &ClusterView) {
        let _guard = self.lock.lock().await;
        let node = self.env.node();
        let new = view.placement.shards_of(node);
        let (old, old_tables) = {
            let st = self.state.borrow();
            (st.shards.clone(), st.tables.clone())
        };
        self.source.on_placement_change(&view.placement);
        let facts: Vec<&TableSchema> = tables_of(view, TableKind::Fact);
        let dims: Vec<&TableSchema> = tables_of(view, TableKind::Dimension);

        // Removed shards, and the dimension tables with the last of them.
        let removed: Vec<ShardId> = old
            .keys()
            .filter(|s| !new.contains_key(s))
            .copied()
            .collect();
        for shard in &removed {
            for ts in self.memstore.fact_shards_of(*shard) {
                self.remove_table_shard(&ts).await;
            }
        }
        if new.is_empty() {
            for ts in self.memstore.dimension_shards() {
                self.remove_table_shard(&ts).await;
            }
        }

        // Added shards: needs-peer-copy iff Initializing.
        let added: Vec<(ShardId, ShardState)> = new
            .iter()
            .filter(|(s, _)| !old.contains_key(s))
            .map(|(s, st)| (*s, *st))
            .collect();
        for (shard, state) in &added {
            for table in &facts {
                let copy = *state == ShardState::Initializing;
                self.add_table_shard(table, *shard, copy).await;
            }
        }
        let dims_held = !self.memstore.dimension_shards().is_empty();
        if !new.is_empty() && !dims_held {
            let copy = new.values().all(|s| *s == ShardState::Initializing);
            for table in &dims {
                self.add_table_shard(table, ShardId::DIMENSION, copy).await;
            }
        }

        // Shards whose state only changed: untouched.
        for (shard, state) in &new {
            if let Some(before) = old.get(shard).filter(|b| *b != state) {
                tracing::info!(
                    node = %node, shard = %shard, from = %before, to = %state,
                    "shard_state_changed"
                );
            }
        }

        // New tables: on every shard already held, without a copy.
        let added_ids: BTreeSet<ShardId> = added.iter().map(|(s, _)| *s).collect();
        for table in view
            .tables
            .values()
            .filter(|t| !old_tables.contains(t.name.as_str()))
        {
            let shards: Vec<ShardId> = match table.kind {
                TableKind::Fact => new
                    .keys()
                    .filter(|s| !added_ids.contains(s))
                    .copied()
                    .collect(),
                TableKind::Dimension if dims_held && !new.is_empty() => vec![ShardId::DIMENSION],
                TableKind::Dimension => Vec::new(),
            };
            for shard in shards {
                let id = TableShardId::new(table.name.clone(), shard);
                if self.memstore.get(&id).is_none() {
                    self.add_table_shard(table, shard, false).await;
                }
            }
        }

        {
            let mut st = self.state.borrow_mut();
            st.shards = new.clone();
            st.tables = view.tables.keys().cloned().collect();
            st.assigned_version = Some(view.version);
        }
        tracing::info!(
            node = %node,
            version = view.version,
            shards = new.len(),
            added = added.len(),
            removed = removed.len(),
            "shard_set_assigned"
        );
        self.bootstrap_in_background();
    }

    /// Create a table shard, purging local leftovers first if it must be
    /// copied, and start its loops.
    async fn add_table_shard(self: &Rc<Self>, schema: &TableSchema, shard: ShardId, copy: bool) {
        let id = TableShardId::new(schema.name.clone(), shard);
        let ts = Rc::new(TableShard::new(
            self.env.clone(),
            id.clone(),
            schema.clone(),
            copy,
            self.options.store.clone(),
        ));
        if copy {
            match ts.store().purge_local().await {
                Ok(0) => {}
                Ok(_) => Probe::InitializingLeftoversPurged.hit(),
                // The copy itself starts clean (quirk Q10 off); with Q10 on
                // the leftovers are what upstream would also have.
                Err(error) => tracing::info!(
                    table = %id.table, shard = %id.shard, error = %error,
                    "table_shard_purge_failed"
                ),
            }
        }
        self.memstore.insert(Rc::clone(&ts));
        let work = Rc::new(Work {
            stopped: std::cell::Cell::new(false),
            busy: Mutex::new(()),
        });
        if let Some(old) = self
            .state
            .borrow_mut()
            .work
            .insert(id.clone(), Rc::clone(&work))
        {
            old.stopped.set(true);
        }
        tracing::info!(
            table = %id.table, shard = %id.shard, kind = %schema.kind,
            needs_peer_copy = copy, "table_shard_added"
        );
        self.start_table_shard_loops(&ts, &work);
    }

    /// Drop a table shard from memory, wait for its running bootstrap and
    /// work in flight to end, then delete its files and metadata.
    async fn remove_table_shard(&self, ts: &Rc<TableShard<E>>) {
        let id = ts.id().clone();
        if self.memstore.holds(ts) {
            self.memstore.remove(&id);
        }
        let work = self.state.borrow_mut().work.remove(&id);
        if let Some(work) = &work {
            work.stopped.set(true);
        }
        while ts.state() == BootstrapState::Bootstrapping {
            self.env.sleep(REMOVAL_POLL).await;
        }
        let _busy = match &work {
            Some(work) => Some(work.busy.lock().await),
            None => None,
        };
        // Peer safety (docs/MODEL.md §7): a Leaving replica may still be a
        // copy source when it leaves. Like the background jobs, take the
        // token first: it is refused while a copy session of this table shard
        // is open (and, Q9 off, refuses new sessions until released).
        // Upstream deletes at once; found by the chaos swarm (file deleted
        // under an open session).
        while !self.peer_server.acquire_token(&id) {
            Probe::RemovalWaitedForCopySession.hit();
            self.env.sleep(REMOVAL_POLL).await;
        }
        let deleted = match ts.store().purge_local().await {
            Ok(n) => n,
            Err(error) => {
                tracing::info!(
                    table = %id.table, shard = %id.shard, error = %error,
                    "table_shard_delete_failed"
                );
                0
            }
        };
        self.peer_server.release_token(&id);
        tracing::info!(
            table = %id.table, shard = %id.shard, files = deleted,
            "table_shard_removed"
        );
    }
}

/// The tables of `kind` in `view`, in name order.
fn tables_of(view: &ClusterView, kind: TableKind) -> Vec<&TableSchema> {
    view.tables.values().filter(|t| t.kind == kind).collect()
}
