//! The data node's parts and what the oracle and tests read of them:
//! [`DataNode`] (peer-data server, peer source, memstore, bootstrap manager,
//! the node lock and mutable node state), [`TableShardInfo`], and the
//! per-table-shard [`Work`] switch. The loops, the shard-set assignment and
//! the bootstrap requests live in the sibling files and add methods to
//! [`DataNode`]; its fields are visible to the `datanode` module for them.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::lock::Mutex;

use crate::details::BootstrapDetails;
use crate::env::{Cluster, Env};
use crate::manager::BootstrapManager;
use crate::memstore::MemStore;
use crate::options::Options;
use crate::peer_server::PeerServer;
use crate::peer_source::PeerSource;
use crate::table_shard::{BootstrapState, TableShard};
use crate::types::{ShardId, ShardState, TableKind, TableName, TableShardId};

/// The `tracing` target of the events of `bootstrap.rs` and of
/// `DataNode::start`: `shardboot::datanode`, the module they were written in
/// before it was split. The simulator's trace hash covers event targets, so
/// moving code must not change them.
pub(super) const TARGET: &str = "shardboot::datanode";

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
pub(super) struct Work {
    pub(super) stopped: Cell<bool>,
    pub(super) busy: Mutex<()>,
}

/// Mutable node state, never borrowed across an await.
#[derive(Default)]
pub(super) struct NodeState {
    pub(super) started: bool,
    pub(super) stopped: bool,
    /// Version of the last view whose shard set was assigned.
    pub(super) assigned_version: Option<u64>,
    /// The shards this host holds, with their state, as last assigned.
    pub(super) shards: BTreeMap<ShardId, ShardState>,
    /// The tables of the last assigned view.
    pub(super) tables: std::collections::BTreeSet<TableName>,
    /// The readiness check passed.
    pub(super) ready: bool,
    /// Loops of each table shard in the memstore.
    pub(super) work: BTreeMap<TableShardId, Rc<Work>>,
    /// An automatic retry is waiting for its timer.
    pub(super) retry_scheduled: bool,
    /// Delay of the next automatic retry (Q14 off).
    pub(super) backoff: Duration,
    /// The last `mark_available` call failed (the next one is a retry).
    pub(super) mark_available_failed: bool,
}

/// One data node (host) of the cluster.
pub struct DataNode<E: Env> {
    pub(super) env: E,
    pub(super) options: Rc<Options>,
    pub(super) peer_server: Rc<PeerServer<E>>,
    pub(super) source: Rc<PeerSource<E>>,
    pub(super) memstore: MemStore<E>,
    pub(super) manager: BootstrapManager<E>,
    /// The node lock: shard-set assignment, the availability check and the
    /// readiness check each see a consistent shard set under it.
    pub(super) lock: Mutex<()>,
    pub(super) state: RefCell<NodeState>,
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

    /// Stop every loop of this node at its next wake-up (a test's stand-in
    /// for the host dying; the simulator kills the tasks itself).
    pub fn stop(&self) {
        let mut st = self.state.borrow_mut();
        st.stopped = true;
        for work in st.work.values() {
            work.stopped.set(true);
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.state.borrow().stopped
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
