//! [`FakeWorld`]: the executor (a `futures` `LocalPool`) plus the shared
//! [`FakeNet`]; what a test drives. [`FakeWorld::run`] advances the clock to
//! the next timer whenever everything is stalled (virtual time, like tokio's
//! paused clock); [`FakeWorld::advance`], [`FakeWorld::fire_due`] and
//! [`FakeWorld::run_until_stalled`] step by hand.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::executor::LocalPool;
use futures::task::ArcWake;

use crate::options::Options;
use crate::peer_server::PeerServer;
use crate::types::NodeId;

use super::cluster::FakeCluster;
use super::net::{ClockState, FakeEnv, FakeNet, NetState};
use super::task::{FakeJoin, spawn_on};
use super::upstream::FakeUpstream;

/// Upper bound on scheduling rounds in [`FakeWorld::run`], so a test whose
/// future never completes (e.g. a periodic task keeps firing) fails instead
/// of hanging.
const MAX_ROUNDS: usize = 1_000_000;

/// The executor plus the shared fake network; what a test drives.
pub(crate) struct FakeWorld {
    pool: LocalPool,
    net: FakeNet,
}

impl FakeWorld {
    /// A world at time 0 with no hosts; `seed` seeds every host's RNG.
    pub(crate) fn new(seed: u64) -> Self {
        let pool = LocalPool::new();
        let net = FakeNet(Rc::new(NetState {
            seed,
            spawner: pool.spawner(),
            clock: RefCell::new(ClockState::default()),
            cluster: FakeCluster::default(),
            upstream: FakeUpstream::default(),
            hosts: RefCell::new(BTreeMap::new()),
        }));
        FakeWorld { pool, net }
    }

    /// The env of host `node` (created on first use; every call shares the
    /// host's disk, metastore and RNG).
    pub(crate) fn host(&self, node: NodeId) -> FakeEnv {
        self.net.host(node)
    }

    pub(crate) fn net(&self) -> FakeNet {
        self.net.clone()
    }

    /// Start a **ready** peer-data server on `node` and make it dialable.
    pub(crate) fn serve(&self, node: NodeId, options: Options) -> PeerServer<FakeEnv> {
        let server = PeerServer::new(self.host(node), Rc::new(options));
        server.set_ready(true);
        self.net.register(node, server.clone());
        server
    }

    /// Run `fut` (and every spawned task) to completion, advancing the clock
    /// to the next timer whenever nothing else can run. Panics on a deadlock
    /// (nothing runnable, no timer) or after [`MAX_ROUNDS`].
    pub(crate) fn run<F: Future>(&mut self, fut: F) -> F::Output {
        let flag = Arc::new(WokenFlag(AtomicBool::new(true)));
        let waker = futures::task::waker(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        for _ in 0..MAX_ROUNDS {
            if flag.0.swap(false, Ordering::SeqCst)
                && let Poll::Ready(v) = fut.as_mut().poll(&mut cx)
            {
                return v;
            }
            self.pool.run_until_stalled();
            if flag.0.load(Ordering::SeqCst) {
                continue;
            }
            if !self.net.fire_next() {
                panic!("fake world deadlocked: future pending, no task runnable, no timer set");
            }
        }
        panic!("fake world ran {MAX_ROUNDS} rounds without the future completing");
    }

    /// Run spawned tasks until none can make progress (timers not fired).
    pub(crate) fn run_until_stalled(&mut self) {
        self.pool.run_until_stalled();
    }

    /// Fire the timers due now (e.g. `sleep(ZERO)`) and run until stalled.
    pub(crate) fn fire_due(&mut self) {
        self.net.fire_due();
        self.pool.run_until_stalled();
    }

    /// Move the clock forward by `d`, fire due timers, run until stalled.
    pub(crate) fn advance(&mut self, d: Duration) {
        let now = self.net.now().saturating_add(d);
        self.net.set_now(now);
        self.fire_due();
    }

    /// Spawn a detached task on the pool (for tests that step by hand).
    pub(crate) fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> FakeJoin<T> {
        spawn_on(&self.net.0.spawner, "test", fut)
    }
}

struct WokenFlag(AtomicBool);

impl ArcWake for WokenFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}
