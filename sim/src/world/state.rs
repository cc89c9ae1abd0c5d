//! The simulated world: hosts with their disks, clocks and RNG streams, the
//! network, the placement service and the upstream log, and [`SimEnv`], the
//! implementation of `shardboot`'s seams that the code under test runs on.
//!
//! Ownership: the [`World`] owns every host; a host's running data node holds
//! `SimEnv`s that point back at the world. [`World`]'s `Drop` tears the hosts
//! down so these cycles do not outlive a run (a swarm runs thousands).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::ops::Deref;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use shardboot::env::{Cluster, ClusterError, Env};
use shardboot::peer_server::PeerServer;
use shardboot::placement::ClusterView;
use shardboot::protocol::{RawDataRequest, RpcError, VectorPartyRef};
use shardboot::types::{NodeId, ShardId, ShardState, TableName, Timestamp};

use crate::engine::executor::{self, JoinHandle, sleep};
use crate::engine::rng::SimRng;
use crate::world::buggify::Buggify;
use crate::world::clock::TrueClock;
pub use crate::world::defect::Defect;
use crate::world::disk::NodeDisk;
use crate::world::faults::{FaultConfig, Faults};
use crate::world::listings::Listings;
use crate::world::net::{NetConfig, NetWorld, Servers, SimPeer};
use crate::world::topology::PlacementService;
use crate::world::upstream::Upstream;
use crate::world::watch::Watch;

/// One host of the world.
pub struct Host {
    pub disk: NodeDisk,
    rng: Rc<RefCell<SimRng>>,
    /// The host's peer-data server while its process runs.
    server: RefCell<Option<Rc<PeerServer<SimEnv>>>>,
}

/// Shared state of the world (reached from every [`SimEnv`]).
pub struct WorldState {
    pub clock: TrueClock,
    pub net: NetConfig,
    net_rng: RefCell<SimRng>,
    pub placement: PlacementService,
    pub upstream: Upstream,
    pub hosts: BTreeMap<NodeId, Host>,
    /// Defects planted on purpose, each firing once (see [`Defect`]).
    defects: RefCell<Vec<Defect>>,
    /// The files each copy session was told about (for the oracle).
    pub listings: Listings,
    /// State of [`Defect::BreakFirstVectorPartyThrice`]: the victim and how
    /// many more requests for it fail.
    broken_vector_party: RefCell<Option<(BrokenVectorParty, u32)>>,
    /// Injected faults: network, disks, node clocks, placement service.
    pub faults: Faults,
    /// BUGGIFY points: off until configured (see [`crate::world::buggify`]).
    pub buggify: Buggify,
    /// Whom to tell of the moments the oracle checks at once.
    pub watch: Watch,
    /// Streams a planted defect keeps open until the world ends.
    stranded: RefCell<Vec<Box<dyn std::any::Any>>>,
}

/// Backing state of [`Defect::ProcessGlobalLatency`]: deliberately shared by
/// every run in the process.
static STRAY_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Which vector party [`Defect::BreakFirstVectorPartyThrice`] breaks.
type BrokenVectorParty = (TableName, ShardId, VectorPartyRef);

/// A handle on the world state.
pub type WorldRef = Rc<WorldState>;

impl WorldState {
    /// The running peer server of `node`, if its process is up.
    pub fn server(&self, node: NodeId) -> Option<Rc<PeerServer<SimEnv>>> {
        self.hosts.get(&node)?.server.borrow().clone()
    }

    /// Make `server` the peer server `node`'s clients reach (`None`: the
    /// host is down).
    pub fn set_server(&self, node: NodeId, server: Option<Rc<PeerServer<SimEnv>>>) {
        *self.hosts[&node].server.borrow_mut() = server;
    }

    /// The seams for code running on `node`.
    pub fn env(self: &Rc<Self>, node: NodeId) -> SimEnv {
        let host = &self.hosts[&node];
        SimEnv {
            node,
            world: Rc::clone(self),
            disk: host.disk.clone(),
            rng: host.rng.clone(),
            cluster: SimCluster {
                world: Rc::clone(self),
            },
            upstream: self.upstream.clone(),
        }
    }

    /// One network hop's latency, from the `"net"` stream.
    pub fn latency(&self) -> Duration {
        let (lo, hi) = (self.net.latency_min, self.net.latency_max);
        let mut ns = self.net_rng.borrow_mut().between(
            lo.as_nanos() as u64,
            hi.as_nanos().max(lo.as_nanos()) as u64,
        );
        if self
            .defects
            .borrow()
            .contains(&Defect::ProcessGlobalLatency)
        {
            ns += STRAY_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 7 * 1_000_000;
        }
        Duration::from_nanos(ns)
    }

    /// [`Defect::BreakFirstVectorPartyThrice`] and `...Forever`: whether
    /// this request for `vp` must fail (the first fact vector party asked
    /// for, three times or always).
    pub fn breaks_vector_party(&self, req: &RawDataRequest) -> bool {
        let times = if self.has_defect(Defect::BreakFirstVectorPartyThrice) {
            3
        } else if self.has_defect(Defect::BreakFirstVectorPartyForever) {
            u32::MAX
        } else {
            return false;
        };
        let key = (
            req.session.table.clone(),
            req.session.shard,
            req.vector_party.clone(),
        );
        let mut target = self.broken_vector_party.borrow_mut();
        let (victim, left) = target.get_or_insert_with(|| (key.clone(), times));
        // Forever: every vector party of the victim's table shard, from any
        // source; thrice: exactly the first one.
        let hit = if times == u32::MAX {
            (&victim.0, victim.1) == (&key.0, key.1)
        } else {
            *victim == key
        };
        if !hit || *left == 0 {
            return false;
        }
        *left -= 1;
        tracing::info!(target: "sim::defect", table = %key.0, shard = %key.1,
            vector_party = ?key.2, left = *left, "defect_fired");
        true
    }

    /// Whether `defect` was planted (for defects that act throughout).
    pub fn has_defect(&self, defect: Defect) -> bool {
        self.defects.borrow().contains(&defect)
    }

    /// Whether the planted `defect` fires now (it fires once).
    pub fn defect_fires(&self, defect: Defect) -> bool {
        let mut defects = self.defects.borrow_mut();
        match defects.iter().position(|d| *d == defect) {
            Some(i) => {
                defects.remove(i);
                tracing::info!(target: "sim::defect", defect = ?defect, "defect_fired");
                true
            }
            None => false,
        }
    }

    /// Time to move `bytes` over a stream.
    pub fn transfer_time(&self, bytes: usize) -> Duration {
        let bw = self.net.bandwidth.max(1);
        Duration::from_nanos((bytes as u64).saturating_mul(1_000_000_000) / bw) + self.latency()
    }
}

/// The network reaches the world through these (see [`NetWorld`]).
impl NetWorld for WorldState {
    fn faults(&self) -> &Faults {
        &self.faults
    }

    fn latency(&self) -> Duration {
        WorldState::latency(self)
    }

    fn transfer_time(&self, bytes: usize) -> Duration {
        WorldState::transfer_time(self, bytes)
    }

    fn listings(&self) -> &Listings {
        &self.listings
    }

    fn defect_fires(&self, defect: Defect) -> bool {
        WorldState::defect_fires(self, defect)
    }

    fn strand(&self, stream: Box<dyn std::any::Any>) {
        self.stranded.borrow_mut().push(stream);
    }

    fn breaks_vector_party(&self, req: &RawDataRequest) -> bool {
        WorldState::breaks_vector_party(self, req)
    }

    fn disk(&self, node: NodeId) -> &NodeDisk {
        &self.hosts[&node].disk
    }
}

impl Servers<SimEnv> for WorldState {
    fn server(&self, node: NodeId) -> Option<Rc<PeerServer<SimEnv>>> {
        WorldState::server(self, node)
    }
}

/// The world of one run. Dropping it tears down every host.
pub struct World {
    state: WorldRef,
}

impl Deref for World {
    type Target = WorldState;
    fn deref(&self) -> &WorldState {
        &self.state
    }
}

impl World {
    /// A world of `nodes` hosts; each gets its own RNG stream forked from
    /// `rng` (`"node/n1"`, ...), the network the `"net"` stream, and each
    /// kind of fault its `"fault/<kind>"` stream.
    pub fn new(
        rng: &SimRng,
        nodes: &[NodeId],
        clock: TrueClock,
        net: NetConfig,
        placement: PlacementService,
        upstream: Upstream,
        faults: &FaultConfig,
    ) -> World {
        let faults = Faults::new(rng, faults, (net.latency_min, net.latency_max), nodes);
        let watch = Watch::default();
        placement.set_watch(watch.clone());
        let hosts = nodes
            .iter()
            .map(|n| {
                let host = Host {
                    disk: NodeDisk::with_faults(faults.disk()).watched(*n, watch.clone()),
                    rng: Rc::new(RefCell::new(rng.fork(&format!("node/{n}")))),
                    server: RefCell::new(None),
                };
                (*n, host)
            })
            .collect();
        World {
            state: Rc::new(WorldState {
                clock,
                net,
                net_rng: RefCell::new(rng.fork("net")),
                placement,
                upstream,
                hosts,
                defects: RefCell::new(Vec::new()),
                listings: Listings::default(),
                broken_vector_party: RefCell::new(None),
                faults,
                buggify: Buggify::new(rng),
                watch,
                stranded: RefCell::default(),
            }),
        }
    }

    /// A shared handle on the world state (for tasks that outlive a borrow,
    /// such as scenario steps and the fault driver).
    pub fn handle(&self) -> WorldRef {
        self.state.clone()
    }

    /// The seams for code running on `node`.
    pub fn env(&self, node: NodeId) -> SimEnv {
        self.state.env(node)
    }

    /// Plant a defect in the world.
    pub fn plant(&self, defect: Defect) {
        if defect == Defect::StuckArchivingCutoff
            && let Some(host) = self.state.hosts.get(&NodeId(2))
        {
            host.disk.refuse_cutoff_writes();
        }
        self.state.defects.borrow_mut().push(defect);
    }

    /// Make `server` the peer server `node`'s clients reach.
    pub fn set_server(&self, node: NodeId, server: Option<Rc<PeerServer<SimEnv>>>) {
        self.state.set_server(node, server);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.state.watch.clear();
        self.state.stranded.borrow_mut().clear();
        for host in self.state.hosts.values() {
            host.server.borrow_mut().take();
        }
    }
}

/// `shardboot`'s seams for one host of the simulated world.
#[derive(Clone)]
pub struct SimEnv {
    node: NodeId,
    world: WorldRef,
    disk: NodeDisk,
    rng: Rc<RefCell<SimRng>>,
    cluster: SimCluster,
    upstream: Upstream,
}

impl Env for SimEnv {
    type Disk = NodeDisk;
    type MetaStore = NodeDisk;
    type Peer = SimPeer<SimEnv>;
    type Cluster = SimCluster;
    type Upstream = Upstream;
    type JoinHandle<T: 'static> = JoinHandle<T>;

    fn node(&self) -> NodeId {
        self.node
    }

    fn now(&self) -> Timestamp {
        self.world.faults.node_now(self.node, &self.world.clock)
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        sleep(d)
    }

    fn spawn<T: 'static>(
        &self,
        name: &'static str,
        fut: impl Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        executor::spawn_on(name, Some(self.node), fut)
    }

    fn random_u64(&self) -> u64 {
        self.rng.borrow_mut().next_u64()
    }

    fn buggify(&self, point: &'static str) -> bool {
        self.world.buggify.hit(point, self.node)
    }

    fn disk(&self) -> &NodeDisk {
        &self.disk
    }

    fn metastore(&self) -> &NodeDisk {
        &self.disk
    }

    async fn dial(&self, host: NodeId) -> Result<SimPeer<SimEnv>, RpcError> {
        if self.world.hosts.contains_key(&host) {
            Ok(SimPeer::new(
                self.node,
                host,
                self.world.clone() as Rc<dyn Servers<SimEnv>>,
            ))
        } else {
            Err(RpcError::Unavailable(host))
        }
    }

    fn cluster(&self) -> &SimCluster {
        &self.cluster
    }

    fn upstream(&self) -> &Upstream {
        &self.upstream
    }
}

/// A host's connection to the placement service.
#[derive(Clone)]
pub struct SimCluster {
    world: WorldRef,
}

impl SimCluster {
    /// The view as this host receives it (with a planted lie, if any).
    fn received(world: &WorldState, view: Rc<ClusterView>) -> Rc<ClusterView> {
        if !world
            .defects
            .borrow()
            .contains(&Defect::PhantomReplicaInView)
        {
            return view;
        }
        let mut lie = (*view).clone();
        for replicas in lie.placement.shards.values_mut() {
            replicas.insert(NodeId(99), ShardState::Available);
        }
        Rc::new(lie)
    }
}

impl Cluster for SimCluster {
    fn view(&self) -> Rc<ClusterView> {
        SimCluster::received(&self.world, self.world.placement.view())
    }

    fn changed(&self, seen: u64) -> impl Future<Output = Rc<ClusterView>> {
        let world = self.world.clone();
        poll_fn(move |cx| {
            let service = &world.placement;
            let view = service.view();
            if view.version > seen {
                Poll::Ready(SimCluster::received(&world, view))
            } else {
                service.watch(cx.waker());
                Poll::Pending
            }
        })
    }

    async fn mark_available(&self, node: NodeId, shards: Vec<ShardId>) -> Result<(), ClusterError> {
        sleep(self.world.latency()).await;
        let result = match self.world.faults.mark_available_fault().await {
            Some(e) => Err(e),
            None => self.world.placement.mark_available(node, &shards),
        };

        sleep(self.world.latency()).await;
        result
    }
}
