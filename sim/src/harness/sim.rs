//! [`Sim`]: a simulated cluster built from a scenario and a seed, for users'
//! own tests as much as for `bootsim run`. It owns the executor and the
//! world; code runs inside it with [`Sim::block_on`] or as spawned tasks.
//!
//! ```
//! use std::path::Path;
//! use bootsim::Scenario;
//! use bootsim::Sim;
//! use shardboot::types::NodeId;
//!
//! let text = r#"
//! name = "doc"
//! duration = "10m"
//! [cluster]
//! nodes = 2
//! replicas = 2
//! shards = 1
//! [[table]]
//! name = "trips"
//! kind = "fact"
//! "#;
//! let scenario = Scenario::parse(Path::new("doc.toml"), text).unwrap();
//! let mut sim = Sim::new(&scenario, 7);
//! sim.start_all_nodes();
//! sim.run_for(std::time::Duration::from_secs(60));
//! // Ask a node something from inside the simulation.
//! let node = sim.node(NodeId(1)).unwrap();
//! let ready = sim.block_on(None, async move { node.is_ready() }).unwrap();
//! assert!(ready);
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use shardboot::datanode::DataNode;
use shardboot::types::{NodeId, ShardState, Timestamp};

use crate::engine::executor::{Executor, JoinHandle, Limits, RunEnd, Scheduler, Stats};
use crate::engine::rng::SimRng;
use crate::engine::schedule::Schedule;
use crate::engine::time::VirtualTime;
use crate::scenario::format::{InitialState, Scenario};
use crate::world::clock::TrueClock;
use crate::world::lifecycle::Lifecycle;
use crate::world::state::{SimEnv, World};
use crate::world::topology::PlacementService;
use crate::world::upstream::Upstream;

pub use crate::world::lifecycle::Nodes;

/// A simulated cluster. Field order matters for teardown: the executor's
/// tasks go before the world they point into.
pub struct Sim {
    executor: Executor,
    world: World,
    lifecycle: Lifecycle,
    /// Processes started beside a host's own (planted defects only).
    extra: RefCell<Vec<Rc<DataNode<SimEnv>>>>,
}

impl Sim {
    /// The cluster of `scenario` at virtual time zero, with its workload
    /// producing and no data node started yet.
    pub fn new(scenario: &Scenario, seed: u64) -> Sim {
        Sim::with_scheduler(scenario, seed, Scheduler::Random)
    }

    /// [`Sim::new`] with another scheduler (a PCT scheduler without K
    /// spreads its change points over [`Scenario::estimated_steps`]).
    pub fn with_scheduler(scenario: &Scenario, seed: u64, scheduler: Scheduler) -> Sim {
        let scheduler = scheduler.with_estimated_steps(scenario.estimated_steps());
        let executor = Executor::new(SimRng::new(seed).fork("scheduler"), scheduler);
        Sim::build(scenario, seed, executor)
    }

    /// [`Sim::new`], its tasks scheduled by the recorded decisions of
    /// `schedule` (see `crate::engine::schedule`): the same run as the recorded
    /// one if scenario and seed are the same.
    pub fn replaying(scenario: &Scenario, seed: u64, schedule: Schedule) -> Sim {
        Sim::build(scenario, seed, Executor::replaying(schedule))
    }

    fn build(scenario: &Scenario, seed: u64, executor: Executor) -> Sim {
        let root = SimRng::new(seed);
        let c = &scenario.cluster;
        let all = c.all_nodes();
        let tables: BTreeMap<_, _> = scenario
            .tables
            .iter()
            .map(|t| {
                let schema = t.schema();
                (schema.name.clone(), schema)
            })
            .collect();
        let initial = match c.initial {
            InitialState::Available => ShardState::Available,
            InitialState::New => ShardState::Initializing,
        };
        let placement = PlacementService::new(
            &all[..c.nodes as usize],
            c.shards,
            c.replicas,
            initial,
            tables.clone(),
        );
        // The world keeps its own calendar (a day is 86,400 s from the
        // epoch), never the port's `Day::start`: a port whose calendar is
        // wrong must disagree with the world's.
        let day_start =
            Timestamp(u64::try_from(c.start_day).unwrap_or(0) * Timestamp::MILLIS_PER_DAY);
        let clock = TrueClock {
            start: day_start.saturating_add(c.start_time),
        };
        let world = World::new(
            &root,
            &all,
            clock,
            scenario.network.clone(),
            placement,
            Upstream::default(),
            &scenario.faults,
        );
        if scenario.faults.has_episodes() {
            executor.spawn(
                "fault_driver",
                None,
                crate::faults::random::drive(world.handle()),
            );
        }
        world.buggify.configure(scenario.buggify);
        let lifecycle = Lifecycle::new(world.handle(), scenario.bootstrap_options());
        if scenario.faults.node.any() {
            let driver = crate::faults::nodes::drive(
                lifecycle.clone(),
                scenario.faults.node.clone(),
                root.clone(),
            );
            executor.spawn("node_fault_driver", None, driver);
        }
        executor.spawn(
            "workload",
            None,
            world.upstream.produce(
                scenario.workload.clone(),
                tables.into_values().collect(),
                c.shards,
                clock,
                root.fork("workload"),
            ),
        );
        for defect in &scenario.defects {
            world.plant(*defect);
        }
        Sim {
            executor,
            world,
            lifecycle,
            extra: RefCell::default(),
        }
    }

    /// The simulated world (hosts, network, placement, upstream log).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// End every fault now and inject no more random ones (the runner's
    /// liveness phase calls this at the heal time; see
    /// `crate::world::faults::Faults::heal_all` and `Lifecycle::heal`).
    pub fn heal_faults(&self) {
        self.executor.enter(|| {
            self.world.faults.heal_all();
            self.world.buggify.heal();
            self.lifecycle.heal();
        });
    }

    /// The seams of `node`, for building pieces of a node by hand.
    pub fn env(&self, node: NodeId) -> SimEnv {
        self.world.env(node)
    }

    /// The current virtual time.
    pub fn now(&self) -> VirtualTime {
        self.executor.now()
    }

    /// The executor's counters so far.
    pub fn stats(&self) -> Stats {
        self.executor.stats()
    }

    /// Record every scheduling decision from now on.
    pub fn record_schedule(&self) {
        self.executor.record_schedule();
    }

    /// The decisions made since [`Sim::record_schedule`] (`None` when not
    /// recording): replayed with [`Sim::replaying`].
    pub fn recorded_schedule(&self) -> Option<Schedule> {
        self.executor.recorded_schedule()
    }

    /// Start a data node process on `node` (its loops start at once).
    pub fn start_node(&self, node: NodeId) {
        self.executor.enter(|| self.lifecycle.start(node));
    }

    /// Crashes, pauses and restarts of the hosts' processes.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Start a second data-node process on `node` beside the running one (a
    /// planted deployment bug): it shares the host's disk and placement, its
    /// peers keep talking to the first, and the end-state check ignores it.
    pub fn start_second_process(&self, node: NodeId) {
        let dn = DataNode::new(self.world.env(node), self.lifecycle.options().clone());
        self.executor.enter(|| {
            tracing::info!(target: "sim::defect", node = %node, "second_process_started");
            dn.start();
        });
        self.extra.borrow_mut().push(dn);
    }

    /// Start every host's data node.
    pub fn start_all_nodes(&self) {
        for node in self.world.hosts.keys().copied().collect::<Vec<_>>() {
            self.start_node(node);
        }
    }

    /// The running data node of `node`.
    pub fn node(&self, node: NodeId) -> Option<Rc<DataNode<SimEnv>>> {
        self.lifecycle.nodes().borrow().get(&node).cloned()
    }

    /// Every running data node (shared: steps may reach them from tasks).
    pub fn nodes(&self) -> Nodes {
        self.lifecycle.nodes()
    }

    /// Spawn a task (on `node`, or on no node).
    pub fn spawn<T: 'static>(
        &self,
        name: &'static str,
        node: Option<NodeId>,
        fut: impl Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        self.executor.spawn(name, node, fut)
    }

    /// Run `f` in the simulation's context (its clock, spawns, trace time).
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        self.executor.enter(f)
    }

    /// Run everything for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) -> RunEnd {
        let until = self.executor.now() + d;
        self.run_until(until)
    }

    /// Run everything up to virtual time `until`.
    pub fn run_until(&mut self, until: VirtualTime) -> RunEnd {
        self.executor.run(Limits {
            until,
            ..Limits::default()
        })
    }

    /// Run everything up to virtual time `until`, or until `max_polls`
    /// polls have been made since the start (a bound on runaway runs:
    /// [`RunEnd::StepLimit`]).
    pub fn run_until_bounded(&mut self, until: VirtualTime, max_polls: u64) -> RunEnd {
        self.executor.run(Limits {
            until,
            max_steps: max_polls,
        })
    }

    /// Run the simulation until `fut` (a task on `node`) completes, and
    /// return its output; or why it could not complete.
    pub fn block_on<T: 'static>(
        &mut self,
        node: Option<NodeId>,
        fut: impl Future<Output = T> + 'static,
    ) -> Result<T, RunEnd> {
        let out = Rc::new(RefCell::new(None));
        let slot = out.clone();
        self.executor.spawn("block_on", node, async move {
            let v = fut.await;
            *slot.borrow_mut() = Some(v);
        });
        let end = self
            .executor
            .run_until(Limits::default(), || out.borrow().is_some());
        out.take().ok_or(end)
    }
}
