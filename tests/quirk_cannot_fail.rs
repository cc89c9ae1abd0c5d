//! Quirks that cannot cause a violation in the model (docs/MODEL.md §6: "or show why
//! it cannot"). Each has a regression file with the quirk on that expects
//! `pass` and says why in its header; here the swarm runs that file with
//! randomised options over 2,000 seeds and must find nothing.

mod common;

use shardboot::quirks::Quirk;

/// Seeds 1..=2,000 of a swarm over `scenarios/<file>` alone must all pass;
/// else the test fails with one line per failing seed.
fn assert_swarm_finds_nothing(file: &str, quirk: Quirk) {
    let scenario = common::scenario(file);
    assert!(scenario.quirk_set().on(quirk), "{file}: {quirk} is not on");
    let failures = common::swarm_failures(file, 2_000);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn q12_no_source_cannot_arise_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing("regressions/q12-no-source-cannot-arise.toml", Quirk::Q12);
}

#[test]
fn q1_clock_seeded_shuffle_fails_nothing_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q1-clock-seeded-shuffle-cannot-fail.toml",
        Quirk::Q1,
    );
}

#[test]
fn q3_copy_going_on_after_keep_alive_loss_fails_nothing_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q3-copy-goes-on-after-keep-alive-loss-cannot-fail.toml",
        Quirk::Q3,
    );
}

#[test]
fn q6_split_session_check_fails_nothing_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q6-split-session-check-cannot-fail.toml",
        Quirk::Q6,
    );
}

#[test]
fn q8_mixed_metadata_reads_cannot_fail_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q8-mixed-metadata-reads-cannot-fail.toml",
        Quirk::Q8,
    );
}

#[test]
fn q9_token_reserves_nothing_cannot_fail_in_2000_swarm_seeds() {
    assert_swarm_finds_nothing(
        "regressions/q9-token-reserves-nothing-cannot-fail.toml",
        Quirk::Q9,
    );
}
