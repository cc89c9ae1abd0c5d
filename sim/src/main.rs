//! The `bootsim` command line.
//!
//! Exit codes: 0 the outcome matched what was expected; 1 an unexpected
//! safety violation, a panic, or an expected violation that did not happen;
//! 2 an unexpected liveness failure; 3 a usage or scenario error (including
//! a replayed schedule that does not fit the run).

use std::path::PathBuf;
use std::process::ExitCode;

use bootsim::Demo;
use bootsim::Keep;
use bootsim::Scenario;
use bootsim::Schedule;
use bootsim::ViolationKind;
use bootsim::determinism;
use bootsim::executor::{RunEnd, Scheduler};
use bootsim::{Outcome, RunOptions, run};
use clap::{Parser, Subcommand};

mod cli;

use cli::{commands, malloc, panics};

/// Deterministic simulation testbed for shard bootstrap: runs the real
/// bootstrap code against a simulated cluster, reproducibly from a seed.
#[derive(Parser, Debug)]
#[command(name = "bootsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one simulation and print its seed, outcome and trace hash.
    ///
    /// With `--scenario FILE` this runs the bootstrap on the simulated
    /// cluster the file describes and checks the oracle; without, the
    /// built-in demo workload (120 ping-pong tasks with random sleeps and
    /// spawned helpers over 4 nodes). The same seed always prints the same
    /// trace-hash. Exits 0 when the outcome is the one the scenario expects.
    Run(RunArgs),
    /// Run many seeds over a scenario mix, in parallel, drawing each seed's
    /// options from the seed; write a replayable artifact per failing seed.
    ///
    /// The mix is every scenarios/*.toml with `swarm = true`, or the files
    /// given with --scenario. Seed s runs one scenario of the mix (drawn
    /// from s) with options drawn from s, so a seed's run never depends on
    /// --jobs or --partition. Exits 0 iff every seed gave the outcome its
    /// scenario expects; else 1 (safety violation or panic) or 2 (only
    /// liveness failures).
    Swarm(commands::SwarmArgs),
    /// Replay a failure artifact: run it with its recorded seed, print the
    /// events before the violation, and check the outcome and trace hash.
    ///
    /// Exits 0 when the outcome is the one the file expects and the trace
    /// hash is the recorded one.
    Replay(commands::ReplayArgs),
    /// Minimise a failing scenario (e.g. an artifact) into the smallest
    /// scenario that still shows the same violation, and write it.
    Shrink(commands::ShrinkArgs),
    /// Measure: `bootsim bench swarm` prints seeds/s and virtual/wall time
    /// for the default scenario on 1 and on all cores.
    Bench(commands::BenchArgs),
    /// List every invariant the oracle checks: its name (as `expect`,
    /// reports and failure files spell it) and one line on what must hold.
    ///
    /// Every invariant holds whatever quirks a scenario switches on: the
    /// quirks are what the oracle must catch.
    Invariants,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Scenario file (TOML, see scenarios/README.md). Default: the demo.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Seed of the run: decides the schedule and every random choice.
    /// Default: the `[replay]` seed (and scheduler) of the scenario file if
    /// it has one (failure artifacts, regressions), else 1.
    #[arg(long)]
    seed: Option<u64>,
    /// How the next task is picked among the ready ones: `random` (seeded
    /// uniform pick), `fifo` (wake-up order, debugging), `pct:D` (PCT of
    /// depth D: random task priorities, D-1 priority change points spread
    /// over the run's estimated steps) or `pct:D:K` (change points drawn
    /// from steps 1..=K). Default: the scenario's `scheduler`, else random.
    #[arg(long, value_name = "NAME", conflicts_with = "replay_schedule")]
    scheduler: Option<Scheduler>,
    /// Write every scheduling decision of the run to FILE (one task number
    /// per line), for --replay-schedule.
    #[arg(long, value_name = "FILE", requires = "scenario")]
    record_schedule: Option<PathBuf>,
    /// Schedule the run by the decisions recorded in FILE (with
    /// --record-schedule) instead of a scheduler: with the same scenario
    /// and seed, the same run (same trace hash). A schedule that does not
    /// fit the run stops it with an error (exit 3).
    #[arg(long, value_name = "FILE", requires = "scenario")]
    replay_schedule: Option<PathBuf>,
    /// Print the last N trace events before the summary (0 = none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    last_events: usize,
    /// Run the scenario twice and compare the traces event by event; on a
    /// mismatch print the first diverging trace index with both events and
    /// exit 1.
    #[arg(long, requires = "scenario")]
    check_determinism: bool,
}

const EXIT_USAGE: u8 = 3;

fn main() -> ExitCode {
    malloc::keep_freed_memory();
    panics::install(panics::Panics::Reported);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run(args) => match &args.scenario {
            Some(path) => run_scenario(path, &args),
            None => run_demo(&args),
        },
        Command::Swarm(args) => commands::swarm_command(&args),
        Command::Replay(args) => commands::replay_command(&args),
        Command::Shrink(args) => commands::shrink_command(&args),
        Command::Bench(args) => commands::bench_command(&args),
        Command::Invariants => {
            for kind in ViolationKind::ALL {
                let class = if kind.is_safety() {
                    "safety"
                } else {
                    "liveness"
                };
                println!("{:<30} {class:<9} {}", kind.name(), kind.description());
            }
            ExitCode::SUCCESS
        }
    }
}

const EXIT_SAFETY: u8 = 1;
const EXIT_LIVENESS: u8 = 2;

fn run_scenario(path: &std::path::Path, args: &RunArgs) -> ExitCode {
    let scenario = match Scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (seed, scheduler) = match (args.seed, &scenario.replay) {
        (None, Some(r)) => (r.seed, args.scheduler.unwrap_or(r.scheduler)),
        (seed, _) => (
            seed.unwrap_or(1),
            args.scheduler
                .or(scenario.scheduler)
                .unwrap_or_default()
                .with_estimated_steps(scenario.estimated_steps()),
        ),
    };
    let replay = match &args.replay_schedule {
        Some(file) => match Schedule::load(file) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => None,
    };
    let opts = RunOptions {
        seed,
        scheduler,
        replay,
        record_schedule: args.record_schedule.is_some(),
        keep: Keep::Last(args.last_events),
        defect: None,
    };
    let report = if args.check_determinism {
        match determinism::check(&scenario, opts) {
            Ok(report) => {
                println!("determinism: ok (two runs, identical traces)");
                report
            }
            Err(divergence) => {
                println!("{divergence}");
                return ExitCode::from(EXIT_SAFETY);
            }
        }
    } else {
        run(&scenario, opts)
    };
    let shown = report.trace.events().count();
    for event in report
        .trace
        .events()
        .skip(shown.saturating_sub(args.last_events))
    {
        println!("{event}");
    }
    println!("scenario: {}", report.scenario);
    println!(
        "end: {} (polls {}, timers {}, tasks {})",
        report.end, report.stats.polls, report.stats.timers_fired, report.stats.spawned
    );
    println!("events: {}", report.trace.total());
    println!("probes: {}", report.trace.probes());
    println!("expected: {}", scenario.expect);
    println!("outcome: {}", report.outcome);
    println!("seed: {}", report.seed);
    match &args.replay_schedule {
        Some(file) => println!("scheduler: replay of {}", file.display()),
        None => println!("scheduler: {scheduler}"),
    }
    println!("trace-hash: {}", report.trace.hash());
    if let (Some(file), Some(schedule)) = (&args.record_schedule, &report.schedule) {
        let header = [
            format!("bootsim schedule: {} decisions", schedule.decisions().len()),
            format!(
                "of scenario {}, seed {}, scheduler {scheduler}, trace hash {}",
                path.display(),
                report.seed,
                report.trace.hash()
            ),
            format!(
                "replay with: bootsim run --scenario {} --seed {} --replay-schedule {}",
                path.display(),
                report.seed,
                file.display()
            ),
        ];
        if let Err(e) = schedule.save(file, &header) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        println!("schedule written to {}", file.display());
    }
    if report.outcome.matches(&scenario.expect) {
        return ExitCode::SUCCESS;
    }
    if args.replay_schedule.is_none() {
        println!(
            "replay with: bootsim run --scenario {} --seed {} --scheduler {scheduler}",
            path.display(),
            report.seed
        );
    }
    match &report.outcome {
        Outcome::ReplayFailed(_) => ExitCode::from(EXIT_USAGE),
        Outcome::Violation(v) if !v.kind.is_safety() => ExitCode::from(EXIT_LIVENESS),
        // A safety violation, a panic, or an expected violation that did not
        // happen.
        _ => ExitCode::from(EXIT_SAFETY),
    }
}

fn run_demo(args: &RunArgs) -> ExitCode {
    let keep = Keep::Last(args.last_events);
    let seed = args.seed.unwrap_or(1);
    let run = Demo::default().run(seed, args.scheduler.unwrap_or_default(), keep);
    for event in run.trace.events() {
        println!("{event}");
    }
    let stats = run.executor.stats();
    println!("scenario: demo");
    println!(
        "end: {} at {} (polls {}, timers {}, tasks {})",
        run.end,
        run.executor.now(),
        stats.polls,
        stats.timers_fired,
        stats.spawned
    );
    println!("events: {}", run.trace.total());
    println!("seed: {seed}");
    println!("trace-hash: {}", run.trace.hash());
    match run.end {
        RunEnd::AllDone => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_LIVENESS),
    }
}
