//! The shared state of a fake world ([`FakeNet`]): the seed, the spawner,
//! the clock's timers, the cluster, the upstream log, and every host (its
//! disk, metastore, RNG, peer-data server and the test's switches), with
//! each host's [`FakeEnv`] handle onto it. The clock's behaviour is in
//! `clock.rs`, the `Env` implementation in `env.rs`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::task::Waker;

use futures::executor::LocalSpawner;

use crate::peer_server::PeerServer;
use crate::types::{NodeId, Timestamp};

use super::cluster::FakeCluster;
use super::disk::FakeDisk;
use super::metastore::FakeMetaStore;
use super::upstream::FakeUpstream;

/// The shared state of a fake world: clock, cluster, upstream, hosts.
#[derive(Clone)]
pub(crate) struct FakeNet(pub(super) Rc<NetState>);

pub(super) struct NetState {
    pub(super) seed: u64,
    pub(super) spawner: LocalSpawner,
    pub(super) clock: RefCell<ClockState>,
    pub(super) cluster: FakeCluster,
    pub(super) upstream: FakeUpstream,
    pub(super) hosts: RefCell<BTreeMap<NodeId, Host>>,
}

#[derive(Default)]
pub(super) struct ClockState {
    pub(super) now: Timestamp,
    pub(super) next_timer: u64,
    pub(super) timers: BTreeMap<(Timestamp, u64), Waker>,
}

/// One host: its local stores, its server and the test's switches.
pub(super) struct Host {
    pub(super) disk: FakeDisk,
    pub(super) metastore: FakeMetaStore,
    pub(super) rng: Rc<Cell<u64>>,
    pub(super) server: Option<PeerServer<FakeEnv>>,
    /// `dial` to this host fails.
    pub(super) dial_fails: bool,
    /// Health checks answer "not serving".
    pub(super) unhealthy: bool,
    /// Every call to this host fails as unavailable; open streams break.
    pub(super) down: bool,
    /// The next this many raw-data streams from this host break after their
    /// first chunk.
    pub(super) break_raw: u32,
}

impl FakeNet {
    pub(super) fn host(&self, node: NodeId) -> FakeEnv {
        let mut hosts = self.0.hosts.borrow_mut();
        let h = hosts.entry(node).or_insert_with(|| Host {
            disk: FakeDisk::default(),
            metastore: FakeMetaStore::default(),
            rng: Rc::new(Cell::new(0)),
            server: None,
            dial_fails: false,
            unhealthy: false,
            down: false,
            break_raw: 0,
        });
        FakeEnv {
            node,
            net: self.clone(),
            disk: h.disk.clone(),
            metastore: h.metastore.clone(),
            rng: Rc::clone(&h.rng),
        }
    }

    pub(super) fn with_host<T>(&self, node: NodeId, f: impl FnOnce(&mut Host) -> T) -> T {
        self.host(node);
        let mut hosts = self.0.hosts.borrow_mut();
        let h = hosts.get_mut(&node).expect("host created above");
        f(h)
    }

    /// Make `server` the peer-data server `dial(node)` reaches.
    pub(crate) fn register(&self, node: NodeId, server: PeerServer<FakeEnv>) {
        self.with_host(node, |h| h.server = Some(server));
    }

    /// Remove `node`'s server: dialling it fails as for an unknown host.
    pub(crate) fn unregister(&self, node: NodeId) {
        self.with_host(node, |h| h.server = None);
    }

    pub(crate) fn set_dial_fails(&self, node: NodeId, fails: bool) {
        self.with_host(node, |h| h.dial_fails = fails);
    }

    pub(crate) fn set_unhealthy(&self, node: NodeId, unhealthy: bool) {
        self.with_host(node, |h| h.unhealthy = unhealthy);
    }

    pub(crate) fn set_down(&self, node: NodeId, down: bool) {
        self.with_host(node, |h| h.down = down);
    }

    /// The next `n` raw-data streams from `node` break after one chunk.
    pub(crate) fn break_raw_fetches(&self, node: NodeId, n: u32) {
        self.with_host(node, |h| h.break_raw = n);
    }

    pub(super) fn is_down(&self, node: NodeId) -> bool {
        self.0.hosts.borrow().get(&node).is_some_and(|h| h.down)
    }

    pub(crate) fn cluster(&self) -> &FakeCluster {
        &self.0.cluster
    }

    pub(crate) fn upstream(&self) -> &FakeUpstream {
        &self.0.upstream
    }
}

/// One host's [`Env`] in a [`FakeWorld`].
#[derive(Clone)]
pub(crate) struct FakeEnv {
    pub(super) node: NodeId,
    pub(super) net: FakeNet,
    pub(super) disk: FakeDisk,
    pub(super) metastore: FakeMetaStore,
    pub(super) rng: Rc<Cell<u64>>,
}

impl FakeEnv {
    pub(crate) fn net(&self) -> &FakeNet {
        &self.net
    }
}
