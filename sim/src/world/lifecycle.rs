//! Node lifecycle faults: a host's process crashes and restarts, stalls (a
//! GC-like pause), or restarts on an empty disk or on a copy of another
//! host's disk. Scripted as scenario steps (`crash`, `pause`,
//! `restart_empty`, `restart_with_disk_of`) and drawn at random from
//! `[faults.node]` by [`crate::faults::nodes::drive`].
//!
//! What is modelled:
//! - **crash**: the host's tasks are dropped at their await points
//!   ([`executor::kill_node`]), its peer server leaves the network (peers'
//!   calls fail "unavailable", its streams break), and its disk loses what
//!   was not synced (torn when `[faults.disk] torn_write` says so, see
//!   [`crate::world::faults::Faults::crash_disk`]); the metastore is durable.
//!   After `restart_after` a fresh [`DataNode`] starts on the same disk:
//!   nothing in memory survives (docs/MODEL.md §5).
//! - **pause**: none of the host's tasks is polled for a while; wake-ups
//!   meanwhile (timers too) are kept and delivered on resume
//!   ([`executor::pause_node`]). Its server stays registered: requests to
//!   it wait (their server-side work runs as parked tasks of the host), so
//!   peers see it slow, not down.
//! - **restart_empty** / **restart_with_disk_of**: the process dies (if it
//!   runs), the disk is erased or replaced by a copy of another host's disk
//!   as it reads now, and a fresh process starts at once. Drawn at random,
//!   it is refused when the host holds the only serving copy of some table
//!   shard's data (`crate::faults::atlas::disk_loss_allowed`); a scripted step
//!   is not.
//!
//! Trace: every fault injected is `sim::fault` `fault_injected` (`kind`
//! `crash`, `pause`, `restart_empty` or `restart_with_disk_of`, `node`,
//! `source` `step` or `random`); one that cannot apply is `fault_refused`
//! with a `reason`. For the oracle, `sim::lifecycle` events: `node_crashed`
//! (its in-memory state is gone), `node_restarted` (`disk` `own`, `empty` or
//! `copy of nX`), `node_paused`, `node_resumed`, and `node_faults_healed`.
//! Coverage probes ([`shardboot::probe`]): a source crashed or paused
//! mid-copy, a copying host crashed, a restart on another host's disk.
//!
//! Not modelled: a crash inside one poll (a task dies at an await point),
//! a restart that fails, partial disk loss, and clocks: a host's clock is
//! the world's and keeps its skew across a restart.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use shardboot::datanode::DataNode;
use shardboot::options::Options;
use shardboot::probe::Probe;
use shardboot::table_shard::BootstrapState;
use shardboot::types::NodeId;

use crate::engine::executor::{self, sleep};

use crate::world::state::{SimEnv, WorldRef};

/// The data nodes running in a simulation, by host.
pub type Nodes = Rc<RefCell<BTreeMap<NodeId, Rc<DataNode<SimEnv>>>>>;

/// Where a host's process stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeStatus {
    /// Never started.
    #[default]
    Stopped,
    Up,
    Paused,
    /// Crashed, waiting for its restart.
    Down,
}

/// Who asked for a fault (traced as `source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Step,
    Random,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Step => "step",
            Source::Random => "random",
        }
    }
}

/// What a restarted process finds on its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DiskAfter {
    Own,
    Empty,
    CopyOf(NodeId),
}

impl fmt::Display for DiskAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskAfter::Own => f.write_str("own"),
            DiskAfter::Empty => f.write_str("empty"),
            DiskAfter::CopyOf(n) => write!(f, "copy of {n}"),
        }
    }
}

/// A host's status, and a counter bumped at every change so that a
/// scheduled restart or resume only acts on the state it was made for.
#[derive(Clone, Copy, Debug, Default)]
struct Host {
    status: NodeStatus,
    epoch: u64,
}

struct Inner {
    world: WorldRef,
    options: Options,
    nodes: Nodes,
    hosts: RefCell<BTreeMap<NodeId, Host>>,
    /// Set by [`Lifecycle::heal`]: no more random node faults.
    healed: Cell<bool>,
}

/// Starts, crashes, pauses and restarts the hosts' processes. Cloning
/// shares it. Every method but [`Lifecycle::new`] and the inspectors runs
/// inside the simulation (it spawns and reads virtual time).
#[derive(Clone)]
pub struct Lifecycle {
    inner: Rc<Inner>,
}

impl Lifecycle {
    /// Every host stopped; processes get `options`.
    pub fn new(world: WorldRef, options: Options) -> Lifecycle {
        Lifecycle {
            inner: Rc::new(Inner {
                world,
                options,
                nodes: Nodes::default(),
                hosts: RefCell::default(),
                healed: Cell::new(false),
            }),
        }
    }

    /// The options every process starts with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The running data nodes (a crashed host has none).
    pub fn nodes(&self) -> Nodes {
        Rc::clone(&self.inner.nodes)
    }

    /// The world the hosts live in.
    pub(crate) fn world(&self) -> &WorldRef {
        &self.inner.world
    }

    /// Whether [`Lifecycle::heal`] ran: no more random node faults.
    pub(crate) fn is_healed(&self) -> bool {
        self.inner.healed.get()
    }

    pub fn status(&self, node: NodeId) -> NodeStatus {
        self.host(node).status
    }

    fn host(&self, node: NodeId) -> Host {
        self.inner
            .hosts
            .borrow()
            .get(&node)
            .copied()
            .unwrap_or_default()
    }

    fn set_status(&self, node: NodeId, status: NodeStatus) {
        let mut hosts = self.inner.hosts.borrow_mut();
        let host = hosts.entry(node).or_default();
        host.status = status;
        host.epoch += 1;
    }

    /// Hosts crashed or paused now.
    pub(crate) fn down_count(&self) -> usize {
        self.inner
            .hosts
            .borrow()
            .values()
            .filter(|h| matches!(h.status, NodeStatus::Down | NodeStatus::Paused))
            .count()
    }

    /// Start a fresh data-node process on `node` and make its server
    /// reachable.
    pub fn start(&self, node: NodeId) {
        let world = &self.inner.world;
        let dn = DataNode::new(world.env(node), self.inner.options.clone());
        world.set_server(node, Some(dn.peer_server()));
        self.inner.nodes.borrow_mut().insert(node, Rc::clone(&dn));
        self.set_status(node, NodeStatus::Up);
        dn.start();
    }

    /// Crash `node` and restart it on its own disk after `restart_after`.
    pub fn crash(&self, node: NodeId, restart_after: Duration, source: Source) {
        if !self.running(node, "crash") {
            return;
        }
        tracing::info!(target: "sim::fault", kind = "crash", node = %node,
            restart_after_ms = restart_after.as_millis() as u64, source = source.name(),
            "fault_injected");
        self.kill(node);
        let this = self.clone();
        self.after(node, restart_after, "node_restart", move || {
            this.restart(node, DiskAfter::Own);
        });
    }

    /// Stall `node` for `d`.
    pub fn pause(&self, node: NodeId, d: Duration, source: Source) {
        if self.status(node) != NodeStatus::Up {
            self.refuse("pause", node, "the host is not running");
            return;
        }
        tracing::info!(target: "sim::fault", kind = "pause", node = %node,
            for_ms = d.as_millis() as u64, source = source.name(), "fault_injected");
        if self.serves_a_copy(node) {
            Probe::SourcePausedMidCopy.hit();
        }
        executor::pause_node(node);
        self.set_status(node, NodeStatus::Paused);
        tracing::info!(target: "sim::lifecycle", node = %node, "node_paused");
        let this = self.clone();
        self.after(node, d, "node_resume", move || this.resume(node));
    }

    /// Restart `node` at once on an erased disk.
    pub fn restart_empty(&self, node: NodeId, source: Source) {
        self.restart_replacing_disk(node, DiskAfter::Empty, source);
    }

    /// Restart `node` at once on a copy of `from`'s disk.
    pub fn restart_with_disk_of(&self, node: NodeId, from: NodeId, source: Source) {
        self.restart_replacing_disk(node, DiskAfter::CopyOf(from), source);
    }

    /// End every node fault now: paused hosts resume, crashed ones restart
    /// on their own disks, and no random node fault follows (the runner's
    /// liveness phase).
    pub fn heal(&self) {
        self.inner.healed.set(true);
        let hosts: Vec<(NodeId, NodeStatus)> = self
            .inner
            .hosts
            .borrow()
            .iter()
            .map(|(n, h)| (*n, h.status))
            .collect();
        let (mut resumed, mut restarted) = (0, 0);
        for (node, status) in hosts {
            match status {
                NodeStatus::Paused => {
                    self.resume(node);
                    resumed += 1;
                }
                NodeStatus::Down => {
                    self.restart(node, DiskAfter::Own);
                    restarted += 1;
                }
                NodeStatus::Up | NodeStatus::Stopped => {}
            }
        }
        tracing::info!(target: "sim::lifecycle", resumed, restarted, "node_faults_healed");
    }

    fn restart_replacing_disk(&self, node: NodeId, disk: DiskAfter, source: Source) {
        let kind = match disk {
            DiskAfter::Empty => "restart_empty",
            _ => "restart_with_disk_of",
        };
        if self.status(node) == NodeStatus::Stopped {
            self.refuse(kind, node, "the host was never started");
            return;
        }
        tracing::info!(target: "sim::fault", kind, node = %node, disk = %disk,
            source = source.name(), "fault_injected");
        if self.status(node) != NodeStatus::Down {
            self.kill(node);
        }
        self.restart(node, disk);
    }

    /// Whether `node` runs (up or paused); traces the refusal if not.
    fn running(&self, node: NodeId, kind: &'static str) -> bool {
        let up = matches!(self.status(node), NodeStatus::Up | NodeStatus::Paused);
        if !up {
            self.refuse(kind, node, "the host is not running");
        }
        up
    }

    pub(crate) fn refuse(&self, kind: &'static str, node: NodeId, reason: &'static str) {
        tracing::info!(target: "sim::fault", kind, node = %node, reason, "fault_refused");
    }

    /// The crash itself: server gone, tasks dropped, a pause lifted,
    /// unsynced data lost.
    fn kill(&self, node: NodeId) {
        let world = &self.inner.world;
        if self.serves_a_copy(node) {
            Probe::SourceCrashedMidCopy.hit();
        }
        if self.copies(node) {
            Probe::CopyingHostCrashed.hit();
        }
        world.watch.notify(|w| w.process_killed(node));
        world.set_server(node, None);
        self.inner.nodes.borrow_mut().remove(&node);
        let tasks = executor::kill_node(node);
        executor::resume_node(node);
        world.faults.crash_disk(&world.hosts[&node].disk);
        self.set_status(node, NodeStatus::Down);
        tracing::info!(target: "sim::lifecycle", node = %node, tasks, "node_crashed");
    }

    /// Whether some host's peer server has a copy session open.
    pub(crate) fn copy_in_progress(&self) -> bool {
        self.inner
            .world
            .hosts
            .keys()
            .any(|n| self.serves_a_copy(*n))
    }

    /// The other hosts with a copy session open on `node`'s peer server.
    pub(crate) fn copy_clients(&self, node: NodeId) -> Vec<NodeId> {
        let world = &self.inner.world;
        let Some(server) = world.server(node) else {
            return Vec::new();
        };
        let clients: std::collections::BTreeSet<NodeId> = server
            .sessions()
            .into_iter()
            .map(|s| s.node)
            .filter(|n| *n != node && world.hosts.contains_key(n))
            .collect();
        clients.into_iter().collect()
    }

    /// Whether `node`'s peer server has a copy session open.
    fn serves_a_copy(&self, node: NodeId) -> bool {
        self.inner
            .world
            .server(node)
            .is_some_and(|s| !s.sessions().is_empty())
    }

    /// Whether a table shard of `node`'s process is copying from a peer
    /// (bootstrapping, its copy not yet done).
    fn copies(&self, node: NodeId) -> bool {
        self.inner.nodes.borrow().get(&node).is_some_and(|dn| {
            dn.table_shards()
                .iter()
                .any(|ts| ts.state() == BootstrapState::Bootstrapping && ts.needs_peer_copy())
        })
    }

    /// A fresh process on `node`, on the disk `disk` says.
    fn restart(&self, node: NodeId, disk: DiskAfter) {
        let hosts = &self.inner.world.hosts;
        match disk {
            DiskAfter::Own => {}
            DiskAfter::Empty => hosts[&node].disk.erase(),
            DiskAfter::CopyOf(from) => {
                hosts[&node].disk.copy_from(&hosts[&from].disk);
                Probe::RestartedOnAnotherHostsDisk.hit();
            }
        }
        tracing::info!(target: "sim::lifecycle", node = %node, disk = %disk, "node_restarted");
        self.start(node);
    }

    fn resume(&self, node: NodeId) {
        executor::resume_node(node);
        self.set_status(node, NodeStatus::Up);
        tracing::info!(target: "sim::lifecycle", node = %node, "node_resumed");
    }

    /// Run `f` after `d`, unless `node`'s state changed meanwhile (another
    /// fault, a heal).
    fn after(&self, node: NodeId, d: Duration, name: &'static str, f: impl FnOnce() + 'static) {
        let epoch = self.host(node).epoch;
        let this = self.clone();
        let _timer = executor::spawn_on(name, None, async move {
            sleep(d).await;
            if this.host(node).epoch == epoch {
                f();
            }
        });
    }
}
