//! The `bootsim` binary as a user runs it: output contract, determinism
//! across processes, exit codes.

use std::process::{Command, Output};

fn bootsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bootsim"))
        .args(args)
        .output()
        .expect("run bootsim")
}

fn line(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).map(str::to_string))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"))
}

#[test]
fn run_prints_seed_and_a_trace_hash_that_is_the_same_in_another_process() {
    let a = bootsim(&["run", "--seed", "7"]);
    let b = bootsim(&["run", "--seed", "7"]);
    assert!(a.status.success(), "{a:?}");
    assert_eq!(line(&a, "seed: "), "7");
    let hash = line(&a, "trace-hash: ");
    assert_eq!(hash.len(), 16);
    assert_eq!(hash, line(&b, "trace-hash: "));
}

#[test]
fn different_seeds_print_different_trace_hashes() {
    let a = bootsim(&["run", "--seed", "7"]);
    let b = bootsim(&["run", "--seed", "8"]);
    assert_ne!(line(&a, "trace-hash: "), line(&b, "trace-hash: "));
}

#[test]
fn usage_errors_exit_with_code_3_and_say_what_is_allowed() {
    let out = bootsim(&["run", "--scheduler", "chaos"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"expected "random", "fifo", "pct:D" or "pct:D:K""#),
        "{err}"
    );
    assert_eq!(bootsim(&["run", "--seed", "x"]).status.code(), Some(3));
    assert_eq!(bootsim(&["frobnicate"]).status.code(), Some(3));
}

#[test]
fn help_explains_every_subcommand_and_flag() {
    let out = bootsim(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("run"));
    let run = String::from_utf8_lossy(&bootsim(&["run", "--help"]).stdout).into_owned();
    for flag in ["--seed", "--scheduler", "--last-events"] {
        assert!(run.contains(flag), "run --help lacks {flag}:\n{run}");
    }
}

#[test]
fn swarm_warns_about_unreached_probes_and_fails_on_them_with_require_coverage() {
    // A small fault-free scenario: a swarm over it reaches few probes.
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/dimension-only-new-node.toml"
    );
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-coverage");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (json, failures) = (dir.join("swarm.json"), dir.join("failures"));
    let json = json.to_str().expect("utf-8 path");
    let args = [
        "swarm",
        "--scenario",
        scenario,
        "--seeds",
        "2",
        "--jobs",
        "1",
        "--failures",
        failures.to_str().expect("utf-8 path"),
        "--json",
        json,
    ];

    let warned = bootsim(&args);
    assert!(warned.status.success(), "{warned:?}");
    let stdout = String::from_utf8_lossy(&warned.stdout);
    assert!(stdout.contains("copy_fell_over"), "{stdout}");
    assert!(
        line(&warned, "  warning: ").contains("reached by no seed: "),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("valid json");
    let coverage = &report["summary"]["coverage"];
    assert_eq!(coverage["seeds"], 2);
    let unreached = coverage["unreached"].as_array().expect("unreached list");
    assert!(unreached.iter().any(|p| p == "source_crashed_mid_copy"));
    assert!(report["results"][0]["probes"].is_object());

    let failed = bootsim(&[&args[..], &["--require-coverage"]].concat());
    assert_eq!(failed.status.code(), Some(4), "{failed:?}");
    let named = line(&failed, "coverage required: ");
    assert!(named.contains("reached by no seed: "), "{named}");
    for p in unreached {
        let p = p.as_str().expect("a probe name");
        assert!(named.contains(p), "{p} not named in: {named}");
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_run_quietly_like_a_unix_tool() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // The demo's events are far more than a pipe holds, so printing them
    // meets the closed pipe (as with `bootsim run ... | head -1`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_bootsim"))
        .args(["run", "--seed", "1", "--last-events", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bootsim");
    let mut first = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read a line");
    assert!(!first.is_empty());
    let out = child.wait_with_output().expect("wait for bootsim");
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
