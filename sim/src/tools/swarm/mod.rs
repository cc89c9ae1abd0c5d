//! `bootsim swarm`: many seeds over a mix of scenarios, in parallel.
//!
//! Each seed picks one scenario of the mix and redraws its options
//! ([`crate::scenario::randomise`]) from streams of its own (`"swarm/scenario"`,
//! `"swarm/options"`), then runs it through the one run path
//! ([`crate::harness::run::run`]) with that seed. So a seed's run depends on the seed
//! and the mix only — never on the number of workers, the partition or what
//! ran before — and a failure is reproduced from the artifact it writes.
//!
//! Parallelism: one whole simulation per worker thread
//! (`std::thread::scope`); workers share nothing but the queue of seeds and
//! the channel results go back on. A simulation that panics (inside a task,
//! in the oracle or in the harness) is caught and reported with its seed; a
//! stalled or runaway run ends as a `liveness` violation (see
//! `Scenario::max_polls`). Neither takes the swarm down.
//!
//! Seeds: `first_seed ..` (`--seeds N`: the first N of them; `--duration`:
//! as many as fit), of which partition `k/n` runs those with
//! `seed % n == k - 1`: a CI matrix or an indexed Job splits one swarm into
//! disjoint parts that together are exactly the unpartitioned run.
//!
//! From a test of your own:
//!
//! ```
//! use std::path::PathBuf;
//! use bootsim::Scenario;
//! use bootsim::{Budget, Entry, Partition, SwarmConfig, swarm};
//!
//! let text = r#"
//! name = "tiny"
//! duration = "5m"
//! [cluster]
//! nodes = 2
//! replicas = 2
//! shards = 1
//! [[table]]
//! name = "trips"
//! kind = "fact"
//! "#;
//! let path = PathBuf::from("tiny.toml");
//! let scenario = Scenario::parse(&path, text).unwrap();
//! let cfg = SwarmConfig {
//!     mix: vec![Entry { path, scenario }],
//!     budget: Budget::Seeds(4),
//!     first_seed: 1,
//!     jobs: 2,
//!     partition: Partition::WHOLE,
//!     randomise: true,
//!     failures: None, // or Some(dir): one replayable file per failing seed
//!     stop_on_failure: false,
//! };
//! let run = swarm(&cfg, |_result, _progress| {});
//! assert_eq!(run.summary.seeds, 4);
//! assert_eq!(run.failures().count(), 0, "{}", run.summary);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::check::coverage::Coverage;
use crate::engine::duration;
use crate::engine::rng::SimRng;
use crate::harness::artifact::to_toml;
use crate::scenario::format::{Scenario, ScenarioError};
use crate::scenario::randomise::{Randomised, randomise};

mod pool;
mod seed;

pub use pool::{Progress, run_parallel};
pub use seed::{SeedResult, Verdict, run_seed, wall_now};

/// A part of a swarm: `k/n` runs the seeds `s` with `s % n == k - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based index of this part.
    pub k: u64,
    /// Number of parts.
    pub n: u64,
}

impl Partition {
    /// The whole swarm: `1/1`.
    pub const WHOLE: Partition = Partition { k: 1, n: 1 };

    /// Whether this part runs `seed`.
    pub fn contains(&self, seed: u64) -> bool {
        seed % self.n == self.k - 1
    }
}

impl Default for Partition {
    fn default() -> Self {
        Partition::WHOLE
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a partition: expected k/n with 1 <= k <= n, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

/// How long a swarm goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Seeds `first_seed .. first_seed + N` (before partitioning).
    Seeds(u64),
    /// As many seeds as start within this much wall time.
    Wall(Duration),
}

/// One scenario of the mix, with the file it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The scenario file.
    pub path: PathBuf,
    /// The scenario it holds.
    pub scenario: Scenario,
}

/// Every `*.toml` directly in `dir` that has `swarm = true`, by file name.
pub fn default_mix(dir: &Path) -> Result<Vec<Entry>, ScenarioError> {
    let read = std::fs::read_dir(dir).map_err(|source| ScenarioError::Read {
        file: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut mix = Vec::new();
    for path in paths {
        let scenario = Scenario::load(&path)?;
        if scenario.swarm {
            mix.push(Entry { path, scenario });
        }
    }
    Ok(mix)
}

/// What a swarm runs.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The scenarios seeds pick from.
    pub mix: Vec<Entry>,
    /// How many seeds, or how much wall time.
    pub budget: Budget,
    /// The first seed.
    pub first_seed: u64,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Which part of the seed range this process runs.
    pub partition: Partition,
    /// Redraw each seed's options (`crate::scenario::randomise`); off: run the
    /// scenarios as written.
    pub randomise: bool,
    /// Where failing seeds write their artifacts (`None`: nowhere).
    pub failures: Option<PathBuf>,
    /// Stop at the first failing seed: no seed after it is started, the
    /// seeds before it (already started, since seeds are handed out in
    /// order) are finished, and results after it are dropped — so the run
    /// ends at the lowest failing seed whatever `jobs` is.
    pub stop_on_failure: bool,
}

impl SwarmConfig {
    /// The seeds this swarm (this partition of it) runs, in order; endless
    /// for a wall-time budget.
    pub fn seeds(&self) -> Box<dyn Iterator<Item = u64> + Send> {
        let p = self.partition;
        match self.budget {
            Budget::Seeds(n) => Box::new(
                (self.first_seed..self.first_seed.saturating_add(n))
                    .filter(move |s| p.contains(*s)),
            ),
            Budget::Wall(_) => Box::new((self.first_seed..).filter(move |s| p.contains(*s))),
        }
    }

    /// The number of seeds [`SwarmConfig::seeds`] yields, if bounded.
    pub fn seed_count(&self) -> Option<u64> {
        match self.budget {
            Budget::Seeds(_) => Some(self.seeds().count() as u64),
            Budget::Wall(_) => None,
        }
    }

    /// Which scenario of the mix `seed` runs.
    pub fn entry(&self, seed: u64) -> &Entry {
        let i = SimRng::new(seed)
            .fork("swarm/scenario")
            .below(self.mix.len() as u64);
        &self.mix[i as usize]
    }

    /// What `seed` runs: its scenario of the mix with the options drawn
    /// from the seed (or as written, without `randomise`).
    pub fn draw(&self, seed: u64) -> Drawn<'_> {
        let entry = self.entry(seed);
        let randomised = if self.randomise {
            randomise(
                &entry.scenario,
                &mut SimRng::new(seed).fork("swarm/options"),
            )
        } else {
            Randomised {
                scenario: entry.scenario.clone(),
                scheduler: entry.scenario.scheduler.unwrap_or_default(),
                choices: Vec::new(),
            }
        };
        Drawn { entry, randomised }
    }
}

/// A seed's scenario and drawn options ([`SwarmConfig::draw`]).
pub struct Drawn<'a> {
    pub entry: &'a Entry,
    pub randomised: Randomised,
}

impl Drawn<'_> {
    /// The scenario exactly as its TOML text says (what runs, and what an
    /// artifact states), with the drawn options applied.
    pub fn effective(&self) -> Result<Scenario, ScenarioError> {
        Scenario::parse(&self.entry.path, &to_toml(&self.randomised.scenario))
    }
}

/// What a whole swarm gave.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub seeds: u64,
    /// Outcome as expected (including expected violations).
    pub ok: u64,
    /// Of those, expected violations.
    pub expected_violations: u64,
    pub failed: u64,
    /// Failed seeds by outcome label.
    pub failures_by_outcome: BTreeMap<String, u64>,
    pub jobs: usize,
    pub partition: Partition,
    pub scenarios: Vec<String>,
    pub wall_secs: f64,
    pub virtual_secs: f64,
    pub seeds_per_sec: f64,
    /// Virtual time simulated per wall-clock time, over all workers.
    pub virtual_per_wall: f64,
    /// Per probe of the catalogue, how many seeds reached it.
    pub coverage: Coverage,
}

/// A finished swarm: every seed's result, by seed, and the summary.
#[derive(Clone, Debug, Serialize)]
pub struct SwarmRun {
    /// Totals and coverage.
    pub summary: Summary,
    /// Every seed run, in seed order.
    pub results: Vec<SeedResult>,
}

impl SwarmRun {
    /// The seeds that did not give what their scenario expects.
    pub fn failures(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| r.verdict.failed())
    }

    /// The worst verdict: what the exit code reports.
    pub fn worst(&self) -> Verdict {
        self.results
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// Run a swarm; `on_result` sees every result as it arrives (progress).
pub fn swarm(cfg: &SwarmConfig, mut on_result: impl FnMut(&SeedResult, Progress)) -> SwarmRun {
    assert!(!cfg.mix.is_empty(), "a swarm needs at least one scenario");
    let start = wall_now();
    let total = cfg.seed_count();
    let deadline = match cfg.budget {
        Budget::Wall(d) => Some(d),
        Budget::Seeds(_) => None,
    };
    let mut results = Vec::new();
    let mut failed = 0;
    // The lowest failing seed so far (with `stop_on_failure`): no seed
    // after it is handed out.
    let first_failure = Arc::new(AtomicU64::new(u64::MAX));
    let bound = Arc::clone(&first_failure);
    let seeds = cfg
        .seeds()
        .take_while(move |s| *s <= bound.load(Ordering::Relaxed));
    run_parallel(
        Box::new(seeds),
        cfg.jobs,
        deadline,
        |seed| run_seed(cfg, seed),
        |r| {
            if cfg.stop_on_failure && r.verdict.failed() {
                first_failure.fetch_min(r.seed, Ordering::Relaxed);
            }
            failed += u64::from(r.verdict.failed());
            let progress = Progress {
                done: results.len() as u64 + 1,
                failed,
                total,
                elapsed: start.elapsed(),
            };
            on_result(&r, progress);
            results.push(r);
        },
    );
    results.sort_by_key(|r| r.seed);
    // Seeds after the first failure that were already running when it came
    // in: dropped, so that the result does not depend on `jobs`.
    let first_failure = first_failure.load(Ordering::Relaxed);
    results.retain(|r| r.seed <= first_failure);
    let wall = start.elapsed().as_secs_f64();
    let virtual_secs = results.iter().map(|r| r.virtual_ms as f64 / 1000.0).sum();
    let mut failures_by_outcome = BTreeMap::new();
    for r in results.iter().filter(|r| r.verdict.failed()) {
        *failures_by_outcome.entry(r.outcome.clone()).or_default() += 1;
    }
    let ok = results.iter().filter(|r| !r.verdict.failed()).count() as u64;
    let summary = Summary {
        seeds: results.len() as u64,
        ok,
        expected_violations: results
            .iter()
            .filter(|r| !r.verdict.failed() && r.outcome != "ok")
            .count() as u64,
        failed: results.len() as u64 - ok,
        failures_by_outcome,
        jobs: cfg.jobs.max(1),
        partition: cfg.partition,
        scenarios: cfg.mix.iter().map(|e| e.scenario.name.clone()).collect(),
        wall_secs: wall,
        virtual_secs,
        seeds_per_sec: results.len() as f64 / wall.max(1e-9),
        virtual_per_wall: virtual_secs / wall.max(1e-9),
        coverage: Coverage::of(results.iter().map(|r| &r.probes)),
    };
    SwarmRun { summary, results }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "swarm: {} seeds (partition {}) over {} scenario(s), {} job(s)",
            self.seeds,
            self.partition,
            self.scenarios.len(),
            self.jobs
        )?;
        write!(
            f,
            "  ok {} (of which expected violations {}), failed {}",
            self.ok, self.expected_violations, self.failed
        )?;
        if !self.failures_by_outcome.is_empty() {
            let by: Vec<String> = self
                .failures_by_outcome
                .iter()
                .map(|(k, v)| format!("{k} x{v}"))
                .collect();
            write!(f, " ({})", by.join(", "))?;
        }
        writeln!(f)?;
        write!(
            f,
            "  wall {:.1} s, {:.1} seeds/s, virtual {}, {:.0}x real time",
            self.wall_secs,
            self.seeds_per_sec,
            duration::format(Duration::from_secs(self.virtual_secs as u64)),
            self.virtual_per_wall
        )?;
        write!(f, "\n{}", self.coverage)
    }
}

#[cfg(test)]
mod tests;
