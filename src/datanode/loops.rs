//! The node-wide loops of a data node (docs/MODEL.md §5):
//! [`DataNode::start`] spawns the placement watch (every view is assigned by
//! `assign.rs`), the availability check and the readiness check.
//!
//! Every loop sleeps first (the placement watch waits for a new view) and
//! checks the node's stop switch after each wake-up.

use std::rc::Rc;

use crate::env::{Cluster, Env};
use crate::probe::Probe;
use crate::types::{ShardId, ShardState, TableKind, TableShardId};

// `start` was written in datanode.rs: its event keeps that target.
use super::node::{DataNode, TARGET as NODE_TARGET};

impl<E: Env> DataNode<E> {
    /// Spawn the node's loops (once; later calls do nothing).
    pub fn start(self: &Rc<Self>) {
        {
            let mut st = self.state.borrow_mut();
            if st.started {
                return;
            }
            st.started = true;
        }
        tracing::info!(target: NODE_TARGET, node = %self.env.node(), "data_node_started");
        // Join handles are dropped: the loops run detached until the node
        // stops or the host dies.
        let _watch = self
            .env
            .spawn("placement_watch", Rc::clone(self).watch_placement());
        let _availability = self
            .env
            .spawn("availability_check", Rc::clone(self).availability_loop());
        let _readiness = self
            .env
            .spawn("readiness_check", Rc::clone(self).readiness_loop());
    }

    /// Follow the cluster view: assign the current one, then every newer
    /// one, until the node stops.
    async fn watch_placement(self: Rc<Self>) {
        let mut view = self.env.cluster().view();
        loop {
            if self.stopped() {
                return;
            }
            self.assign_shard_set(&view).await;
            view = self.env.cluster().changed(view.version).await;
        }
    }

    /// Every `availability_check_interval`: mark the ready `Initializing`
    /// shards `Available`. A failed call is simply made again next tick.
    pub(super) async fn availability_loop(self: Rc<Self>) {
        loop {
            self.env
                .sleep(self.options.availability_check_interval)
                .await;
            if self.stopped() {
                return;
            }
            self.check_availability().await;
        }
    }

    /// The shards this host holds `Initializing` (as assigned and in the
    /// current view) whose table shards are ready, marked `Available`.
    pub(super) async fn check_availability(&self) {
        let node = self.env.node();
        let ready: Vec<ShardId> = {
            let _guard = self.lock.lock().await;
            let view = self.env.cluster().view();
            let assigned = self.state.borrow().shards.clone();
            assigned
                .iter()
                .filter(|(shard, state)| {
                    **state == ShardState::Initializing
                        && view.placement.state(**shard, node) == Some(ShardState::Initializing)
                        && self.memstore.shard_ready(**shard, self.options.quirks)
                })
                .map(|(shard, _)| *shard)
                .collect()
        };
        if ready.is_empty() {
            return;
        }
        let result = self.env.cluster().mark_available(node, ready.clone()).await;
        let retried = std::mem::replace(
            &mut self.state.borrow_mut().mark_available_failed,
            result.is_err(),
        );
        match result {
            Ok(()) => {
                if retried {
                    Probe::MarkAvailableRetried.hit();
                }
                for shard in ready {
                    tracing::info!(node = %node, shard = %shard, "shard_marked_available");
                }
            }
            Err(error) => tracing::info!(
                node = %node, shards = ?ready, error = %error,
                "mark_available_failed"
            ),
        }
    }

    /// Every `readiness_check_interval` until the check passes once; then
    /// the peer server serves copies and background jobs may run.
    pub(super) async fn readiness_loop(self: Rc<Self>) {
        loop {
            self.env.sleep(self.options.readiness_check_interval).await;
            if self.stopped() {
                return;
            }
            if self.check_readiness().await {
                self.state.borrow_mut().ready = true;
                self.peer_server.set_ready(true);
                tracing::info!(node = %self.env.node(), "node_ready");
                return;
            }
        }
    }

    /// Ready when the host is not in the placement, or when every fact
    /// table shard of its non-`Initializing` shards and every dimension
    /// table is `Bootstrapped` (a shard set must have been assigned).
    pub(super) async fn check_readiness(&self) -> bool {
        let _guard = self.lock.lock().await;
        if self.state.borrow().assigned_version.is_none() {
            return false;
        }
        let node = self.env.node();
        let view = self.env.cluster().view();
        if !view.placement.contains_host(node) {
            return true;
        }
        let bootstrapped = |table: &str, shard: ShardId| {
            self.memstore
                .get(&TableShardId::new(table, shard))
                .is_some_and(|ts| ts.is_bootstrapped())
        };
        let facts_ok = view
            .placement
            .shards_of(node)
            .into_iter()
            .filter(|(_, state)| *state != ShardState::Initializing)
            .all(|(shard, _)| {
                view.tables
                    .values()
                    .filter(|t| t.kind == TableKind::Fact)
                    .all(|t| bootstrapped(&t.name, shard))
            });
        facts_ok
            && view
                .tables
                .values()
                .filter(|t| t.kind == TableKind::Dimension)
                .all(|t| bootstrapped(&t.name, ShardId::DIMENSION))
    }
}
