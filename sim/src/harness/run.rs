//! Running a scenario: build the world from the scenario and a seed, start
//! a data node on every host, play the workload and the steps, feed every
//! trace event to the oracle, and check the end state.
//!
//! This is the one code path behind `bootsim run`, the tests and (later) the
//! swarm, so that what a test shows is what a user gets.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use shardboot::datanode::DataNode;
use shardboot::env::DiskError;
use shardboot::table_shard::BootstrapState;
use shardboot::types::{Day, NodeId, ShardId, ShardState, TableName, TableShardId};

use crate::check::oracle::{
    EndState, HostState, Oracle, ReplicaState, Violation, ViolationKind, jobs_behind,
};
use crate::engine::executor::{self, RunEnd, Scheduler, Stats};
use crate::engine::schedule::{ReplayError, Schedule};
use crate::engine::time::VirtualTime;
use crate::engine::trace::{Keep, Recorder, Trace};
use crate::faults::steps::FaultAction;
use crate::harness::sim::Sim;
use crate::scenario::format::{Action, Expect, Scenario, Step};
use crate::world::lifecycle::{Lifecycle, Source};
use crate::world::state::{Defect, SimEnv, WorldRef};
use crate::world::topology::{PlacementService, served_table_shards};
use crate::world::upstream::row_value;

mod planted;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The root seed: every random choice of the run derives from it.
    pub seed: u64,
    /// How the next ready task is picked.
    pub scheduler: Scheduler,
    /// Re-make these recorded decisions instead of asking `scheduler` (see
    /// `crate::engine::schedule`); the run ends with [`Outcome::ReplayFailed`]
    /// if they do not fit it.
    pub replay: Option<Schedule>,
    /// Record every scheduling decision into [`Report::schedule`].
    pub record_schedule: bool,
    /// Trace events kept for the report (the hash covers all).
    pub keep: Keep,
    /// A bug planted in the world (tests of the oracle).
    pub defect: Option<Defect>,
}

impl RunOptions {
    /// Seed `seed`, the random scheduler, the last events kept.
    pub fn seed(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            scheduler: Scheduler::Random,
            replay: None,
            record_schedule: false,
            keep: Keep::Last(40),
            defect: None,
        }
    }
}

/// What a run gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Pass,
    /// An invariant was violated (the first one reported).
    Violation(Violation),
    /// A simulated task panicked: a bug in the code under test or the world.
    Panicked {
        /// The name of the task that panicked.
        task: String,
        /// Its panic message.
        message: String,
    },
    /// The replayed schedule ([`RunOptions::replay`]) does not fit the run.
    ReplayFailed(ReplayError),
}

impl Outcome {
    /// Whether this is what the scenario expects.
    pub fn matches(&self, expect: &Expect) -> bool {
        match (self, expect) {
            (Outcome::Pass, Expect::Pass) => true,
            (Outcome::Violation(v), Expect::Violation(name)) => v.kind.name() == name,
            _ => false,
        }
    }

    /// The name reports and `expect` use: `ok`, `violation: data-loss`, ...
    pub fn label(&self) -> String {
        match self {
            Outcome::Pass => "ok".into(),
            Outcome::Violation(v) => format!("violation: {}", v.kind.name()),
            Outcome::Panicked { .. } => "panic".into(),
            Outcome::ReplayFailed(_) => "replay-failed".into(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Pass => f.write_str("ok"),
            Outcome::Violation(v) => write!(f, "violation: {v}"),
            Outcome::Panicked { task, message } => write!(f, "panic: task {task}: {message}"),
            Outcome::ReplayFailed(e) => write!(f, "replay failed: {e}"),
        }
    }
}

/// The result of one run.
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed of the run.
    pub seed: u64,
    /// What the run gave.
    pub outcome: Outcome,
    /// Virtual time reached.
    pub end: VirtualTime,
    /// Executor counters (polls, timers, tasks).
    pub stats: Stats,
    /// The trace: kept events and the hash over all of them.
    pub trace: Trace,
    /// Every scheduling decision, when [`RunOptions::record_schedule`].
    pub schedule: Option<Schedule>,
}

/// Granularity at which the oracle catches up with the trace.
use super::operator::{auto_mark_available, bootstrap_again};
use super::watch::OracleWatch;

const SLICE: Duration = Duration::from_secs(1);

/// Run `scenario` once.
pub fn run(scenario: &Scenario, opts: RunOptions) -> Report {
    let recorder = Recorder::new(opts.keep, true);
    let max_polls = scenario.max_polls();
    let seed = opts.seed;
    let (outcome, end, stats, schedule) =
        recorder.record(|| Run::new(scenario, opts).play(&recorder, max_polls));
    Report {
        scenario: scenario.name.clone(),
        seed,
        outcome,
        end,
        stats,
        trace: recorder.trace(),
        schedule,
    }
}

/// One run in progress.
struct Run<'a> {
    sim: Sim,
    /// Table shards some serving replica has held data of.
    held_data: RefCell<BTreeSet<TableShardId>>,
    /// Every table's name (wiped by a defect).
    tables: Vec<TableName>,
    /// [`Defect::SecondProcessAtStart`] or [`Defect::SecondProcessLater`].
    second_process: Option<Defect>,
    oracle: Rc<RefCell<Oracle>>,
    /// What the world tells the oracle at the instants it checks at once.
    watch: Rc<OracleWatch>,
    scenario: &'a Scenario,
    seen_version: u64,
}

impl<'a> Run<'a> {
    fn new(scenario: &'a Scenario, opts: RunOptions) -> Run<'a> {
        let sim = match opts.replay {
            Some(schedule) => Sim::replaying(scenario, opts.seed, schedule),
            None => Sim::with_scheduler(scenario, opts.seed, opts.scheduler),
        };
        if opts.record_schedule {
            sim.record_schedule();
        }
        if let Some(d) = opts.defect {
            sim.world().plant(d);
        }
        let tables = scenario
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.schema().kind))
            .collect();
        let watch = Rc::new(OracleWatch::new(&sim.world().handle(), sim.nodes(), tables));
        sim.world().watch.install(watch.clone());
        let second_process = [Defect::SecondProcessAtStart, Defect::SecondProcessLater]
            .into_iter()
            .find(|d| sim.world().has_defect(*d));
        let table_names = scenario
            .tables
            .iter()
            .map(|t| TableName::from(t.name.as_str()))
            .collect();
        Run {
            sim,
            held_data: RefCell::default(),
            tables: table_names,
            second_process,
            oracle: Rc::new(RefCell::new(Oracle::default())),
            watch,
            scenario,
            seen_version: 0,
        }
    }

    fn play(
        mut self,
        recorder: &Recorder,
        max_polls: u64,
    ) -> (Outcome, VirtualTime, Stats, Option<Schedule>) {
        self.sim.start_all_nodes();
        self.spawn_steps();
        let mut until = VirtualTime::ZERO + self.scenario.duration;
        // Once converged after the heal: the time by which the background
        // jobs must have caught up (the run goes on past its duration if
        // need be).
        let mut jobs_deadline: Option<VirtualTime> = None;
        let liveness = self.scenario.liveness.map(|l| {
            let heal = VirtualTime::ZERO + l.heal_at;
            (heal, heal + l.within)
        });
        let mut healed = false;
        let mut wiped = false;
        let last_host = self.sim.world().hosts.keys().copied().last();
        let mut second_process = match (self.second_process, last_host) {
            (Some(Defect::SecondProcessAtStart), Some(host)) => Some((VirtualTime::ZERO, host)),
            (Some(_), _) => Some((VirtualTime::ZERO + Duration::from_secs(300), NodeId(1))),
            (None, _) => None,
        };
        let outcome = loop {
            if let Some((at, host)) = second_process
                && self.sim.now() >= at
            {
                second_process = None;
                self.sim.start_second_process(host);
            }
            if !wiped
                && self.sim.now() >= VirtualTime::ZERO + Duration::from_secs(300)
                && self.sim.world().has_defect(Defect::WipeShardZeroEverywhere)
            {
                wiped = true;
                self.wipe_shard_zero();
                self.sim.enter(|| self.check_replicas_hold_data());
            }
            let end = self
                .sim
                .run_until_bounded((self.sim.now() + SLICE).min(until), max_polls);
            self.observe(recorder);
            self.sim.enter(|| self.check_replicas_hold_data());
            self.observe(recorder);
            if let Some(v) = self.oracle.borrow().violation() {
                break Outcome::Violation(v.clone());
            }
            if let Some((heal, deadline)) = liveness {
                let now = self.sim.now();
                if !healed && now >= heal {
                    healed = true;
                    self.sim.enter(|| {
                        tracing::info!(target: "sim::run", "liveness_phase_started");
                    });
                    self.sim.heal_faults();
                }
                if jobs_deadline.is_none() && healed && self.sim.enter(|| self.converged()) {
                    self.sim
                        .enter(|| tracing::info!(target: "sim::run", "cluster_converged"));
                    let options = self.sim.lifecycle().options();
                    let by = now + options.archiving_interval + options.purge_interval;
                    jobs_deadline = Some(by);
                    until = until.max(by);
                }
                if let Some(jobs_by) = jobs_deadline {
                    match self.sim.enter(|| self.jobs_behind()) {
                        None => break self.sim.enter(|| self.end_state()),
                        Some(v) if now >= jobs_by => break Outcome::Violation(v),
                        Some(_) => {}
                    }
                } else if healed && now >= deadline {
                    break Outcome::Violation(self.sim.enter(|| self.stuck(deadline)));
                }
            }
            match end {
                RunEnd::TimeLimit if self.sim.now() < until => continue,
                RunEnd::TimeLimit | RunEnd::AllDone => break self.sim.enter(|| self.end_state()),
                RunEnd::Stopped => continue,
                RunEnd::StepLimit => {
                    break Outcome::Violation(Violation {
                        kind: ViolationKind::Liveness,
                        node: None,
                        shard: None,
                        at: self.sim.now(),
                        trace_index: None,
                        detail: format!("the run exceeded its step bound ({max_polls} polls)"),
                    });
                }
                RunEnd::Stalled { tasks } => {
                    break Outcome::Violation(Violation {
                        kind: ViolationKind::Liveness,
                        node: None,
                        shard: None,
                        at: self.sim.now(),
                        trace_index: None,
                        detail: format!("the simulation stalled; waiting: {}", tasks.join(", ")),
                    });
                }
                RunEnd::Panicked { task, message } => break Outcome::Panicked { task, message },
                RunEnd::ReplayFailed(e) => break Outcome::ReplayFailed(e),
            }
        };
        self.sim.enter(
            || tracing::info!(target: "sim::run", outcome = %outcome.label(), "run_finished"),
        );
        let (now, stats) = (self.sim.now(), self.sim.stats());
        (outcome, now, stats, self.sim.recorded_schedule())
    }

    /// Show the oracle the events recorded since the last call.
    fn observe(&mut self, recorder: &Recorder) {
        let events = recorder.take_new();
        let mut oracle = self.oracle.borrow_mut();
        let placement = &self.sim.world().placement;
        let current = placement.view().version;
        for v in self.seen_version + 1..=current {
            if let Some(view) = placement.version(v) {
                oracle.placement_published(v, view.placement.clone());
            }
        }
        self.seen_version = current;
        for ev in &events {
            oracle.observe(ev);
        }
        drop(oracle);
        recorder.retire(events);
    }

    fn spawn_steps(&self) {
        for step in &self.scenario.steps {
            let step: Step = step.get_ref().clone();
            let world = self.sim.world().placement.clone();
            let nodes = self.sim.nodes();
            let oracle = self.oracle.clone();
            let handle = self.sim.world().handle();
            let lifecycle = self.sim.lifecycle().clone();
            self.sim.spawn("step", None, async move {
                executor::sleep_until(VirtualTime::ZERO + step.at).await;
                apply_step(&step.action, &world, &nodes, &oracle, &handle, &lifecycle).await;
            });
        }
    }

    /// The first fact replica whose background jobs have not caught up
    /// ([`jobs_behind`], from its durable metadata), on a day taken ten
    /// seconds behind the virtual clock for host clocks a little behind it.
    fn jobs_behind(&self) -> Option<Violation> {
        let world = self.sim.world();
        let now = self.sim.now();
        let day = world.clock.now().0.saturating_sub(10_000) / 86_400_000;
        let today = Day(i32::try_from(day).unwrap_or(i32::MAX));
        for (node, dn) in self.sim.nodes().borrow().iter() {
            for ts in dn.table_shards() {
                let meta = world.hosts[node].disk.meta(ts.id());
                let lag = ts.store().config().archive_lag_days;
                if let Some(detail) = jobs_behind(ts.schema(), &meta, today, lag) {
                    return Some(Violation {
                        kind: ViolationKind::JobsStalled,
                        node: Some(*node),
                        shard: Some(ts.id().clone()),
                        at: now,
                        trace_index: None,
                        detail,
                    });
                }
            }
        }
        None
    }

    /// Every replica the placement assigns is `Available`, every running
    /// node has assigned the current view, and each of its table shards is
    /// bootstrapped.
    fn converged(&self) -> bool {
        let world = self.sim.world();
        let version = world.placement.view().version;
        world.placement.settled()
            && self.sim.nodes().borrow().values().all(|dn| {
                // A process that has not assigned the current view yet (say,
                // one the heal just restarted) has no table shards yet.
                dn.assigned_version() == Some(version)
                    && dn
                        .table_shards()
                        .iter()
                        .all(|ts| ts.state() == BootstrapState::Bootstrapped)
            })
    }

    /// The liveness violation at `deadline`: what is still stuck, and why.
    fn stuck(&self, deadline: VirtualTime) -> Violation {
        let world = self.sim.world();
        let mut stuck = Vec::new();
        for (shard, replicas) in &world.placement.view().placement.shards {
            for (node, state) in replicas {
                if *state != ShardState::Available {
                    stuck.push(format!("{node} shard {shard} is {state}"));
                }
            }
        }
        let oracle = self.oracle.borrow();
        for (node, dn) in self.sim.nodes().borrow().iter() {
            for ts in dn.table_shards() {
                if ts.state() != BootstrapState::Bootstrapped {
                    let why = oracle.last_error(*node, ts.id()).unwrap_or("no error yet");
                    stuck.push(format!(
                        "{node} {} {:?} at stage {} (last error: {why})",
                        ts.id(),
                        ts.state(),
                        ts.details().stage()
                    ));
                }
            }
        }
        Violation {
            kind: ViolationKind::Liveness,
            node: None,
            shard: None,
            at: deadline,
            trace_index: None,
            detail: format!("not converged after the heal: {}", stuck.join("; ")),
        }
    }

    /// Once some `Available`/`Leaving` replica of a table shard holds data
    /// (a durable commit offset past zero), at least one always does: for a
    /// fact table, a replica of its shard; for a dimension table, a replica
    /// of shard 0, which it is copied from. Reported as a probe event so it
    /// gets a trace index.
    fn check_replicas_hold_data(&self) {
        let world = self.sim.world();
        let view = world.placement.view();
        for (shard, replicas) in &view.placement.shards {
            for id in served_table_shards(&view, *shard) {
                let held = replicas.iter().any(|(n, s)| {
                    matches!(s, ShardState::Available | ShardState::Leaving)
                        && world.hosts[n].disk.commit_offset(&id).0 > 0
                });
                let seen = self.held_data.borrow().contains(&id);
                if held {
                    if !seen {
                        self.held_data.borrow_mut().insert(id);
                    }
                    continue;
                }
                if seen {
                    tracing::warn!(target: "sim::oracle", violation = "no-replica-holds-data",
                        table = %id.table, shard = %id.shard,
                        detail = "no Available or Leaving replica has any of its rows on disk",
                        "invariant_violated");
                    return;
                }
            }
        }
    }

    fn end_state(&self) -> Outcome {
        if self.sim.world().has_defect(Defect::MisdatedArchiveBatch) {
            self.misdate_archive_batch();
        }
        let world = self.sim.world();
        let view = world.placement.view();
        let mut replicas = Vec::new();
        let mut hosts = Vec::new();
        for (node, dn) in self.sim.nodes().borrow().iter() {
            let source = dn.peer_source();
            let known = source.known_hosts();
            hosts.push(HostState {
                node: *node,
                assigned: dn.assigned_version() == Some(view.version),
                closed: known
                    .iter()
                    .copied()
                    .filter(|h| source.is_closed(*h))
                    .collect(),
                known: known.into_iter().collect(),
                running: dn.manager().is_running(),
                pending: dn.manager().is_pending(),
            });
            let today = world.clock.now().day();
            for ts in dn.table_shards() {
                let disk = &world.hosts[node].disk;
                let rows = ts.store().held_rows_valued(
                    today,
                    |key| disk.contents(key).ok_or(DiskError::NotFound),
                    row_value,
                );
                replicas.push(ReplicaState {
                    node: *node,
                    shard: ts.id().clone(),
                    schema: ts.schema().clone(),
                    bootstrapped: ts.state() == BootstrapState::Bootstrapped,
                    today,
                    rows,
                    meta: disk.meta(ts.id()),
                    details: ts.details(),
                });
            }
        }
        let mut oracle = self.oracle.borrow_mut();
        oracle.check_end_state(EndState {
            at: self.sim.now(),
            placement: &view.placement,
            upstream: &world.upstream,
            replicas,
            hosts,
        });
        if oracle.violation().is_none()
            && let Some(v) = self.watch.leaked_session(self.sim.lifecycle())
        {
            oracle.report(v);
        }
        match oracle.violation() {
            Some(v) => Outcome::Violation(v.clone()),
            None => Outcome::Pass,
        }
    }
}

/// Carry out one operator step.
async fn apply_step(
    action: &Action,
    placement: &PlacementService,
    nodes: &RefCell<BTreeMap<NodeId, Rc<DataNode<SimEnv>>>>,
    oracle: &RefCell<Oracle>,
    world: &WorldRef,
    lifecycle: &Lifecycle,
) {
    tracing::info!(target: "sim::step", action = ?action, "step_started");
    let result = match action {
        Action::AddNode { node } => placement.add_node(node.0),
        Action::RemoveNode { node } => placement.remove_node(node.0),
        Action::ReplaceNode { old, new } => placement.replace_node(old.0, new.0),
        Action::RaiseReplicas { replicas } => placement.raise_replicas(*replicas),
        Action::Retry { node } => {
            if let Some(dn) = nodes.borrow().get(&node.0) {
                dn.retry();
            }
            Ok(())
        }
        Action::BootstrapAgain { node, table, shard } => {
            let id = TableShardId::new(table.clone(), ShardId(*shard));
            let dn = nodes.borrow().get(&node.0).cloned();
            if let Some(dn) = dn
                && let Some(v) = bootstrap_again(&dn, node.0, &id).await
            {
                oracle.borrow_mut().report(v);
            }
            Ok(())
        }
        Action::Fault(fault) => {
            crate::faults::steps::apply(world, fault);
            if matches!(fault, FaultAction::HealAll {}) {
                lifecycle.heal();
            }
            Ok(())
        }
        Action::Crash {
            node,
            restart_after,
        } => {
            lifecycle.crash(node.0, *restart_after, Source::Step);
            Ok(())
        }
        Action::Pause { node, duration } => {
            lifecycle.pause(node.0, *duration, Source::Step);
            Ok(())
        }
        Action::RestartEmpty { node } => {
            lifecycle.restart_empty(node.0, Source::Step);
            Ok(())
        }
        Action::RestartWithDiskOf { node, from } => {
            lifecycle.restart_with_disk_of(node.0, from.0, Source::Step);
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::info!(target: "sim::step", error = %e, "step_refused");
    }
    if world.has_defect(Defect::AutoMarkAvailable) {
        auto_mark_available(placement);
    }
}
