//! (Binary only.) The `swarm`, `replay`, `shrink` and `bench swarm`
//! commands of the `bootsim` CLI; the work itself is in the library
//! (`bootsim`, `artifact`, `shrink`, `report`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bootsim::Choices;
use bootsim::Outcome;
use bootsim::Scenario;
use bootsim::duration;
use bootsim::executor::Scheduler;
use bootsim::{Budget, Entry, Partition, SwarmConfig, Verdict, default_mix, swarm};
use bootsim::{DetectionConfig, detect, markdown_table};
use bootsim::{ProgressPrinter, junit_xml, write_json};
use bootsim::{failing_seeds, shrink};
use bootsim::{replay, to_toml};
use shardboot::quirks::Quirk;

use super::panics::{self, Panics};

pub const EXIT_SAFETY: u8 = 1;
pub const EXIT_LIVENESS: u8 = 2;
pub const EXIT_USAGE: u8 = 3;
/// `swarm --require-coverage`: every seed passed, but some probe was
/// reached by none.
pub const EXIT_COVERAGE: u8 = 4;

#[derive(clap::Args, Debug)]
pub struct SwarmArgs {
    /// A scenario file of the mix (repeatable). Default: every
    /// `<scenarios-dir>/*.toml` with `swarm = true`.
    #[arg(long = "scenario", value_name = "FILE")]
    scenarios: Vec<PathBuf>,
    /// Where the default mix is looked for.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    scenarios_dir: PathBuf,
    /// Run seeds first-seed .. first-seed + N (before partitioning).
    /// Default 100 when --duration is not given either.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    seeds: Option<u64>,
    /// Run seeds for this much wall time instead, e.g. `10m`, `90s`.
    #[arg(long, value_name = "TIME", value_parser = duration::parse)]
    duration: Option<Duration>,
    /// The first seed.
    #[arg(long, value_name = "S", default_value_t = 1)]
    first_seed: u64,
    /// Worker threads, each running one whole simulation at a time.
    /// Default: the available cores.
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Run only part k of n: the seeds s with s % n == k - 1.
    #[arg(long, value_name = "k/n", default_value = "1/1")]
    partition: Partition,
    /// Run the scenarios as written, without drawing options per seed.
    #[arg(long)]
    no_randomise: bool,
    /// Where failing seeds write their artifact files.
    #[arg(long, value_name = "DIR", default_value = "failures")]
    failures: PathBuf,
    /// Write every seed's result and the summary as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per seed).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Switch an upstream quirk on in every scenario of the mix
    /// (repeatable): `Q1`..`Q14`, see docs/MODEL.md §6. Failing seeds' artifacts
    /// carry the quirk, so they replay and shrink with it on.
    #[arg(long = "quirk", value_name = "Qn")]
    quirks: Vec<Quirk>,
    /// Run every seed with this scheduler: `random`, `fifo`, `pct:D` or
    /// `pct:D:K` (see `bootsim run --help`), instead of the scenario's
    /// `scheduler` or, without one, the one drawn per seed (mostly random,
    /// sometimes fifo or PCT of depth 1 to 3).
    #[arg(long, value_name = "NAME")]
    scheduler: Option<Scheduler>,
    /// Fail (exit 4) if some coverage probe was reached by no seed, even
    /// when every seed passed. Without it, unreached probes are a warning.
    #[arg(long)]
    require_coverage: bool,
    /// Stop at the first failing seed (the lowest one, whatever --jobs):
    /// start no seed after it and report the seeds up to it.
    #[arg(long)]
    stop_on_failure: bool,
}

fn jobs_default() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn load_mix(files: &[PathBuf], dir: &Path) -> Result<Vec<Entry>, String> {
    if files.is_empty() {
        let mix = default_mix(dir).map_err(|e| e.to_string())?;
        if mix.is_empty() {
            return Err(format!(
                "no scenario in {} has `swarm = true`; name one with --scenario FILE",
                dir.display()
            ));
        }
        return Ok(mix);
    }
    files
        .iter()
        .map(|path| {
            Scenario::load(path)
                .map(|scenario| Entry {
                    path: path.clone(),
                    scenario,
                })
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The files of a mix, comma-separated, for the first line of a report.
fn mix_files(mix: &[Entry]) -> String {
    let names: Vec<String> = mix.iter().map(|e| e.path.display().to_string()).collect();
    names.join(", ")
}

pub fn swarm_command(args: &SwarmArgs) -> ExitCode {
    let mut mix = match load_mix(&args.scenarios, &args.scenarios_dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    for entry in &mut mix {
        for &q in &args.quirks {
            entry.scenario.switch_on(q);
        }
        if let Some(s) = args.scheduler {
            entry.scenario.scheduler = Some(s);
        }
    }
    let budget = match (args.seeds, args.duration) {
        (_, Some(d)) => Budget::Wall(d),
        (n, None) => Budget::Seeds(n.unwrap_or(100)),
    };
    let cfg = SwarmConfig {
        mix,
        budget,
        first_seed: args.first_seed,
        jobs: args.jobs.unwrap_or_else(jobs_default).max(1),
        partition: args.partition,
        randomise: !args.no_randomise,
        failures: Some(args.failures.clone()),
        stop_on_failure: args.stop_on_failure,
    };
    println!(
        "swarm: {} over {}, partition {}, {} job(s), options {}",
        match budget {
            Budget::Seeds(n) => format!(
                "seeds {}..{}",
                cfg.first_seed,
                cfg.first_seed.saturating_add(n)
            ),
            Budget::Wall(d) => format!("{} of seeds from {}", duration::format(d), cfg.first_seed),
        },
        mix_files(&cfg.mix),
        cfg.partition,
        cfg.jobs,
        if cfg.randomise {
            "drawn per seed"
        } else {
            "as written"
        }
    );
    if !args.quirks.is_empty() {
        let on: Vec<String> = args.quirks.iter().map(Quirk::to_string).collect();
        println!("quirks switched on: {}", on.join(", "));
    }
    // Panics are caught and reported per seed; the default hook would also
    // print each one, interleaved with the progress output.
    panics::install(Panics::CaughtPerSeed);
    let mut progress = ProgressPrinter::new(cfg.seed_count(), Duration::from_secs(10));
    let result = swarm(&cfg, |r, p| progress.update(r, p));
    progress.finish();
    panics::install(Panics::Reported);
    println!("{}", result.summary);
    let failures: Vec<_> = result.failures().collect();
    if !failures.is_empty() {
        println!("failures:");
        const LISTED: usize = 20;
        for r in failures.iter().take(LISTED) {
            println!(
                "  seed {} {}: {}",
                r.seed,
                r.scenario,
                r.detail.as_deref().unwrap_or(&r.outcome)
            );
            println!("    options: {}", Choices(&r.options));
            if let Some(a) = &r.artifact {
                println!("    repro written to {}", a.display());
            }
            println!("    replay with: {}", r.replay_command());
        }
        if failures.len() > LISTED {
            println!("  ... and {} more (see --json)", failures.len() - LISTED);
        }
    }
    if let Some(path) = &args.json
        && let Err(e) = write_json(&result, path)
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, junit_xml(&result))
    {
        eprintln!("error: cannot write {}: {e}", path.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let coverage = &result.summary.coverage;
    let uncovered = args.require_coverage && !coverage.complete();
    if uncovered {
        println!(
            "coverage required: {} probe(s) reached by no seed: {}",
            coverage.unreached.len(),
            coverage.unreached.join(", ")
        );
    }
    match result.worst() {
        Verdict::Ok if uncovered => ExitCode::from(EXIT_COVERAGE),
        Verdict::Ok => ExitCode::SUCCESS,
        Verdict::Liveness => ExitCode::from(EXIT_LIVENESS),
        Verdict::Safety | Verdict::Panic => ExitCode::from(EXIT_SAFETY),
    }
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// A failure artifact (or any scenario file with a `[replay]` section).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// How many trace events before the violation to print.
    #[arg(long, value_name = "N", default_value_t = 30)]
    last_events: usize,
}

pub fn replay_command(args: &ReplayArgs) -> ExitCode {
    let scenario = match Scenario::load(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if scenario.replay.is_none() {
        eprintln!(
            "note: {} has no [replay] section: running seed 1",
            args.file.display()
        );
    }
    let r = replay(&scenario, args.last_events);
    if !r.before.is_empty() {
        println!("last {} events before the outcome:", r.before.len());
        for e in &r.before {
            println!("  {e}");
        }
    }
    let report = &r.report;
    println!("scenario: {}", report.scenario);
    println!(
        "end: {} (polls {}, timers {}, tasks {})",
        report.end, report.stats.polls, report.stats.timers_fired, report.stats.spawned
    );
    println!("expected: {}", scenario.expect);
    println!("outcome: {}", report.outcome);
    println!("seed: {}", r.seed);
    let hash = report.trace.hash();
    match &r.expected_hash {
        Some(h) if *h == hash => println!("trace-hash: {hash} (the recorded one)"),
        Some(h) => println!("trace-hash: {hash} (DIFFERS from the recorded {h})"),
        None => println!("trace-hash: {hash}"),
    }
    if !r.outcome_matches(&scenario) {
        println!("the outcome is not the one the file expects");
        return match &report.outcome {
            Outcome::Violation(v) if !v.kind.is_safety() => ExitCode::from(EXIT_LIVENESS),
            _ => ExitCode::from(EXIT_SAFETY),
        };
    }
    if !r.hash_matches() {
        println!(
            "the outcome is the expected one, but the run is not the recorded one: the code or the simulator changed since the file was written"
        );
        return ExitCode::from(EXIT_SAFETY);
    }
    println!("reproduced");
    ExitCode::SUCCESS
}

#[derive(clap::Args, Debug)]
pub struct ShrinkArgs {
    /// A failing scenario: a failure artifact, or any file with a
    /// `[replay]` seed (else seed 1) that fails.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the result. Default: FILE with `.shrunk.toml`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Stop after this many runs.
    #[arg(long, value_name = "N", default_value_t = 400)]
    max_runs: usize,
    /// Afterwards, run the result with seeds 1..=N to tell how much it
    /// depends on its seed (0: skip).
    #[arg(long, value_name = "N", default_value_t = 20)]
    check_seeds: u64,
}

pub fn shrink_command(args: &ShrinkArgs) -> ExitCode {
    let input = match Scenario::load(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let shrunk = match shrink(&input, args.max_runs, |line| eprintln!("shrink: {line}")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("shrunk.toml"));
    let target = shrunk.violation.kind.name();
    let seeds_line = if args.check_seeds > 0 {
        let (k, n) = failing_seeds(&shrunk.scenario, target, 1..=args.check_seeds);
        format!(
            "With seeds 1..={}: {k} of {n} also fail with {target}.",
            args.check_seeds
        )
    } else {
        String::new()
    };
    let header = [
        format!(
            "bootsim shrink: minimised from {} in {} runs.",
            args.file.display(),
            shrunk.runs
        ),
        format!("Shows: {}", shrunk.violation),
        format!("Before: {}", shrunk.before),
        format!("After:  {}", shrunk.after),
        if shrunk.explicit_steps > 0 {
            format!(
                "Every step is spelled out, fault steps included ({} of them written in place of random fault episodes that fired).",
                shrunk.explicit_steps
            )
        } else {
            "Every step is spelled out, fault steps included.".into()
        },
        random_faults_line(&shrunk.scenario),
        format!(
            "The schedule, latencies and workload are drawn from the seed in [replay] ({}). {seeds_line}",
            shrunk.seed
        ),
        format!("Replay: bootsim replay {}", out.display()),
    ];
    let mut text: String = header.iter().map(|l| format!("# {l}\n")).collect();
    text.push('\n');
    text.push_str(&to_toml(&shrunk.scenario));
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    for l in &header {
        println!("{l}");
    }
    println!("written to {}", out.display());
    ExitCode::SUCCESS
}

/// What the header of a shrunk scenario says about its random faults.
fn random_faults_line(s: &Scenario) -> String {
    let mut f = s.faults.clone();
    let on: Vec<String> = bootsim::fault_ratios(&mut f)
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, r)| format!("{n}={}/{}", r.num, r.den))
        .collect();
    if on.is_empty() && f.clock.skew_max.is_zero() && f.clock.drift_max_ppm == 0 {
        "No random faults are left: it needs none to fail.".into()
    } else {
        format!(
            "Random faults left (they have no scripted equivalent here, so the seed decides when they fire): {}{}",
            on.join(" "),
            if f.clock.skew_max.is_zero() && f.clock.drift_max_ppm == 0 {
                ""
            } else {
                " clock skew/drift"
            }
        )
    }
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(clap::Subcommand, Debug)]
enum BenchWhat {
    /// Seeds/s and virtual/wall time ratio of the default scenario on one
    /// worker and on all cores, the scaling factor, and peak memory.
    Swarm(BenchSwarmArgs),
    /// Per quirk: seeds to the swarm's first failure over several
    /// independent starts (and their median), the violations hit, and the
    /// first failure shrunk; a Markdown table for docs/DETECTION.md.
    Detection(BenchDetectionArgs),
}

#[derive(clap::Args, Debug)]
struct BenchDetectionArgs {
    /// The quirks to measure (repeatable). Default: Q1..Q14.
    #[arg(long = "quirk", value_name = "Qn")]
    quirks: Vec<Quirk>,
    /// A scenario file of the mix (repeatable). Default: every
    /// `<scenarios-dir>/*.toml` with `swarm = true`.
    #[arg(long = "scenario", value_name = "FILE")]
    scenarios: Vec<PathBuf>,
    /// Where the default mix is looked for.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    scenarios_dir: PathBuf,
    /// Independent swarm starts per quirk (disjoint seed ranges).
    #[arg(long, value_name = "K", default_value_t = 5)]
    starts: u64,
    /// Seeds per start before it counts as "not found".
    #[arg(long, value_name = "N", default_value_t = 200)]
    max_seeds: u64,
    /// The first seed of the first start; start i begins at
    /// first-seed + i * max-seeds.
    #[arg(long, value_name = "S", default_value_t = 1)]
    first_seed: u64,
    /// Worker threads of each swarm. Default: the available cores.
    #[arg(long, value_name = "J")]
    jobs: Option<usize>,
    /// Run budget for shrinking each quirk's first failure (0: skip).
    #[arg(long, value_name = "N", default_value_t = 200)]
    shrink_runs: usize,
    /// Where failing seeds write their artifact files.
    #[arg(long, value_name = "DIR", default_value = "failures")]
    failures: PathBuf,
}

#[derive(clap::Args, Debug)]
struct BenchSwarmArgs {
    /// The scenario to measure (default: scenarios/default.toml: 3 nodes,
    /// 4 shards, one fact and one dimension table, 2 h).
    #[arg(long, value_name = "FILE", default_value = "scenarios/default.toml")]
    scenario: PathBuf,
    /// Seeds per measurement. A measurement ends with its last seed, when
    /// the other workers may already be idle: 100 seeds keep that under ~1%
    /// of a measurement (about 2 s each on 2 cores).
    #[arg(long, value_name = "N", default_value_t = 100)]
    seeds: u64,
}

/// A field of /proc/self/status in KiB (`VmHWM`, `VmRSS`), if readable.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn bench_command(args: &BenchArgs) -> ExitCode {
    match &args.what {
        BenchWhat::Swarm(a) => bench_swarm(a),
        BenchWhat::Detection(a) => bench_detection(a),
    }
}

fn bench_detection(a: &BenchDetectionArgs) -> ExitCode {
    let mix = match load_mix(&a.scenarios, &a.scenarios_dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if a.starts == 0 || a.max_seeds == 0 {
        eprintln!("error: --starts and --max-seeds must be at least 1");
        return ExitCode::from(EXIT_USAGE);
    }
    let quirks = if a.quirks.is_empty() {
        Quirk::ALL.to_vec()
    } else {
        a.quirks.clone()
    };
    let cfg = DetectionConfig {
        mix,
        starts: a.starts,
        max_seeds: a.max_seeds,
        first_seed: a.first_seed,
        jobs: a.jobs.unwrap_or_else(jobs_default).max(1),
        shrink_runs: a.shrink_runs,
        failures: Some(a.failures.clone()),
    };
    println!(
        "bench detection: {} start(s) of at most {} seeds per quirk from seed {}, over {}, {} job(s)",
        cfg.starts,
        cfg.max_seeds,
        cfg.first_seed,
        mix_files(&cfg.mix),
        cfg.jobs
    );
    // Panics are caught and reported per seed (see swarm_command).
    panics::install(Panics::CaughtPerSeed);
    let results: Vec<_> = quirks
        .iter()
        .map(|&q| detect(&cfg, q, |line| eprintln!("{line}")))
        .collect();
    panics::install(Panics::Reported);
    print!("{}", markdown_table(&results, cfg.max_seeds));
    ExitCode::SUCCESS
}

fn bench_swarm(a: &BenchSwarmArgs) -> ExitCode {
    let scenario = match Scenario::load(&a.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let cores = jobs_default();
    let baseline = proc_status_kib("VmRSS:").unwrap_or(0);
    let mut rates = Vec::new();
    println!(
        "bench swarm: {} ({}), {} seeds per measurement, {cores} core(s)",
        scenario.name,
        a.scenario.display(),
        a.seeds
    );
    for jobs in [1, cores] {
        let cfg = SwarmConfig {
            mix: vec![Entry {
                path: a.scenario.clone(),
                scenario: scenario.clone(),
            }],
            budget: Budget::Seeds(a.seeds),
            first_seed: 1,
            jobs,
            partition: Partition::WHOLE,
            randomise: false,
            failures: None,
            stop_on_failure: false,
        };
        let run = swarm(&cfg, |_, _| {});
        let s = &run.summary;
        let peak = proc_status_kib("VmHWM:").unwrap_or(0);
        println!(
            "jobs={jobs}: {:.2} seeds/s, {:.0}x real time, {:.2} s per seed, failed {}, peak RSS {:.1} MiB (baseline {:.1} MiB)",
            s.seeds_per_sec,
            s.virtual_per_wall,
            s.wall_secs * jobs as f64 / s.seeds.max(1) as f64,
            s.failed,
            peak as f64 / 1024.0,
            baseline as f64 / 1024.0
        );
        if jobs == 1 {
            println!(
                "  peak RSS per simulation (1 job, above baseline): {:.1} MiB",
                peak.saturating_sub(baseline) as f64 / 1024.0
            );
        }
        rates.push(s.seeds_per_sec);
        if cores == 1 {
            break;
        }
    }
    if let [one, all] = rates[..] {
        println!("scaling 1 -> {cores} cores: {:.2}x", all / one);
    }
    ExitCode::SUCCESS
}
