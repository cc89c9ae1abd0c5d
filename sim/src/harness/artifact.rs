//! Failure artifacts and their replay.
//!
//! An artifact is one self-contained scenario file: the scenario exactly as
//! it ran (after the swarm's randomisation), `expect` set to what was
//! observed, and a `[replay]` section with the seed, the scheduler and the
//! trace hash. A comment header says what failed, what the swarm drew and
//! how to replay it. Because it is an ordinary scenario file, it also works
//! as a regression test as it stands (`bootsim run --scenario FILE` uses the
//! seed in `[replay]`), and `bootsim shrink` takes it as input.
//!
//! [`replay`] runs it again and checks that the run is the same one: same
//! outcome, same trace hash.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::engine::executor::Scheduler;
use crate::engine::trace::{Keep, TraceEvent};
use crate::harness::run::{Outcome, Report, RunOptions, run};
use crate::scenario::format::{Expect, ReplaySpec, Scenario};

/// The text of an artifact: `header` lines (without `# `) as a comment,
/// then `scenario` with `expect` set to `outcome` (when it is a violation)
/// and `[replay]` set to `seed`, `scheduler` and `trace_hash`.
pub fn artifact_text(
    scenario: &Scenario,
    seed: u64,
    scheduler: Scheduler,
    outcome: &Outcome,
    trace_hash: &str,
    header: &[String],
) -> String {
    let mut s = scenario.clone();
    if let Outcome::Violation(v) = outcome {
        s.expect = Expect::Violation(v.kind.name().to_string());
    }
    s.replay = Some(ReplaySpec {
        seed,
        scheduler,
        trace_hash: Some(trace_hash.to_string()),
    });
    let mut out = String::new();
    for line in header {
        for l in line.lines() {
            let _ = writeln!(out, "# {l}");
        }
    }
    out.push('\n');
    out.push_str(&to_toml(&s));
    out
}

/// A scenario as TOML text (the inverse of [`Scenario::parse`]).
pub fn to_toml(scenario: &Scenario) -> String {
    toml::to_string(scenario).expect("a scenario always serialises to TOML")
}

/// `<dir>/<scenario>-seed-<N>.toml`, with the scenario name made safe for a
/// file name.
pub fn artifact_path(dir: &Path, scenario: &str, seed: u64) -> PathBuf {
    let name: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}-seed-{seed}.toml"))
}

/// Write an artifact file (creating `dir`), returning its path.
pub fn write_artifact(
    dir: &Path,
    scenario_name: &str,
    seed: u64,
    text: &str,
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = artifact_path(dir, scenario_name, seed);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// What a replay gave.
pub struct Replayed {
    pub report: Report,
    /// The seed and scheduler used (from `[replay]`, else seed 1 and the
    /// scenario's `scheduler`, else random).
    pub seed: u64,
    pub scheduler: Scheduler,
    /// The hash the artifact recorded, if any.
    pub expected_hash: Option<String>,
    /// Up to `context` events before (and including) the violation's trace
    /// event; for end-of-run violations the last events of the run.
    pub before: Vec<TraceEvent>,
}

impl Replayed {
    /// The outcome is the one the file expects.
    pub fn outcome_matches(&self, scenario: &Scenario) -> bool {
        self.report.outcome.matches(&scenario.expect)
    }

    /// The trace hash is the recorded one (true when none was recorded).
    pub fn hash_matches(&self) -> bool {
        self.expected_hash
            .as_deref()
            .is_none_or(|h| h == self.report.trace.hash())
    }
}

/// Events kept by a replay so that the ones before a violation found
/// mid-run are still there when the run stops (it stops within a second of
/// virtual time after the violation).
const REPLAY_KEEP: usize = 50_000;

/// Run a scenario (typically an artifact) with the seed and scheduler in its
/// `[replay]` section, keeping `context` events before the violation.
pub fn replay(scenario: &Scenario, context: usize) -> Replayed {
    let (seed, scheduler, expected_hash) = match &scenario.replay {
        Some(r) => (r.seed, r.scheduler, r.trace_hash.clone()),
        None => (1, scenario.scheduler.unwrap_or_default(), None),
    };
    let report = run(
        scenario,
        RunOptions {
            keep: Keep::Last(REPLAY_KEEP.max(context)),
            scheduler,
            ..RunOptions::seed(seed)
        },
    );
    let upto = match &report.outcome {
        Outcome::Violation(v) => v.trace_index,
        _ => None,
    };
    let mut before: Vec<TraceEvent> = report
        .trace
        .events()
        .filter(|e| upto.is_none_or(|i| e.index <= i))
        .cloned()
        .collect();
    let cut = before.len().saturating_sub(context);
    before.drain(..cut);
    Replayed {
        report,
        seed,
        scheduler,
        expected_hash,
        before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_safe_file_names() {
        assert_eq!(
            artifact_path(Path::new("failures"), "replace node/x", 12),
            PathBuf::from("failures/replace_node_x-seed-12.toml")
        );
    }
}
