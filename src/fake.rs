//! A small hand-written fake world for the unit tests in `src/` (the real
//! simulator lives in `sim/` and cannot be used from here, see RUST_NOTES).
//!
//! [`FakeWorld`] owns a `futures` [`LocalPool`] and a shared [`FakeNet`]: one
//! manual clock with timers, the cluster view, the upstream log, and every
//! host's disk, metastore, RNG and (optionally) peer-data server. Each host's
//! [`FakeEnv`] implements [`Env`] over those.
//!
//! Choices (test code, but honest to the seams' docs):
//! - **Clock**: one clock for all hosts. `sleep(d)` completes only when the
//!   world fires its timer — even `sleep(ZERO)` yields until then — so a test
//!   can stop a task exactly at an await point. [`FakeWorld::run`] advances
//!   the clock to the next timer whenever everything is stalled (virtual
//!   time, like tokio's paused clock); [`FakeWorld::advance`],
//!   [`FakeWorld::fire_due`] and [`FakeWorld::run_until_stalled`] step by hand.
//! - **Spawn**: tasks run on the pool; dropping a join handle detaches the
//!   task. Tasks do not die with a host (there are no crashes, only
//!   [`FakeDisk::crash`] for the disk).
//! - **Disk / metastore / upstream / dial** complete without yielding; the
//!   disk keeps a durable copy per file, updated at `sync`.
//! - **Peers**: `dial` returns a client that calls straight into the
//!   registered [`PeerServer`] of the other host; keep-alive streams are
//!   channel pairs served by a spawned `serve_keep_alive` task.

// Shared by every module's tests: not each of them uses every helper.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::executor::{LocalPool, LocalSpawner};
use futures::task::{ArcWake, LocalSpawnExt};

use crate::env::{
    ChunkStream, Cluster, ClusterError, Disk, DiskError, Env, FileBytes, Incoming, KeepAliveClient,
    KeepAliveServer, MetaError, MetaStore, OpenMode, PeerClient, UpstreamError, UpstreamLog,
    WriteFile,
};
use crate::model::{FileKey, MetaWrite, Record, ShardMeta};
use crate::options::Options;
use crate::peer_server::PeerServer;
use crate::placement::ClusterView;
use crate::protocol::{
    KeepAlive, MetadataRequest, RawDataRequest, RpcError, StartSessionReply, StartSessionRequest,
    TableShardMetadata,
};
use crate::types::{NodeId, Offset, ShardId, TableShardId, Timestamp};

/// Upper bound on scheduling rounds in [`FakeWorld::run`], so a test whose
/// future never completes (e.g. a periodic task keeps firing) fails instead
/// of hanging.
const MAX_ROUNDS: usize = 1_000_000;

// ---------------------------------------------------------------- world ---

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

// ------------------------------------------------------------------ net ---

/// The shared state of a fake world: clock, cluster, upstream, hosts.
#[derive(Clone)]
pub(crate) struct FakeNet(Rc<NetState>);

struct NetState {
    seed: u64,
    spawner: LocalSpawner,
    clock: RefCell<ClockState>,
    cluster: FakeCluster,
    upstream: FakeUpstream,
    hosts: RefCell<BTreeMap<NodeId, Host>>,
}

#[derive(Default)]
struct ClockState {
    now: Timestamp,
    next_timer: u64,
    timers: BTreeMap<(Timestamp, u64), Waker>,
}

/// One host: its local stores, its server and the test's switches.
struct Host {
    disk: FakeDisk,
    metastore: FakeMetaStore,
    rng: Rc<Cell<u64>>,
    server: Option<PeerServer<FakeEnv>>,
    /// `dial` to this host fails.
    dial_fails: bool,
    /// Health checks answer "not serving".
    unhealthy: bool,
    /// Every call to this host fails as unavailable; open streams break.
    down: bool,
    /// The next this many raw-data streams from this host break after their
    /// first chunk.
    break_raw: u32,
}

impl FakeNet {
    fn host(&self, node: NodeId) -> FakeEnv {
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

    fn with_host<T>(&self, node: NodeId, f: impl FnOnce(&mut Host) -> T) -> T {
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

    fn is_down(&self, node: NodeId) -> bool {
        self.0.hosts.borrow().get(&node).is_some_and(|h| h.down)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.0.clock.borrow().now
    }

    /// Set the clock (a jump either way); timers now due fire at the next
    /// [`FakeWorld::fire_due`] / [`FakeWorld::run`].
    pub(crate) fn set_now(&self, now: Timestamp) {
        self.0.clock.borrow_mut().now = now;
    }

    pub(crate) fn cluster(&self) -> &FakeCluster {
        &self.0.cluster
    }

    pub(crate) fn upstream(&self) -> &FakeUpstream {
        &self.0.upstream
    }

    /// Wake every timer whose deadline has come; whether any did.
    fn fire_due(&self) -> bool {
        let wakers: Vec<Waker> = {
            let mut clock = self.0.clock.borrow_mut();
            let now = clock.now;
            let due: Vec<(Timestamp, u64)> = clock
                .timers
                .range(..=(now, u64::MAX))
                .map(|(k, _)| *k)
                .collect();
            due.iter().filter_map(|k| clock.timers.remove(k)).collect()
        };
        let fired = !wakers.is_empty();
        wakers.into_iter().for_each(Waker::wake);
        fired
    }

    /// Fire due timers, or else advance to the earliest timer and fire it.
    fn fire_next(&self) -> bool {
        if self.fire_due() {
            return true;
        }
        let next = self.0.clock.borrow().timers.keys().next().map(|k| k.0);
        match next {
            Some(t) => {
                self.set_now(t);
                self.fire_due()
            }
            None => false,
        }
    }
}

/// `Env::sleep`: pending until the world fires its timer.
struct Sleep {
    net: FakeNet,
    d: Duration,
    key: Option<(Timestamp, u64)>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let net = self.net.clone();
        let mut clock = net.0.clock.borrow_mut();
        match self.key {
            None => {
                let key = (clock.now.saturating_add(self.d), clock.next_timer);
                clock.next_timer += 1;
                clock.timers.insert(key, cx.waker().clone());
                self.key = Some(key);
                Poll::Pending
            }
            Some(key) => match clock.timers.get_mut(&key) {
                Some(w) => {
                    w.clone_from(cx.waker());
                    Poll::Pending
                }
                None => Poll::Ready(()),
            },
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(key), Ok(mut clock)) = (self.key, self.net.0.clock.try_borrow_mut()) {
            clock.timers.remove(&key);
        }
    }
}

/// `Env::JoinHandle`: yields the task's output; dropping it detaches.
pub(crate) struct FakeJoin<T> {
    name: &'static str,
    rx: oneshot::Receiver<T>,
}

impl<T> Future for FakeJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(oneshot::Canceled)) => {
                panic!("task {} was dropped before it finished", self.name)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn spawn_on<T: 'static>(
    spawner: &LocalSpawner,
    name: &'static str,
    fut: impl Future<Output = T> + 'static,
) -> FakeJoin<T> {
    let (tx, rx) = oneshot::channel();
    spawner
        .spawn_local(async move {
            let _ = tx.send(fut.await);
        })
        .expect("the fake world's pool is alive");
    FakeJoin { name, rx }
}

// ------------------------------------------------------------------ env ---

/// One host's [`Env`] in a [`FakeWorld`].
#[derive(Clone)]
pub(crate) struct FakeEnv {
    node: NodeId,
    net: FakeNet,
    disk: FakeDisk,
    metastore: FakeMetaStore,
    rng: Rc<Cell<u64>>,
}

impl FakeEnv {
    pub(crate) fn net(&self) -> &FakeNet {
        &self.net
    }
}

/// SplitMix64: a fixed, well-mixed function of (seed, host, counter).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Env for FakeEnv {
    type Disk = FakeDisk;
    type MetaStore = FakeMetaStore;
    type Peer = FakePeer;
    type Cluster = FakeCluster;
    type Upstream = FakeUpstream;
    type JoinHandle<T: 'static> = FakeJoin<T>;

    fn node(&self) -> NodeId {
        self.node
    }

    fn now(&self) -> Timestamp {
        self.net.now()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        Sleep {
            net: self.net.clone(),
            d,
            key: None,
        }
    }

    fn spawn<T: 'static>(
        &self,
        name: &'static str,
        fut: impl Future<Output = T> + 'static,
    ) -> FakeJoin<T> {
        spawn_on(&self.net.0.spawner, name, fut)
    }

    fn random_u64(&self) -> u64 {
        let n = self.rng.get();
        self.rng.set(n + 1);
        splitmix64(self.net.0.seed ^ (u64::from(self.node.0) << 40) ^ n)
    }

    /// Unit tests pin exact behaviour: no BUGGIFY point ever fires.
    fn buggify(&self, _point: &'static str) -> bool {
        false
    }

    fn disk(&self) -> &FakeDisk {
        &self.disk
    }

    fn metastore(&self) -> &FakeMetaStore {
        &self.metastore
    }

    fn dial(&self, host: NodeId) -> impl Future<Output = Result<FakePeer, RpcError>> {
        let reachable = self
            .net
            .0
            .hosts
            .borrow()
            .get(&host)
            .is_some_and(|h| h.server.is_some() && !h.dial_fails && !h.down);
        let peer = FakePeer {
            net: self.net.clone(),
            host,
        };
        async move {
            if reachable {
                Ok(peer)
            } else {
                Err(RpcError::Unavailable(host))
            }
        }
    }

    fn cluster(&self) -> &FakeCluster {
        &self.net.0.cluster
    }

    fn upstream(&self) -> &FakeUpstream {
        &self.net.0.upstream
    }
}

// ----------------------------------------------------------------- disk ---

/// A file's content and its durable copy (what survives a crash).
#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    durable: Option<Vec<u8>>,
}

#[derive(Default)]
struct DiskState {
    files: BTreeMap<FileKey, Rc<RefCell<Inode>>>,
    faults: BTreeMap<FileKey, DiskError>,
}

/// In-memory files. Deleting or renaming unlinks the name at once; an open
/// handle keeps writing to its (possibly unlinked) inode.
#[derive(Clone, Default)]
pub(crate) struct FakeDisk(Rc<RefCell<DiskState>>);

impl FakeDisk {
    fn fault(&self, key: &FileKey) -> Result<(), DiskError> {
        match self.0.borrow().faults.get(key) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Every operation on `key` fails with `err` until [`FakeDisk::heal`].
    pub(crate) fn fail_key(&self, key: FileKey, err: DiskError) {
        self.0.borrow_mut().faults.insert(key, err);
    }

    pub(crate) fn heal(&self, key: &FileKey) {
        self.0.borrow_mut().faults.remove(key);
    }

    /// Test set-up: a durable file with `bytes`.
    pub(crate) fn put(&self, key: FileKey, bytes: Vec<u8>) {
        let inode = Inode {
            durable: Some(bytes.clone()),
            data: bytes,
        };
        self.0
            .borrow_mut()
            .files
            .insert(key, Rc::new(RefCell::new(inode)));
    }

    /// The current (possibly unsynced) content of `key`.
    pub(crate) fn get(&self, key: &FileKey) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .files
            .get(key)
            .map(|i| i.borrow().data.clone())
    }

    /// What of `key` would survive a crash now.
    pub(crate) fn durable(&self, key: &FileKey) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .files
            .get(key)
            .and_then(|i| i.borrow().durable.clone())
    }

    /// Every file name, in order.
    pub(crate) fn keys(&self) -> Vec<FileKey> {
        self.0.borrow().files.keys().cloned().collect()
    }

    /// Lose everything not synced: files never synced vanish, the others
    /// fall back to their durable copy.
    pub(crate) fn crash(&self) {
        self.0.borrow_mut().files.retain(|_, inode| {
            let mut i = inode.borrow_mut();
            match i.durable.clone() {
                Some(d) => {
                    i.data = d;
                    true
                }
                None => false,
            }
        });
    }
}

impl Disk for FakeDisk {
    type File = FakeFile;

    fn open(
        &self,
        key: &FileKey,
        mode: OpenMode,
    ) -> impl Future<Output = Result<FakeFile, DiskError>> {
        let result = self.fault(key).map(|()| {
            let inode = Rc::clone(self.0.borrow_mut().files.entry(key.clone()).or_default());
            let pos = match mode {
                OpenMode::Truncate => {
                    inode.borrow_mut().data.clear();
                    0
                }
                OpenMode::Overwrite => 0,
                OpenMode::Append => inode.borrow().data.len(),
            };
            FakeFile {
                disk: self.clone(),
                key: key.clone(),
                inode,
                pos,
            }
        });
        async move { result }
    }

    fn read(&self, key: &FileKey) -> impl Future<Output = Result<FileBytes, DiskError>> {
        let result = self
            .fault(key)
            .and_then(|()| self.get(key).map(FileBytes::new).ok_or(DiskError::NotFound));
        async move { result }
    }

    fn list(&self, shard: &TableShardId) -> Vec<FileKey> {
        self.0
            .borrow()
            .files
            .keys()
            .filter(|k| k.shard() == shard)
            .cloned()
            .collect()
    }

    fn delete(&self, key: &FileKey) -> impl Future<Output = Result<(), DiskError>> {
        let result = self.fault(key).and_then(|()| {
            self.0
                .borrow_mut()
                .files
                .remove(key)
                .map(|_| ())
                .ok_or(DiskError::NotFound)
        });
        async move { result }
    }

    fn rename(&self, from: &FileKey, to: &FileKey) -> impl Future<Output = Result<(), DiskError>> {
        let result = self
            .fault(from)
            .and_then(|()| self.fault(to))
            .and_then(|()| {
                let mut state = self.0.borrow_mut();
                let inode = state.files.remove(from).ok_or(DiskError::NotFound)?;
                state.files.insert(to.clone(), inode);
                Ok(())
            });
        async move { result }
    }
}

/// An open file: writes go at `pos` (overwriting, then extending).
pub(crate) struct FakeFile {
    disk: FakeDisk,
    key: FileKey,
    inode: Rc<RefCell<Inode>>,
    pos: usize,
}

impl WriteFile for FakeFile {
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<(), DiskError>> {
        let result = self.disk.fault(&self.key).map(|()| {
            let mut inode = self.inode.borrow_mut();
            let end = self.pos + data.len();
            if inode.data.len() < end {
                inode.data.resize(end, 0);
            }
            inode.data[self.pos..end].copy_from_slice(data);
            self.pos = end;
        });
        async move { result }
    }

    fn sync(&mut self) -> impl Future<Output = Result<(), DiskError>> {
        let result = self.disk.fault(&self.key).map(|()| {
            let mut inode = self.inode.borrow_mut();
            inode.durable = Some(inode.data.clone());
        });
        async move { result }
    }
}

// ------------------------------------------------------------ metastore ---

#[derive(Default)]
struct MetaState {
    shards: BTreeMap<TableShardId, ShardMeta>,
    writes: Vec<(TableShardId, MetaWrite)>,
    failing: bool,
}

/// In-memory metastore that records every write in order.
#[derive(Clone, Default)]
pub(crate) struct FakeMetaStore(Rc<RefCell<MetaState>>);

impl FakeMetaStore {
    /// Test set-up: store `meta` (not recorded as a write).
    pub(crate) fn set(&self, shard: TableShardId, meta: ShardMeta) {
        self.0.borrow_mut().shards.insert(shard, meta);
    }

    /// Apply a write now, without recording it (a background job's update).
    pub(crate) fn apply(&self, shard: &TableShardId, update: MetaWrite) {
        self.0
            .borrow_mut()
            .shards
            .entry(shard.clone())
            .or_default()
            .apply(update);
    }

    pub(crate) fn get(&self, shard: &TableShardId) -> ShardMeta {
        self.0
            .borrow()
            .shards
            .get(shard)
            .cloned()
            .unwrap_or_default()
    }

    /// Every write made through the [`MetaStore`] trait, in order.
    pub(crate) fn writes(&self) -> Vec<(TableShardId, MetaWrite)> {
        self.0.borrow().writes.clone()
    }

    /// Every later read, write and delete fails with an I/O error.
    pub(crate) fn set_failing(&self, failing: bool) {
        self.0.borrow_mut().failing = failing;
    }

    fn check(&self) -> Result<(), MetaError> {
        if self.0.borrow().failing {
            Err(MetaError::Io)
        } else {
            Ok(())
        }
    }
}

impl MetaStore for FakeMetaStore {
    fn read(&self, shard: &TableShardId) -> impl Future<Output = Result<ShardMeta, MetaError>> {
        let result = self.check().map(|()| self.get(shard));
        async move { result }
    }

    fn write(
        &self,
        shard: &TableShardId,
        update: MetaWrite,
    ) -> impl Future<Output = Result<(), MetaError>> {
        let result = self.check().map(|()| {
            let mut state = self.0.borrow_mut();
            state.writes.push((shard.clone(), update.clone()));
            state.shards.entry(shard.clone()).or_default().apply(update);
        });
        async move { result }
    }

    fn delete(&self, shard: &TableShardId) -> impl Future<Output = Result<(), MetaError>> {
        let result = self.check().map(|()| {
            self.0.borrow_mut().shards.remove(shard);
        });
        async move { result }
    }
}

// -------------------------------------------------------------- cluster ---

#[derive(Default)]
struct ClusterState {
    view: Rc<ClusterView>,
    watchers: Vec<Waker>,
    marked: Vec<(NodeId, Vec<ShardId>)>,
    mark_fails: bool,
}

/// The cluster view every host sees (one for the whole world), and a
/// placement service that records `mark_available` calls without applying
/// them (tests change the view themselves).
#[derive(Clone, Default)]
pub(crate) struct FakeCluster(Rc<RefCell<ClusterState>>);

impl FakeCluster {
    /// Replace the view as given (keep `version` increasing for watchers).
    pub(crate) fn set_view(&self, view: ClusterView) {
        let watchers = {
            let mut state = self.0.borrow_mut();
            state.view = Rc::new(view);
            std::mem::take(&mut state.watchers)
        };
        watchers.into_iter().for_each(Waker::wake);
    }

    /// Change the view with `f` and bump its version.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ClusterView)) {
        let mut view = (*self.0.borrow().view).clone();
        f(&mut view);
        view.version += 1;
        self.set_view(view);
    }

    /// Every `mark_available` call, in order (failed ones included).
    pub(crate) fn marked(&self) -> Vec<(NodeId, Vec<ShardId>)> {
        self.0.borrow().marked.clone()
    }

    pub(crate) fn set_mark_available_fails(&self, fails: bool) {
        self.0.borrow_mut().mark_fails = fails;
    }
}

impl Cluster for FakeCluster {
    fn view(&self) -> Rc<ClusterView> {
        Rc::clone(&self.0.borrow().view)
    }

    fn changed(&self, seen: u64) -> impl Future<Output = Rc<ClusterView>> {
        let this = self.clone();
        futures::future::poll_fn(move |cx| {
            let mut state = this.0.borrow_mut();
            if state.view.version > seen {
                Poll::Ready(Rc::clone(&state.view))
            } else {
                state.watchers.push(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn mark_available(
        &self,
        node: NodeId,
        shards: Vec<ShardId>,
    ) -> impl Future<Output = Result<(), ClusterError>> {
        let mut state = self.0.borrow_mut();
        state.marked.push((node, shards));
        let result = if state.mark_fails {
            Err(ClusterError::Unavailable)
        } else {
            Ok(())
        };
        async move { result }
    }
}

// ------------------------------------------------------------- upstream ---

#[derive(Default)]
struct UpstreamState {
    logs: BTreeMap<TableShardId, Vec<Record>>,
    unavailable: bool,
}

/// The upstream log: records per table shard, in offset order.
#[derive(Clone, Default)]
pub(crate) struct FakeUpstream(Rc<RefCell<UpstreamState>>);

impl FakeUpstream {
    /// Append records (keep offsets increasing).
    pub(crate) fn push(&self, shard: TableShardId, records: impl IntoIterator<Item = Record>) {
        self.0
            .borrow_mut()
            .logs
            .entry(shard)
            .or_default()
            .extend(records);
    }

    pub(crate) fn set_unavailable(&self, unavailable: bool) {
        self.0.borrow_mut().unavailable = unavailable;
    }
}

impl UpstreamLog for FakeUpstream {
    fn read(
        &self,
        shard: &TableShardId,
        from: Offset,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Record>, UpstreamError>> {
        let state = self.0.borrow();
        let result = if state.unavailable {
            Err(UpstreamError::Unavailable)
        } else {
            Ok(state
                .logs
                .get(shard)
                .map(|log| {
                    log.iter()
                        .filter(|r| r.offset >= from)
                        .take(max)
                        .copied()
                        .collect()
                })
                .unwrap_or_default())
        };
        async move { result }
    }
}

// ---------------------------------------------------------------- peers ---

/// A client connection to another host's [`PeerServer`] in the same world.
pub(crate) struct FakePeer {
    net: FakeNet,
    host: NodeId,
}

impl FakePeer {
    fn server(&self) -> Result<PeerServer<FakeEnv>, RpcError> {
        let hosts = self.net.0.hosts.borrow();
        match hosts.get(&self.host) {
            Some(Host {
                server: Some(s),
                down: false,
                ..
            }) => Ok(s.clone()),
            _ => Err(RpcError::Unavailable(self.host)),
        }
    }
}

impl PeerClient for FakePeer {
    type KeepAliveStream = FakeKeepAliveClient;
    type RawStream = FakeChunks;

    async fn health(&self) -> Result<bool, RpcError> {
        let server = self.server()?;
        let unhealthy = self
            .net
            .0
            .hosts
            .borrow()
            .get(&self.host)
            .is_some_and(|h| h.unhealthy);
        Ok(!unhealthy && server.health())
    }

    async fn start_session(&self, req: StartSessionRequest) -> Result<StartSessionReply, RpcError> {
        Ok(self.server()?.start_session(req).await?)
    }

    async fn keep_alive(&self) -> Result<FakeKeepAliveClient, RpcError> {
        let server = self.server()?;
        let (up_tx, up_rx) = mpsc::unbounded();
        let (down_tx, down_rx) = mpsc::unbounded();
        let end = FakeKeepAliveServer {
            rx: up_rx,
            tx: down_tx,
        };
        // Detached: the stream's task runs until the stream ends.
        let _task = self
            .net
            .host(self.host)
            .spawn("keep_alive_server", async move {
                let _ = server.serve_keep_alive(end).await;
            });
        Ok(FakeKeepAliveClient {
            net: self.net.clone(),
            host: self.host,
            tx: up_tx,
            rx: down_rx,
        })
    }

    async fn fetch_metadata(&self, req: MetadataRequest) -> Result<TableShardMetadata, RpcError> {
        Ok(self.server()?.fetch_metadata(req).await?)
    }

    async fn fetch_raw_data(&self, req: RawDataRequest) -> Result<FakeChunks, RpcError> {
        let mut chunks: VecDeque<Vec<u8>> = self.server()?.fetch_raw_data(req).await?.into();
        let breaks = self.net.with_host(self.host, |h| {
            let b = h.break_raw > 0;
            h.break_raw = h.break_raw.saturating_sub(1);
            b
        });
        if breaks {
            chunks.truncate(1);
        }
        Ok(FakeChunks {
            net: self.net.clone(),
            host: self.host,
            chunks,
            breaks,
        })
    }
}

/// A raw-data stream: the server's chunks, then the end (or a break).
pub(crate) struct FakeChunks {
    net: FakeNet,
    host: NodeId,
    chunks: VecDeque<Vec<u8>>,
    breaks: bool,
}

impl ChunkStream for FakeChunks {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        if self.net.is_down(self.host) {
            return Err(RpcError::StreamBroken(self.host));
        }
        match self.chunks.pop_front() {
            Some(c) => Ok(Some(c)),
            None if self.breaks => Err(RpcError::StreamBroken(self.host)),
            None => Ok(None),
        }
    }
}

enum Up {
    Message(KeepAlive),
    Closed,
}

enum Down {
    Ttl(Duration),
    End,
}

/// Client end of a fake keep-alive stream. Dropping it without
/// [`KeepAliveClient::close`] breaks the stream.
pub(crate) struct FakeKeepAliveClient {
    net: FakeNet,
    host: NodeId,
    tx: mpsc::UnboundedSender<Up>,
    rx: mpsc::UnboundedReceiver<Down>,
}

impl KeepAliveClient for FakeKeepAliveClient {
    async fn send(&mut self, msg: KeepAlive) -> Result<(), RpcError> {
        if self.net.is_down(self.host) {
            return Err(RpcError::Unavailable(self.host));
        }
        self.tx
            .unbounded_send(Up::Message(msg))
            .map_err(|_| RpcError::StreamBroken(self.host))
    }

    async fn recv(&mut self) -> Result<Option<Duration>, RpcError> {
        if self.net.is_down(self.host) {
            return Err(RpcError::StreamBroken(self.host));
        }
        match self.rx.next().await {
            Some(Down::Ttl(ttl)) => Ok(Some(ttl)),
            Some(Down::End) => Ok(None),
            None => Err(RpcError::StreamBroken(self.host)),
        }
    }

    fn close(self) {
        let _ = self.tx.unbounded_send(Up::Closed);
    }
}

/// Server end of a fake keep-alive stream. Dropping it without
/// [`KeepAliveServer::end`] breaks the stream for the client.
pub(crate) struct FakeKeepAliveServer {
    rx: mpsc::UnboundedReceiver<Up>,
    tx: mpsc::UnboundedSender<Down>,
}

impl FakeKeepAliveServer {
    /// A connected pair, for tests that drive `serve_keep_alive` by hand.
    pub(crate) fn pair(net: &FakeNet, host: NodeId) -> (FakeKeepAliveClient, FakeKeepAliveServer) {
        let (up_tx, up_rx) = mpsc::unbounded();
        let (down_tx, down_rx) = mpsc::unbounded();
        (
            FakeKeepAliveClient {
                net: net.clone(),
                host,
                tx: up_tx,
                rx: down_rx,
            },
            FakeKeepAliveServer {
                rx: up_rx,
                tx: down_tx,
            },
        )
    }
}

impl KeepAliveServer for FakeKeepAliveServer {
    async fn recv(&mut self) -> Incoming<KeepAlive> {
        match self.rx.next().await {
            Some(Up::Message(m)) => Incoming::Message(m),
            Some(Up::Closed) => Incoming::Closed,
            None => Incoming::Broken,
        }
    }

    fn reply(&mut self, ttl: Duration) {
        let _ = self.tx.unbounded_send(Down::Ttl(ttl));
    }

    fn end(self) {
        let _ = self.tx.unbounded_send(Down::End);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BatchId;

    fn key() -> FileKey {
        FileKey::RedoLog {
            shard: TableShardId::new("t", ShardId(1)),
            file: 1,
        }
    }

    async fn write(env: &FakeEnv, mode: OpenMode, data: &[u8], sync: bool) {
        let mut f = env.disk().open(&key(), mode).await.expect("open");
        f.write(data).await.expect("write");
        if sync {
            f.sync().await.expect("sync");
        }
    }

    #[test]
    fn open_modes_truncate_overwrite_and_append() {
        let mut w = FakeWorld::new(1);
        let env = w.host(NodeId(1));
        w.run(async {
            write(&env, OpenMode::Truncate, b"abcdef", true).await;
            write(&env, OpenMode::Overwrite, b"XY", false).await;
            assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"XYcdef"[..]));
            write(&env, OpenMode::Append, b"gh", false).await;
            assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"XYcdefgh"[..]));
            write(&env, OpenMode::Truncate, b"z", false).await;
            assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"z"[..]));
        });
        env.disk().crash();
        assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"abcdef"[..]));
    }

    #[test]
    fn unsynced_file_vanishes_on_crash() {
        let mut w = FakeWorld::new(1);
        let env = w.host(NodeId(1));
        w.run(write(&env, OpenMode::Truncate, b"a", false));
        env.disk().crash();
        assert_eq!(env.disk().get(&key()), None);
    }

    #[test]
    fn sleep_waits_for_the_clock_and_spawned_tasks_return_their_output() {
        let mut w = FakeWorld::new(1);
        let env = w.host(NodeId(1));
        let e = env.clone();
        let out = w.run(async move {
            let h = e.spawn("child", {
                let e = e.clone();
                async move {
                    e.sleep(Duration::from_secs(5)).await;
                    e.now()
                }
            });
            h.await
        });
        assert_eq!(out, Timestamp::from_secs(5));

        let e = env.clone();
        let task = w.spawn(async move { e.sleep(Duration::ZERO).await });
        w.run_until_stalled();
        w.fire_due();
        w.run(task);
        assert_eq!(env.now(), Timestamp::from_secs(5));
    }

    #[test]
    fn rng_is_seeded_and_per_host() {
        let a = FakeWorld::new(7);
        let b = FakeWorld::new(7);
        let draws = |w: &FakeWorld, n| {
            (0..3)
                .map(|_| w.host(NodeId(n)).random_u64())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(&a, 1), draws(&b, 1));
        assert_ne!(draws(&a, 2), draws(&b, 1));
    }

    #[test]
    fn metastore_applies_and_records_writes_in_order() {
        let mut w = FakeWorld::new(1);
        let env = w.host(NodeId(1));
        let id = TableShardId::new("t", ShardId(1));
        let b = crate::model::BatchMeta {
            version: crate::model::Cutoff(3),
            seq: 1,
            size: 2,
        };
        w.run(async {
            let m = env.metastore();
            m.write(&id, MetaWrite::CommitOffset(Offset(4)))
                .await
                .expect("write");
            m.write(
                &id,
                MetaWrite::BatchVersion {
                    batch: BatchId(9),
                    meta: b,
                },
            )
            .await
            .expect("write");
        });
        let meta = env.metastore().get(&id);
        assert_eq!(meta.commit_offset, Offset(4));
        assert_eq!(meta.batches.get(&BatchId(9)), Some(&b));
        assert_eq!(env.metastore().writes().len(), 2);
    }
}
