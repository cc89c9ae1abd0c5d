//! `bootsim shrink`: minimise a failing run into the smallest scenario that
//! still shows the *same* violation (matched by name, as `expect` is).
//!
//! Greedy delta debugging over reductions of the scenario — drop steps
//! (halves, quarters, ... single ones), tables, nodes (renumbering the rest),
//! shards, replicas, columns, quirks and options; cut the duration to just
//! past the violation; move steps earlier; lower the workload rates — each
//! candidate re-run with the input's (fixed) seed and scheduler, and kept
//! when it still fails the same way. It repeats until a whole pass keeps
//! nothing (or the run budget is spent).
//!
//! A failure that the input's quirks cause (the input passes with them
//! switched off) stays the quirks' doing: a candidate then also has to pass
//! with its quirks off, so the result is a quirk regression as it stands.
//!
//! What it deliberately does not do: it does not search over seeds. The
//! result still reproduces with the seed in its `[replay]` section (the
//! schedule, latencies and workload are drawn from it); the header says so,
//! and how many other seeds also fail.
//!
//! Faults: fault steps are steps (dropped like any other); random fault
//! kinds of `[faults]` are switched off one by one and their rates halved.
//! At the end, random fault *episodes* that fired (partitions, held links,
//! unhealthy hosts, clock jumps) are written out as explicit fault steps
//! when the run still fails that way ([`explicit_faults`]); per-message
//! faults (drops, cuts, disk errors) have no scripted equivalent and stay
//! random, decided by the seed.

use std::time::Duration;

use shardboot::types::NodeId;
use toml::Spanned;

use crate::check::oracle::Violation;
use crate::engine::duration;
use crate::engine::executor::Scheduler;
use crate::engine::rng::Ratio;
use crate::engine::trace::Keep;
use crate::harness::artifact::to_toml;
use crate::harness::run::{Outcome, RunOptions, run};
use crate::scenario::format::{Action, Expect, OptionsSpec, ReplaySpec, Scenario, Step};
use crate::scenario::randomise::fault_ratios;
use crate::world::faults::FaultConfig;
use crate::world::node_name::NodeName;

/// How big a scenario is, in the terms the shrinker reduces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    pub steps: usize,
    pub nodes: u32,
    pub spare_nodes: u32,
    pub shards: u32,
    pub replicas: usize,
    pub tables: usize,
    pub columns: u32,
    pub quirks: usize,
    /// Random fault kinds of `[faults]` switched on (rate above zero).
    pub fault_kinds: usize,
    pub duration: Duration,
    pub rows_per_second: u32,
    pub upserts_per_second: u32,
}

impl Size {
    pub fn of(s: &Scenario) -> Size {
        Size {
            steps: s.steps.len(),
            nodes: s.cluster.nodes,
            spare_nodes: s.cluster.spare_nodes,
            shards: s.cluster.shards,
            replicas: s.cluster.replicas,
            tables: s.tables.len(),
            columns: s.tables.iter().map(|t| t.columns).sum(),
            quirks: s.quirks.len(),
            fault_kinds: fault_kinds_on(&s.faults).len(),
            duration: s.duration,
            rows_per_second: s.workload.rows_per_second,
            upserts_per_second: s.workload.upserts_per_second,
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} steps, {} nodes + {} spare, {} shards x {} replicas, {} tables / {} columns, {} quirks, {} random fault kinds, {}, {} rows/s, {} upserts/s",
            self.steps,
            self.nodes,
            self.spare_nodes,
            self.shards,
            self.replicas,
            self.tables,
            self.columns,
            self.quirks,
            self.fault_kinds,
            duration::format(self.duration),
            self.rows_per_second,
            self.upserts_per_second
        )
    }
}

/// The result of a shrink.
pub struct Shrunk {
    /// The smallest failing scenario, with `expect` and `[replay]` set.
    pub scenario: Scenario,
    /// The violation it shows.
    pub violation: Violation,
    pub seed: u64,
    pub scheduler: Scheduler,
    pub trace_hash: String,
    /// Runs made (including the first).
    pub runs: usize,
    /// Fault steps written in place of random fault episodes that fired
    /// (0: none were converted).
    pub explicit_steps: usize,
    pub before: Size,
    pub after: Size,
}

/// Why there is nothing to shrink.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("the scenario does not fail with seed {seed}: {outcome}")]
    NotFailing { seed: u64, outcome: String },
    #[error("the scenario fails with {got}, not the expected violation {want}")]
    OtherFailure { want: String, got: String },
}

/// A reduction: candidates smaller than `s` (which fails with `v`).
type Reduction = fn(&Scenario, &Violation) -> Vec<Scenario>;

/// The reductions, biggest wins first (a shorter run makes every later
/// candidate cheaper).
pub const REDUCTIONS: &[(&str, Reduction)] = &[
    ("cut duration", cut_duration),
    ("drop steps", drop_steps),
    ("drop tables", drop_tables),
    ("drop nodes", drop_nodes),
    ("fewer shards", fewer_shards),
    ("fewer replicas", fewer_replicas),
    ("fewer columns", fewer_columns),
    ("drop fault kinds", drop_fault_kinds),
    ("drop quirks", drop_quirks),
    ("default options", default_options),
    ("lower rates", lower_rates),
    ("lower fault rates", lower_fault_rates),
    ("earlier steps", earlier_steps),
];

/// Shrink `input` (whose `[replay]` gives seed and scheduler; else seed 1
/// and its `scheduler`, else random). The target violation is `input`'s
/// `expect`, or what its run shows if it expects a pass. `progress` hears of every kept reduction.
pub fn shrink(
    input: &Scenario,
    max_runs: usize,
    mut progress: impl FnMut(&str),
) -> Result<Shrunk, ShrinkError> {
    let (seed, scheduler) = input
        .replay
        .as_ref()
        .map_or((1, input.scheduler.unwrap_or_default()), |r| {
            (r.seed, r.scheduler)
        });
    // K of a PCT scheduler fixed from the input: cutting the duration must
    // not move the change points.
    let scheduler = scheduler.with_estimated_steps(input.estimated_steps());
    let attempt = |s: &Scenario| {
        run(
            s,
            RunOptions {
                scheduler,
                keep: Keep::Last(0),
                ..RunOptions::seed(seed)
            },
        )
    };
    let first = attempt(input);
    let mut violation = match (&first.outcome, &input.expect) {
        (Outcome::Violation(v), Expect::Violation(want)) if v.kind.name() != want => {
            return Err(ShrinkError::OtherFailure {
                want: want.clone(),
                got: v.kind.name().into(),
            });
        }
        (Outcome::Violation(v), _) => v.clone(),
        (other, _) => {
            return Err(ShrinkError::NotFailing {
                seed,
                outcome: other.to_string(),
            });
        }
    };
    let target = violation.kind;
    let mut hash = first.trace.hash();
    let mut current = input.clone();
    let mut runs = 1;
    // A failure that the input's quirks cause (it passes with them off)
    // stays one: a candidate then counts only if it passes with its quirks
    // off too. Otherwise the shrinker can drift to another failure that
    // shows the same violation in the fixed code, and drop the quirks on
    // the way.
    let blame_quirks = !input.quirks.is_empty() && {
        runs += 1;
        attempt(&without_quirks(input)).outcome == Outcome::Pass
    };
    let shows_target = |s: &Scenario, runs: &mut usize| {
        *runs += 1;
        let report = attempt(s);
        let Outcome::Violation(v) = &report.outcome else {
            return None;
        };
        if v.kind != target {
            return None;
        }
        if blame_quirks {
            *runs += 1;
            if attempt(&without_quirks(s)).outcome != Outcome::Pass {
                return None;
            }
        }
        Some((v.clone(), report.trace.hash()))
    };
    'passes: loop {
        let mut changed = false;
        for (name, reduce) in REDUCTIONS {
            'again: loop {
                for candidate in reduce(&current, &violation) {
                    // Only valid scenarios, exactly as their file would say.
                    let Ok(candidate) = Scenario::parse(
                        std::path::Path::new("shrink-candidate.toml"),
                        &to_toml(&candidate),
                    ) else {
                        continue;
                    };
                    if runs >= max_runs {
                        break 'passes;
                    }
                    if let Some((v, h)) = shows_target(&candidate, &mut runs) {
                        progress(&format!("{name}: {}", Size::of(&candidate)));
                        violation = v;
                        hash = h;
                        current = candidate;
                        changed = true;
                        continue 'again;
                    }
                }
                break;
            }
        }
        if !changed {
            break;
        }
    }
    // Random fault episodes that fired become explicit fault steps, if the
    // run still fails that way without the random driver.
    let mut explicit_steps = 0;
    if let Some(candidate) = explicit_faults(&current, seed, scheduler)
        && let Some((v, h)) = shows_target(&candidate, &mut runs)
    {
        explicit_steps = candidate.steps.len() - current.steps.len();
        progress(&format!("explicit faults: {}", Size::of(&candidate)));
        violation = v;
        hash = h;
        current = candidate;
    }
    let mut scenario = current;
    scenario.expect = Expect::Violation(target.name().into());
    scenario.replay = Some(ReplaySpec {
        seed,
        scheduler,
        trace_hash: Some(hash.clone()),
    });
    Ok(Shrunk {
        before: Size::of(input),
        after: Size::of(&scenario),
        scenario,
        violation,
        seed,
        scheduler,
        trace_hash: hash,
        runs,
        explicit_steps,
    })
}

/// How many of `seeds` also show `target` on `s` (how seed-independent the
/// shrunk scenario is).
pub fn failing_seeds(
    s: &Scenario,
    target: &str,
    seeds: impl Iterator<Item = u64>,
) -> (usize, usize) {
    let (mut failing, mut total) = (0, 0);
    for seed in seeds {
        total += 1;
        let r = run(
            s,
            RunOptions {
                keep: Keep::Last(0),
                ..RunOptions::seed(seed)
            },
        );
        if matches!(&r.outcome, Outcome::Violation(v) if v.kind.name() == target) {
            failing += 1;
        }
    }
    (failing, total)
}

/// The random fault kinds that are episodes with a scripted equivalent
/// (a fault step), and those without one.
const EPISODES: [&str; 4] = ["net.partition", "net.hold", "net.unhealthy", "clock.jump"];

/// `s` with its random fault *episodes* (partitions, held links, unhealthy
/// hosts, clock jumps) replaced by the explicit fault steps of what fired in
/// the run of `seed`/`scheduler`, and those kinds switched off; `None` when
/// there is nothing to convert or a random kind without a scripted
/// equivalent (drops, stream cuts, disk errors, ...) is still on. The caller
/// checks that the result still fails: removing the random fault driver
/// changes the schedule.
pub fn explicit_faults(s: &Scenario, seed: u64, scheduler: Scheduler) -> Option<Scenario> {
    use crate::faults::steps::{ClockShift, FaultAction};
    let mut probe = s.faults.clone();
    let on: Vec<&str> = fault_ratios(&mut probe)
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, _)| n)
        .collect();
    let clock = &s.faults.clock;
    if on.is_empty()
        || on.iter().any(|n| !EPISODES.contains(n))
        || !clock.skew_max.is_zero()
        || clock.drift_max_ppm > 0
    {
        return None;
    }
    let report = run(
        s,
        RunOptions {
            scheduler,
            keep: Keep::All,
            ..RunOptions::seed(seed)
        },
    );
    let node = |v: Option<&str>| -> Option<NodeName> {
        Some(NodeName(NodeId(v?.strip_prefix('n')?.parse().ok()?)))
    };
    let mut steps: Vec<(Duration, Action)> = Vec::new();
    for e in report.trace.events() {
        if e.name() != "fault_injected" || e.field("source") != Some("random") {
            continue;
        }
        let at = Duration::from_millis(e.time.elapsed().as_millis() as u64);
        let lasting = || Some(Duration::from_millis(e.field("for_ms")?.parse().ok()?));
        let fault = |a| Action::Fault(a);
        match e.field("kind")? {
            "partition" => {
                // `{NodeId(1), NodeId(3)}`
                let nodes: Vec<NodeName> = e
                    .field("nodes")?
                    .split("NodeId(")
                    .skip(1)
                    .filter_map(|p| p.split(')').next()?.parse().ok())
                    .map(|n| NodeName(NodeId(n)))
                    .collect();
                let oneway = e.field("oneway") == Some("true");
                steps.push((
                    at,
                    fault(FaultAction::Partition {
                        nodes,
                        from: Vec::new(),
                        oneway,
                    }),
                ));
                steps.push((at + lasting()?, fault(FaultAction::Heal {})));
            }
            "hold_link" => {
                let (from, to) = (node(e.field("from"))?, node(e.field("to"))?);
                steps.push((at, fault(FaultAction::HoldLink { from, to })));
                steps.push((
                    at + lasting()?,
                    fault(FaultAction::ReleaseLink { from, to }),
                ));
            }
            "unhealthy" => {
                let node = node(e.field("node"))?;
                steps.push((
                    at,
                    fault(FaultAction::Unhealthy {
                        node,
                        lasting: lasting()?,
                    }),
                ));
            }
            "clock_jump" => {
                let node = node(e.field("node"))?;
                let by = ClockShift {
                    forward: e.field("forward") == Some("true"),
                    by: Duration::from_millis(e.field("by_ms")?.parse().ok()?),
                };
                steps.push((at, fault(FaultAction::ClockJump { node, by })));
            }
            _ => return None,
        }
    }
    let mut out = s.clone();
    for (name, r) in fault_ratios(&mut out.faults) {
        if EPISODES.contains(&name) {
            *r = Ratio::NEVER;
        }
    }
    out.steps.extend(
        steps
            .into_iter()
            .filter(|(at, _)| *at <= s.duration)
            .map(|(at, a)| step(at, a)),
    );
    out.steps.sort_by_key(|st| st.get_ref().at);
    Scenario::parse(std::path::Path::new("explicit.toml"), &to_toml(&out)).ok()
}

fn step(at: Duration, action: Action) -> Spanned<Step> {
    Spanned::new(0..0, Step { at, action })
}

/// Keep the steps `keep` accepts.
fn with_steps(s: &Scenario, keep: impl Fn(usize, &Step) -> bool) -> Scenario {
    let mut out = s.clone();
    out.steps = s
        .steps
        .iter()
        .enumerate()
        .filter(|(i, st)| keep(*i, st.get_ref()))
        .map(|(_, st)| st.clone())
        .collect();
    out
}

fn cut_duration(s: &Scenario, v: &Violation) -> Vec<Scenario> {
    if !v.kind.is_safety() {
        // A liveness failure shows at the end of the run: a shorter run
        // would fail for the trivial reason that nothing had time to finish.
        return Vec::new();
    }
    let mut out = Vec::new();
    // The run stops within a second after a violation seen mid-run: nothing
    // later mattered.
    let just_past = Duration::from_secs(v.at.elapsed().as_secs() + 2);
    if just_past < s.duration {
        let mut c = with_steps(s, |_, st| st.at <= just_past);
        c.duration = just_past;
        out.push(c);
    }
    // A violation seen at the end (end-state checks): halve the time after
    // the last step (whole seconds).
    let last = s
        .steps
        .iter()
        .map(|st| st.get_ref().at)
        .max()
        .unwrap_or_default();
    let tail = s.duration.saturating_sub(last).as_secs();
    if tail >= 2 {
        let mut c = s.clone();
        c.duration = last + Duration::from_secs(tail / 2);
        out.push(c);
    }
    out
}

fn drop_steps(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let n = s.steps.len();
    let mut out = Vec::new();
    let mut chunk = n.div_ceil(2);
    while chunk >= 1 {
        for start in (0..n).step_by(chunk) {
            out.push(with_steps(s, |i, _| i < start || i >= start + chunk));
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2).min(chunk - 1).max(1);
    }
    out
}

fn drop_tables(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    (0..s.tables.len())
        .map(|i| {
            let name = s.tables[i].name.clone();
            let mut out = with_steps(
                s,
                |_, st| !matches!(&st.action, Action::BootstrapAgain { table, .. } if *table == name),
            );
            out.tables.remove(i);
            out
        })
        .collect()
}

/// `action` with node ids renamed by `f` (`None`: the node is gone, and so
/// is the step).
fn map_nodes(action: &Action, f: &impl Fn(NodeId) -> Option<NodeId>) -> Option<Action> {
    let m = |n: &NodeName| f(n.0).map(NodeName);
    Some(match action {
        Action::AddNode { node } => Action::AddNode { node: m(node)? },
        Action::RemoveNode { node } => Action::RemoveNode { node: m(node)? },
        Action::Retry { node } => Action::Retry { node: m(node)? },
        Action::ReplaceNode { old, new } => Action::ReplaceNode {
            old: m(old)?,
            new: m(new)?,
        },
        Action::BootstrapAgain { node, table, shard } => Action::BootstrapAgain {
            node: m(node)?,
            table: table.clone(),
            shard: *shard,
        },
        Action::RaiseReplicas { replicas } => Action::RaiseReplicas {
            replicas: *replicas,
        },
        Action::Fault(step) => Action::Fault(step.map_nodes(f)?),
        Action::Crash {
            node,
            restart_after,
        } => Action::Crash {
            node: m(node)?,
            restart_after: *restart_after,
        },
        Action::Pause { node, duration } => Action::Pause {
            node: m(node)?,
            duration: *duration,
        },
        Action::RestartEmpty { node } => Action::RestartEmpty { node: m(node)? },
        Action::RestartWithDiskOf { node, from } => Action::RestartWithDiskOf {
            node: m(node)?,
            from: m(from)?,
        },
    })
}

fn drop_nodes(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let c = &s.cluster;
    let total = c.nodes + c.spare_nodes;
    (1..=total)
        .rev()
        .filter_map(|gone| {
            let mut out = s.clone();
            if gone <= c.nodes {
                if c.nodes <= 1 || (c.nodes - 1) < c.replicas as u32 {
                    return None;
                }
                out.cluster.nodes -= 1;
            } else {
                out.cluster.spare_nodes -= 1;
            }
            let rename = |n: NodeId| match n.0.cmp(&gone) {
                std::cmp::Ordering::Less => Some(n),
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(NodeId(n.0 - 1)),
            };
            out.steps = s
                .steps
                .iter()
                .filter_map(|st| {
                    let st = st.get_ref();
                    map_nodes(&st.action, &rename).map(|a| step(st.at, a))
                })
                .collect();
            Some(out)
        })
        .collect()
}

/// Smaller values to try for a count: 1, half, one less (deduplicated,
/// each below `n` and at least `min`).
fn smaller(n: u64, min: u64) -> Vec<u64> {
    let mut v: Vec<u64> = [min, n / 2, n.saturating_sub(1)]
        .into_iter()
        .filter(|x| *x < n && *x >= min)
        .collect();
    v.dedup();
    v
}

fn fewer_shards(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    smaller(u64::from(s.cluster.shards), 1)
        .into_iter()
        .map(|n| {
            let n = n as u32;
            let mut out = with_steps(
                s,
                |_, st| !matches!(st.action, Action::BootstrapAgain { shard, .. } if shard >= n),
            );
            out.cluster.shards = n;
            out
        })
        .collect()
}

fn fewer_replicas(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    smaller(s.cluster.replicas as u64, 1)
        .into_iter()
        .map(|n| {
            let mut out = s.clone();
            out.cluster.replicas = n as usize;
            out
        })
        .collect()
}

fn fewer_columns(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    for (i, t) in s.tables.iter().enumerate() {
        for n in smaller(u64::from(t.columns), 1) {
            let mut c = s.clone();
            c.tables[i].columns = n as u32;
            out.push(c);
        }
    }
    out
}

/// The random fault kinds of `f` with a rate above zero, by name.
fn fault_kinds_on(f: &FaultConfig) -> Vec<&'static str> {
    fault_ratios(&mut f.clone())
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, _)| n)
        .collect()
}

fn drop_fault_kinds(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    for name in fault_kinds_on(&s.faults) {
        let mut c = s.clone();
        for (n, r) in fault_ratios(&mut c.faults) {
            if n == name {
                *r = Ratio::NEVER;
            }
        }
        out.push(c);
    }
    let clock = &s.faults.clock;
    if !clock.skew_max.is_zero() || clock.drift_max_ppm > 0 {
        let mut c = s.clone();
        c.faults.clock.skew_max = Duration::ZERO;
        c.faults.clock.drift_max_ppm = 0;
        out.push(c);
    }
    out
}

fn lower_fault_rates(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut probe = s.faults.clone();
    let names: Vec<&str> = fault_ratios(&mut probe)
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, _)| n)
        .collect();
    for name in names {
        let mut c = s.clone();
        for (n, r) in fault_ratios(&mut c.faults) {
            if n == name {
                // Half as likely: halve the numerator, else double the
                // denominator.
                *r = if r.num > 1 {
                    Ratio::new(r.num / 2, r.den)
                } else {
                    Ratio::new(1, r.den.saturating_mul(2))
                };
            }
        }
        // Only while it stays a meaningful rate (below one in a million
        // is as good as off, which `drop fault kinds` tries).
        if fault_ratios(&mut c.faults)
            .iter()
            .all(|(_, r)| r.num == 0 || r.den <= 1_000_000)
        {
            out.push(c);
        }
    }
    out
}

/// `s` with every quirk switched off (the fixed code).
fn without_quirks(s: &Scenario) -> Scenario {
    let mut out = s.clone();
    out.quirks.clear();
    out
}

fn drop_quirks(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    (0..s.quirks.len())
        .map(|i| {
            let mut out = s.clone();
            out.quirks.remove(i);
            out
        })
        .collect()
}

fn default_options(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    // Each clears one option the scenario sets (true if it was set).
    let resets: [fn(&mut OptionsSpec) -> bool; 4] = [
        |o| o.max_concurrent_table_shards.take().is_some(),
        |o| o.max_concurrent_streams_per_table_shard.take().is_some(),
        |o| o.session_ttl.take().is_some(),
        |o| o.ingest_interval.take().is_some(),
    ];
    resets
        .iter()
        .filter_map(|reset| {
            let mut c = s.clone();
            reset(&mut c.options).then_some(c)
        })
        .collect()
}

fn lower_rates(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    let w = &s.workload;
    for n in smaller(u64::from(w.rows_per_second), 0) {
        let mut c = s.clone();
        c.workload.rows_per_second = n as u32;
        out.push(c);
    }
    for n in smaller(u64::from(w.upserts_per_second), 0) {
        let mut c = s.clone();
        c.workload.upserts_per_second = n as u32;
        out.push(c);
    }
    if w.late.num > 0 {
        let mut c = s.clone();
        c.workload.late = Ratio::NEVER;
        out.push(c);
    }
    for n in smaller(u64::from(w.late_max_days), 1) {
        let mut c = s.clone();
        c.workload.late_max_days = n as u32;
        out.push(c);
    }
    for n in smaller(u64::from(w.dimension_keys), 1) {
        let mut c = s.clone();
        c.workload.dimension_keys = n as u32;
        out.push(c);
    }
    out
}

fn earlier_steps(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    for (i, st) in s.steps.iter().enumerate() {
        let at = st.get_ref().at;
        // Whole seconds, so that the file states exactly what ran.
        for earlier in [Duration::ZERO, Duration::from_secs(at.as_secs() / 2)] {
            if earlier < at {
                let mut c = s.clone();
                c.steps[i] = step(earlier, st.get_ref().action.clone());
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
