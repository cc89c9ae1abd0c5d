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
    assert!(err.contains("possible values: random, fifo"), "{err}");
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
