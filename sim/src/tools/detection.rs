//! `bootsim bench detection`: how fast the swarm finds each upstream quirk
//! (docs/MODEL.md §6), the figure docs/DETECTION.md reports.
//!
//! Per quirk: `starts` independent swarms over the mix with that quirk
//! switched on in every scenario, on disjoint seed ranges (start `i` runs
//! seeds `first_seed + i * max_seeds ..` up to `max_seeds` of them), each
//! stopped at its first failing seed ([`SwarmConfig::stop_on_failure`]).
//! Reported: the seeds each start took (a start that finds nothing is
//! "more than `max_seeds`"), their median, the violations hit, and the first
//! failure of the first successful start shrunk ([`crate::tools::shrink`]), to show
//! how small a scenario the quirk needs.
//!
//! It is the swarm runner itself that searches (same seeds, same draws, same
//! artifacts as `bootsim swarm --quirk Qn --first-seed S --seeds N
//! --stop-on-failure`), so every figure can be re-created and replayed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use shardboot::quirks::Quirk;

use crate::scenario::format::ReplaySpec;
use crate::tools::shrink::{Size, shrink};
use crate::tools::swarm::{Budget, Entry, Partition, SeedResult, SwarmConfig, swarm};

/// What a detection measurement runs.
#[derive(Clone, Debug)]
pub struct DetectionConfig {
    /// The mix, as written (the quirk is switched on per measurement).
    pub mix: Vec<Entry>,
    /// Independent swarm starts per quirk.
    pub starts: u64,
    /// Seeds per start before giving up.
    pub max_seeds: u64,
    /// The first seed of the first start.
    pub first_seed: u64,
    /// Worker threads of each swarm.
    pub jobs: usize,
    /// Run budget of the shrinker (0: do not shrink).
    pub shrink_runs: usize,
    /// Where failing seeds write their artifacts (`None`: nowhere).
    pub failures: Option<PathBuf>,
}

impl DetectionConfig {
    /// The swarm of start `i` (0-based) with `quirk` on.
    pub fn start(&self, quirk: Quirk, i: u64) -> SwarmConfig {
        let mut mix = self.mix.clone();
        for e in &mut mix {
            e.scenario.switch_on(quirk);
        }
        SwarmConfig {
            mix,
            budget: Budget::Seeds(self.max_seeds),
            first_seed: self.first_seed + i * self.max_seeds,
            jobs: self.jobs,
            partition: Partition::WHOLE,
            randomise: true,
            failures: self.failures.clone(),
            stop_on_failure: true,
        }
    }
}

/// One swarm start.
#[derive(Clone, Debug)]
pub struct Start {
    pub first_seed: u64,
    /// Its first failing seed, if any within the budget.
    pub failure: Option<SeedResult>,
}

impl Start {
    /// Seeds run up to and including the first failure.
    pub fn seeds_to_failure(&self) -> Option<u64> {
        self.failure.as_ref().map(|f| f.seed - self.first_seed + 1)
    }
}

/// What shrinking the first failure gave.
#[derive(Clone, Debug)]
pub enum Shrunk {
    /// Shrunk, still failing with `violation`.
    Done {
        /// The violation the shrunk scenario still shows.
        violation: String,
        /// Size of the scenario before shrinking.
        before: Size,
        /// Size after.
        after: Size,
        /// Runs the shrinker spent.
        runs: usize,
    },
    /// The failure could not be shrunk (a panic, an expected violation that
    /// did not happen, ...): why.
    Failed(String),
    /// Shrinking was switched off.
    Skipped,
}

/// The measurement of one quirk.
#[derive(Clone, Debug)]
pub struct QuirkDetection {
    pub quirk: Quirk,
    pub starts: Vec<Start>,
    /// `None` when no start found anything.
    pub shrunk: Option<Shrunk>,
}

impl QuirkDetection {
    /// The median seeds-to-first-failure over the starts, a start that found
    /// nothing counting as more than any that did (`None`: the median start
    /// found nothing). With an even number of starts, the upper median.
    pub fn median(&self) -> Option<u64> {
        let mut v: Vec<u64> = self
            .starts
            .iter()
            .map(|s| s.seeds_to_failure().unwrap_or(u64::MAX))
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().filter(|&m| m != u64::MAX)
    }

    /// The outcomes of the first failures (`violation: data-loss`, `panic`).
    pub fn outcomes(&self) -> BTreeSet<&str> {
        self.starts
            .iter()
            .filter_map(|s| s.failure.as_ref())
            .map(|f| f.outcome.as_str())
            .collect()
    }
}

/// Measure `quirk`: run every start, then shrink the first failure found.
/// `progress` hears of each start as it ends.
pub fn detect(
    cfg: &DetectionConfig,
    quirk: Quirk,
    mut progress: impl FnMut(&str),
) -> QuirkDetection {
    let mut starts = Vec::new();
    for i in 0..cfg.starts {
        let swarm_cfg = cfg.start(quirk, i);
        let run = swarm(&swarm_cfg, |_, _| {});
        let start = Start {
            first_seed: swarm_cfg.first_seed,
            failure: run.failures().next().cloned(),
        };
        progress(&match &start.failure {
            Some(f) => format!(
                "{quirk} start {}: seed {} ({} seeds) {}: {}",
                i + 1,
                f.seed,
                f.seed - start.first_seed + 1,
                f.scenario,
                f.outcome
            ),
            None => format!(
                "{quirk} start {}: nothing in {} seeds",
                i + 1,
                cfg.max_seeds
            ),
        });
        starts.push(start);
    }
    let first = starts
        .iter()
        .enumerate()
        .find_map(|(i, s)| s.failure.as_ref().map(|f| (i as u64, f.seed)));
    let shrunk = first.map(|(i, seed)| shrink_failure(cfg, quirk, i, seed));
    QuirkDetection {
        quirk,
        starts,
        shrunk,
    }
}

/// Shrink the run of `seed` in start `i` (rebuilt exactly as the swarm drew
/// it).
fn shrink_failure(cfg: &DetectionConfig, quirk: Quirk, i: u64, seed: u64) -> Shrunk {
    if cfg.shrink_runs == 0 {
        return Shrunk::Skipped;
    }
    let swarm_cfg = cfg.start(quirk, i);
    let draw = swarm_cfg.draw(seed);
    let mut scenario = match draw.effective() {
        Ok(s) => s,
        Err(e) => return Shrunk::Failed(e.to_string()),
    };
    scenario.replay = Some(ReplaySpec {
        seed,
        scheduler: draw.randomised.scheduler,
        trace_hash: None,
    });
    match shrink(&scenario, cfg.shrink_runs, |_| {}) {
        Ok(s) => Shrunk::Done {
            violation: s.violation.kind.name().to_string(),
            before: s.before,
            after: s.after,
            runs: s.runs,
        },
        Err(e) => Shrunk::Failed(e.to_string()),
    }
}

/// The results as a Markdown table (one row per quirk), for
/// docs/DETECTION.md.
pub fn markdown_table(results: &[QuirkDetection], max_seeds: u64) -> String {
    let over = format!("> {max_seeds}");
    let seeds = |n: Option<u64>| n.map_or(over.clone(), |n| n.to_string());
    let mut out = String::from(
        "| quirk | seeds to first failure, per start | median | first failures | shrunk: steps, nodes, random fault kinds (before → after) |\n\
         |---|---|---|---|---|\n",
    );
    for r in results {
        let per_start: Vec<String> = r
            .starts
            .iter()
            .map(|s| seeds(s.seeds_to_failure()))
            .collect();
        let outcomes: Vec<&str> = r.outcomes().into_iter().collect();
        let shrunk = match &r.shrunk {
            None => "—".to_string(),
            Some(Shrunk::Skipped) => "not shrunk".to_string(),
            Some(Shrunk::Failed(why)) => format!("not shrinkable: {why}"),
            Some(Shrunk::Done {
                violation,
                before,
                after,
                runs,
            }) => format!(
                "{violation}: {} → {} steps, {} → {} nodes, {} → {} fault kinds ({runs} runs)",
                before.steps,
                after.steps,
                before.nodes + before.spare_nodes,
                after.nodes + after.spare_nodes,
                before.fault_kinds,
                after.fault_kinds
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.quirk,
            per_start.join(", "),
            seeds(r.median()),
            if outcomes.is_empty() {
                "none".to_string()
            } else {
                outcomes.join(", ")
            },
            shrunk
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(first_seed: u64, failing: Option<(u64, &str)>) -> Start {
        Start {
            first_seed,
            failure: failing.map(|(seed, outcome)| SeedResult {
                outcome: outcome.into(),
                ..SeedResult::harness_panic(seed, String::new())
            }),
        }
    }

    fn q7(starts: Vec<Start>) -> QuirkDetection {
        QuirkDetection {
            quirk: Quirk::Q7,
            starts,
            shrunk: None,
        }
    }

    #[test]
    fn the_median_counts_a_start_that_found_nothing_as_more_than_any_that_did() {
        let loss = "violation: data-loss";
        let found = |n: u64| start(1, Some((n, loss)));
        assert_eq!(q7(vec![found(9), found(3), found(5)]).median(), Some(5));
        assert_eq!(
            q7(vec![start(1, None), found(3), found(40)]).median(),
            Some(40)
        );
        assert_eq!(
            q7(vec![start(1, None), start(11, None), found(3)]).median(),
            None
        );
        // Even count: the upper median.
        assert_eq!(q7(vec![found(2), found(8)]).median(), Some(8));
    }

    #[test]
    fn the_table_shows_each_start_the_median_and_the_distinct_outcomes() {
        let r = q7(vec![
            start(1, Some((4, "violation: data-loss"))),
            start(11, None),
            start(21, Some((22, "violation: data-loss"))),
            start(31, Some((33, "panic"))),
            start(41, None),
        ]);
        let table = markdown_table(&[r], 10);
        let row = table.lines().nth(2).expect("a row per quirk");
        assert_eq!(
            row,
            "| Q7 | 4, > 10, 2, 3, > 10 | 4 | panic, violation: data-loss | — |"
        );
    }
}
