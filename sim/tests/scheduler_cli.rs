//! Choosing a scheduler, and recording and replaying a schedule, as a user
//! does: with the `bootsim` binary and scenario files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bootsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bootsim"))
        .args(args)
        .output()
        .expect("run bootsim")
}

/// `bootsim run --scenario FILE --seed SEED`, then `extra`.
fn run(file: &str, seed: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--scenario", file, "--seed", seed];
    args.extend_from_slice(extra);
    bootsim(&args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line(out: &Output, key: &str) -> String {
    stdout(out)
        .lines()
        .find_map(|l| l.strip_prefix(key).map(str::to_string))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{}", stdout(out)))
}

/// A fresh directory for one test's files.
fn dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A ten-minute scenario, with `extra` top-level fields.
fn scenario(dir: &Path, extra: &str) -> String {
    let path = dir.join("small.toml");
    let text = format!(
        "name = \"small\"\nduration = \"10m\"\n{extra}\n\n[cluster]\nnodes = 3\nreplicas = 2\n\
         shards = 2\n\n[[table]]\nname = \"trips\"\nkind = \"fact\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_recorded_schedule_replays_the_same_run_and_a_cut_one_is_an_error() {
    let d = dir("record_replay");
    let file = scenario(&d, "");
    let sched = d.join("s.txt").display().to_string();
    let recorded = run(
        &file,
        "4",
        &["--scheduler", "pct:2", "--record-schedule", &sched],
    );
    assert!(recorded.status.success(), "{recorded:?}");
    let text = std::fs::read_to_string(&sched).unwrap();
    assert!(text.starts_with("# bootsim schedule: "), "{text}");
    let replayed = run(&file, "4", &["--replay-schedule", &sched]);
    assert!(replayed.status.success(), "{replayed:?}");
    assert_eq!(
        line(&replayed, "trace-hash: "),
        line(&recorded, "trace-hash: ")
    );
    assert_eq!(line(&replayed, "scheduler: "), format!("replay of {sched}"));
    // Without the schedule (the random default) the run is another one:
    // the replay's hash is the schedule's doing.
    let random = run(&file, "4", &[]);
    assert_ne!(
        line(&random, "trace-hash: "),
        line(&recorded, "trace-hash: ")
    );

    let cut: String = text.lines().take(200).map(|l| format!("{l}\n")).collect();
    std::fs::write(&sched, cut).unwrap();
    let short = run(&file, "4", &["--replay-schedule", &sched]);
    assert_eq!(short.status.code(), Some(3), "{short:?}");
    assert!(
        line(&short, "outcome: ").starts_with("replay failed: the recorded schedule ran out after"),
        "{}",
        stdout(&short)
    );
}

#[test]
fn a_schedule_file_with_a_bad_line_is_a_usage_error_naming_the_line() {
    let d = dir("bad_schedule");
    let file = scenario(&d, "");
    let sched = d.join("s.txt");
    std::fs::write(&sched, "# header\n3\nthree\n").unwrap();
    let out = bootsim(&[
        "run",
        "--scenario",
        &file,
        "--replay-schedule",
        &sched.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s.txt:3: `three` is not a task number"),
        "{err}"
    );
}

#[test]
fn the_scenario_names_its_scheduler_and_the_command_line_overrides_it() {
    let d = dir("scenario_scheduler");
    let file = scenario(&d, "scheduler = \"pct:2\"");
    let own = run(&file, "3", &[]);
    assert!(own.status.success(), "{own:?}");
    // Ten virtual minutes at the estimated 80 steps per second.
    assert_eq!(line(&own, "scheduler: "), "pct:2:48000");
    let fifo = run(&file, "3", &["--scheduler", "fifo"]);
    assert_eq!(line(&fifo, "scheduler: "), "fifo");
    assert_ne!(line(&own, "trace-hash: "), line(&fifo, "trace-hash: "));
    let explicit = run(&file, "3", &["--scheduler", "pct:2:48000"]);
    assert_eq!(line(&explicit, "trace-hash: "), line(&own, "trace-hash: "));
}

#[test]
fn unknown_schedulers_are_refused_with_the_accepted_forms() {
    let d = dir("bad_scheduler");
    let out = bootsim(&["run", "--seed", "1", "--scheduler", "pct:0"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"pct:D\""));
    let file = scenario(&d, "scheduler = \"lifo\"");
    let out = bootsim(&["run", "--scenario", &file]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("small.toml:3:") && err.contains("unknown scheduler `lifo`"),
        "{err}"
    );
}

#[test]
fn swarm_scheduler_runs_every_seed_with_it() {
    let d = dir("swarm_scheduler");
    let file = scenario(&d, "");
    let json = d.join("swarm.json").display().to_string();
    let failures = d.join("failures").display().to_string();
    let out = bootsim(&[
        "swarm",
        "--scenario",
        &file,
        "--seeds",
        "1",
        "--first-seed",
        "5",
        "--no-randomise",
        "--scheduler",
        "pct:3",
        "--json",
        &json,
        "--failures",
        &failures,
    ]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let swarm_hash = report["results"][0]["trace_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let hash = |scheduler: &str| {
        line(
            &run(&file, "5", &["--scheduler", scheduler]),
            "trace-hash: ",
        )
    };
    assert_eq!(swarm_hash, hash("pct:3"));
    assert_ne!(swarm_hash, hash("random"));
}
