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

use crate::check::oracle::Violation;
use crate::engine::duration;
use crate::engine::executor::Scheduler;
use crate::engine::trace::Keep;
use crate::harness::artifact::to_toml;
use crate::harness::run::{Outcome, RunOptions, run};
use crate::scenario::format::{Expect, ReplaySpec, Scenario};

mod explicit;
mod reductions;

pub use explicit::explicit_faults;
pub use reductions::REDUCTIONS;
use reductions::{fault_kinds_on, without_quirks};

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

#[cfg(test)]
mod tests;
