//! The data node (docs/MODEL.md §5): one host's peer-data server, peer
//! source, memstore and bootstrap manager, and the loops that drive them.
//!
//! [`DataNode::start`] spawns, on the host's executor:
//! - the **placement watch**: on every new cluster view, under the node
//!   lock, assign the shard set (`datanode/assign.rs`) and request a
//!   bootstrap in the background;
//! - the **availability check** (every 5 s): `Initializing` shards whose
//!   table shards are ready are marked `Available` (`datanode/loops.rs`);
//! - the **readiness check** (every 10 s, until it passes once): only a
//!   ready node serves peer copies and runs its background jobs.
//!
//! Every table shard also gets its own loops once it is added: ingestion,
//! and the store's background jobs (archiving, backfill, purge for fact
//! tables; snapshot for dimension tables), each on its period from
//! [`Options`].
//!
//! A failed bootstrap is retried with capped exponential backoff, unless
//! quirk Q14 reproduces upstream, which never retries by itself (a failed
//! table shard then waits for the next view or a manual [`DataNode::retry`]).
//!
//! On restart the host builds a fresh `DataNode`: nothing in memory
//! survives, so needs-peer-copy is derived again from the placement and
//! every table shard starts `NotStarted`. What is not modelled: dropping a
//! table from the schema, and schema changes of an existing table.

mod assign;
mod loops;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::lock::Mutex;

use crate::details::BootstrapDetails;
use crate::env::{Cluster, Env};
use crate::manager::{BootstrapManager, PassErrors, Requested};
use crate::memstore::{BootstrapErrors, MemStore};
use crate::options::Options;
use crate::peer_server::PeerServer;
use crate::peer_source::PeerSource;
use crate::quirks::Quirk;
use crate::table_shard::{BootstrapState, TableShard};
use crate::types::{ShardId, ShardState, TableKind, TableName, TableShardId};

/// What the oracle and tests see of one table shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShardInfo {
    pub id: TableShardId,
    pub kind: TableKind,
    pub state: BootstrapState,
    pub needs_peer_copy: bool,
    pub details: BootstrapDetails,
}

/// The loops of one table shard: a stop switch, and a lock each loop holds
/// while it works on the store, so a removal can wait for work in flight.
struct Work {
    stopped: Cell<bool>,
    busy: Mutex<()>,
}

/// Mutable node state, never borrowed across an await.
#[derive(Default)]
struct NodeState {
    started: bool,
    stopped: bool,
    /// Version of the last view whose shard set was assigned.
    assigned_version: Option<u64>,
    /// The shards this host holds, with their state, as last assigned.
    shards: BTreeMap<ShardId, ShardState>,
    /// The tables of the last assigned view.
    tables: std::collections::BTreeSet<TableName>,
    /// The readiness check passed.
    ready: bool,
    /// Loops of each table shard in the memstore.
    work: BTreeMap<TableShardId, Rc<Work>>,
    /// An automatic retry is waiting for its timer.
    retry_scheduled: bool,
    /// Delay of the next automatic retry (Q14 off).
    backoff: Duration,
    /// The last `mark_available` call failed (the next one is a retry).
    mark_available_failed: bool,
}

/// One data node (host) of the cluster.
pub struct DataNode<E: Env> {
    env: E,
    options: Rc<Options>,
    peer_server: Rc<PeerServer<E>>,
    source: Rc<PeerSource<E>>,
    memstore: MemStore<E>,
    manager: BootstrapManager<E>,
    /// The node lock: shard-set assignment, the availability check and the
    /// readiness check each see a consistent shard set under it.
    lock: Mutex<()>,
    state: RefCell<NodeState>,
}

impl<E: Env> DataNode<E> {
    /// A node with nothing in memory and a peer-data server that is not
    /// ready. Nothing runs until [`DataNode::start`]; the caller makes
    /// [`DataNode::peer_server`] reachable to other hosts.
    pub fn new(env: E, options: Options) -> Rc<Self> {
        let options = Rc::new(options);
        let peer_server = Rc::new(PeerServer::new(env.clone(), Rc::clone(&options)));
        let placement = env.cluster().view().placement.clone();
        let source = Rc::new(PeerSource::new(
            env.clone(),
            Rc::clone(&options),
            &placement,
        ));
        let state = NodeState {
            backoff: options.retry_backoff_min,
            ..NodeState::default()
        };
        Rc::new(DataNode {
            memstore: MemStore::new(env.clone()),
            manager: BootstrapManager::new(env.clone()),
            env,
            options,
            peer_server,
            source,
            lock: Mutex::new(()),
            state: RefCell::new(state),
        })
    }

    /// Spawn the node's loops (once; later calls do nothing).
    pub fn start(self: &Rc<Self>) {
        {
            let mut st = self.state.borrow_mut();
            if st.started {
                return;
            }
            st.started = true;
        }
        tracing::info!(node = %self.env.node(), "data_node_started");
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

    /// Stop every loop of this node at its next wake-up (a test's stand-in
    /// for the host dying; the simulator kills the tasks itself).
    pub fn stop(&self) {
        let mut st = self.state.borrow_mut();
        st.stopped = true;
        for work in st.work.values() {
            work.stopped.set(true);
        }
    }

    fn stopped(&self) -> bool {
        self.state.borrow().stopped
    }

    /// Manual retry request: a bootstrap in the background (only marked
    /// pending if one is running).
    pub fn retry(self: &Rc<Self>) {
        tracing::info!(node = %self.env.node(), "bootstrap_retry_requested");
        self.bootstrap_in_background();
    }

    /// Request a node-wide bootstrap on a task of its own.
    fn bootstrap_in_background(self: &Rc<Self>) {
        let this = Rc::clone(self);
        let _task = self
            .env
            .spawn("bootstrap", async move { this.bootstrap().await });
    }

    /// Run (or queue) a node-wide bootstrap; the caller that ran it
    /// schedules the automatic retry when a pass failed (Q14 off).
    async fn bootstrap(self: Rc<Self>) {
        let result = self
            .manager
            .request(async || self.bootstrap_pass().await)
            .await;
        match result {
            Ok(Requested::Queued) => {}
            Ok(Requested::Ran { .. }) => {
                self.state.borrow_mut().backoff = self.options.retry_backoff_min;
            }
            Err(PassErrors(passes)) => {
                let failed = passes.last().map_or(0, Vec::len);
                tracing::info!(
                    node = %self.env.node(),
                    failed_passes = passes.len(),
                    failed_table_shards = failed,
                    "node_bootstrap_failed"
                );
                if !self.options.quirks.on(Quirk::Q14) {
                    self.schedule_retry();
                }
            }
        }
    }

    /// One pass: a fresh topology snapshot, then every table shard.
    async fn bootstrap_pass(&self) -> Result<(), BootstrapErrors> {
        let view = self.env.cluster().view();
        self.memstore
            .bootstrap_all(&self.source, self.env.node(), &view, &self.options)
            .await
    }

    /// Q14 off: retry after the current backoff, which doubles (up to
    /// `retry_backoff_max`) until a run succeeds. At most one retry waits.
    fn schedule_retry(self: &Rc<Self>) {
        let delay = {
            let mut st = self.state.borrow_mut();
            if st.retry_scheduled || st.stopped {
                return;
            }
            st.retry_scheduled = true;
            let delay = st.backoff;
            st.backoff = (delay * 2).min(self.options.retry_backoff_max);
            delay
        };
        tracing::info!(
            node = %self.env.node(),
            delay_ms = delay.as_millis() as u64,
            "bootstrap_retry_scheduled"
        );
        let this = Rc::clone(self);
        let _task = self.env.spawn("bootstrap_retry", async move {
            this.env.sleep(delay).await;
            this.state.borrow_mut().retry_scheduled = false;
            if !this.stopped() {
                this.bootstrap().await;
            }
        });
    }

    // ------------------------------------------------------ inspection ---

    pub fn env(&self) -> &E {
        &self.env
    }

    pub fn options(&self) -> &Rc<Options> {
        &self.options
    }

    /// This host's peer-data server (to register with the network).
    pub fn peer_server(&self) -> Rc<PeerServer<E>> {
        Rc::clone(&self.peer_server)
    }

    pub fn peer_source(&self) -> &Rc<PeerSource<E>> {
        &self.source
    }

    pub fn memstore(&self) -> &MemStore<E> {
        &self.memstore
    }

    pub fn manager(&self) -> &BootstrapManager<E> {
        &self.manager
    }

    /// Every table shard in memory, in id order.
    pub fn table_shards(&self) -> Vec<Rc<TableShard<E>>> {
        self.memstore.table_shards()
    }

    pub fn table_shard(&self, id: &TableShardId) -> Option<Rc<TableShard<E>>> {
        self.memstore.get(id)
    }

    /// A summary of every table shard: bootstrap state, needs-peer-copy,
    /// progress details. The store view is on [`TableShard::store`].
    pub fn table_shard_infos(&self) -> Vec<TableShardInfo> {
        self.memstore
            .table_shards()
            .iter()
            .map(|ts| TableShardInfo {
                id: ts.id().clone(),
                kind: ts.schema().kind,
                state: ts.state(),
                needs_peer_copy: ts.needs_peer_copy(),
                details: ts.details(),
            })
            .collect()
    }

    /// Whether the readiness check passed (the node serves peer copies and
    /// runs its background jobs).
    pub fn is_ready(&self) -> bool {
        self.state.borrow().ready
    }

    /// The shards this host holds, as last assigned.
    pub fn assigned_shards(&self) -> BTreeMap<ShardId, ShardState> {
        self.state.borrow().shards.clone()
    }

    /// The version of the last view whose shard set was assigned.
    pub fn assigned_version(&self) -> Option<u64> {
        self.state.borrow().assigned_version
    }
}
