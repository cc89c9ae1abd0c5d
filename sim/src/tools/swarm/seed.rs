//! One seed of a swarm: its scenario and options drawn from the seed, run
//! and judged against what the scenario expects ([`Verdict`]), with its
//! artifact kept when it fails.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use serde::Serialize;

use crate::check::coverage::ProbeHits;
use crate::engine::executor::panic_message;
use crate::engine::trace::Keep;
use crate::harness::artifact::{artifact_text, write_artifact};
use crate::harness::run::{Outcome, RunOptions, run};
use crate::scenario::randomise::{Choice, Choices};

use super::SwarmConfig;

/// How one seed's run compares with what its scenario expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The outcome is the expected one.
    Ok,
    /// An unexpected safety violation, or an expected violation that did
    /// not happen.
    Safety,
    /// An unexpected liveness failure (incl. stalls and runaway runs).
    Liveness,
    /// A panic in the simulation or the harness.
    Panic,
}

impl Verdict {
    /// Whether this seed fails the swarm.
    pub fn failed(self) -> bool {
        self != Verdict::Ok
    }
}

/// The result of one seed.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Scenario name ("?" if the harness failed before picking one).
    pub scenario: String,
    /// Its scenario file.
    pub file: PathBuf,
    /// The drawn option set.
    pub options: Vec<Choice>,
    /// What the scenario expects.
    pub expect: String,
    /// `ok`, `violation: data-loss`, `panic`.
    pub outcome: String,
    /// The whole outcome (where, when, what) when not `ok`.
    pub detail: Option<String>,
    /// Whether that is what it gave.
    pub verdict: Verdict,
    /// The trace hash (`None` if the run could not start).
    pub trace_hash: Option<String>,
    /// Virtual time reached, ms.
    pub virtual_ms: u64,
    /// Wall time of the run, µs.
    pub wall_us: u64,
    /// Trace events recorded.
    pub events: u64,
    /// Scheduling steps.
    pub polls: u64,
    /// The coverage probes the run reached, with their hits.
    pub probes: ProbeHits,
    /// The failure artifact written, if any.
    pub artifact: Option<PathBuf>,
}

impl SeedResult {
    /// A seed whose harness panicked outside any simulated task.
    pub fn harness_panic(seed: u64, message: String) -> SeedResult {
        SeedResult {
            seed,
            scenario: "?".into(),
            file: PathBuf::new(),
            options: Vec::new(),
            expect: "?".into(),
            outcome: "panic".into(),
            detail: Some(format!("panic in the swarm harness: {message}")),
            verdict: Verdict::Panic,
            trace_hash: None,
            virtual_ms: 0,
            wall_us: 0,
            events: 0,
            polls: 0,
            probes: ProbeHits::default(),
            artifact: None,
        }
    }

    /// The command that replays this seed.
    pub fn replay_command(&self) -> String {
        match &self.artifact {
            Some(a) => format!("bootsim replay {}", a.display()),
            None => format!(
                "bootsim run --scenario {} --seed {}  (options as drawn: rerun the swarm with --first-seed {} --seeds 1 to get the artifact)",
                self.file.display(),
                self.seed,
                self.seed
            ),
        }
    }
}

/// The wall clock, for timing and the duration budget only: it never
/// reaches a simulation.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
pub fn wall_now() -> std::time::Instant {
    // Allowed: the swarm runner's timing and `--duration` budget; no
    // simulation ever sees this value.
    std::time::Instant::now()
}

/// Run one seed of `cfg`: pick the scenario, draw the options, run, and
/// write an artifact if it failed.
pub fn run_seed(cfg: &SwarmConfig, seed: u64) -> SeedResult {
    let draw = cfg.draw(seed);
    let (entry, drawn) = (draw.entry, &draw.randomised);
    let mut result = SeedResult {
        scenario: entry.scenario.name.clone(),
        file: entry.path.clone(),
        options: drawn.choices.clone(),
        expect: entry.scenario.expect.to_string(),
        ..SeedResult::harness_panic(seed, String::new())
    };
    // Run the scenario as its TOML text says, so that the artifact states
    // exactly what ran.
    let effective = match draw.effective() {
        Ok(s) => s,
        Err(e) => {
            result.detail = Some(format!("the randomised scenario is invalid: {e}"));
            return result;
        }
    };
    // K of a PCT scheduler fixed now, so that the artifact replays (and
    // shrinks, which cuts the duration) with the same change points.
    let scheduler = drawn
        .scheduler
        .with_estimated_steps(effective.estimated_steps());
    let opts = RunOptions {
        scheduler,
        keep: Keep::Last(0),
        ..RunOptions::seed(seed)
    };
    let start = wall_now();
    let report = catch_unwind(AssertUnwindSafe(|| run(&effective, opts)));
    result.wall_us = start.elapsed().as_micros() as u64;
    let report = match report {
        Ok(r) => r,
        Err(payload) => {
            result.detail = Some(format!(
                "panic outside the simulated tasks: {}",
                panic_message(payload.as_ref())
            ));
            return result;
        }
    };
    result.outcome = report.outcome.label();
    result.trace_hash = Some(report.trace.hash());
    result.virtual_ms = report.end.elapsed().as_millis() as u64;
    result.events = report.trace.total();
    result.polls = report.stats.polls;
    result.probes = report.trace.probes().clone();
    result.verdict = if report.outcome.matches(&effective.expect) {
        Verdict::Ok
    } else {
        match &report.outcome {
            Outcome::Violation(v) if !v.kind.is_safety() => Verdict::Liveness,
            Outcome::Panicked { .. } => Verdict::Panic,
            _ => Verdict::Safety,
        }
    };
    result.detail = (report.outcome != Outcome::Pass).then(|| report.outcome.to_string());
    if result.verdict.failed()
        && let Some(dir) = &cfg.failures
    {
        let path = crate::harness::artifact::artifact_path(dir, &effective.name, seed);
        let header = vec![
            format!(
                "bootsim failure artifact: replay with `bootsim replay {}`",
                path.display()
            ),
            format!(
                "found by `bootsim swarm`: scenario {} ({}), seed {seed}",
                effective.name,
                entry.path.display()
            ),
            format!("expected: {}", entry.scenario.expect),
            format!("outcome: {}", report.outcome),
            format!("drawn options: {}", Choices(&drawn.choices)),
            "Below: the scenario as it ran (drawn options applied); `expect` is the observed"
                .into(),
            "outcome, so this file is a regression test as it stands. Once the bug is fixed,"
                .into(),
            "set `expect = \"pass\"` and keep it in scenarios/regressions/.".into(),
        ];
        let text = artifact_text(
            &effective,
            seed,
            scheduler,
            &report.outcome,
            &report.trace.hash(),
            &header,
        );
        match write_artifact(dir, &effective.name, seed, &text) {
            Ok(p) => result.artifact = Some(p),
            Err(e) => {
                let d = result.detail.take().unwrap_or_default();
                result.detail = Some(format!("{d} (artifact not written: {e})"));
            }
        }
    }
    result
}
