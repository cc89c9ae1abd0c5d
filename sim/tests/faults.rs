//! Random faults (`[faults]`): each kind fires on a small replace-node
//! scenario with only that kind switched on, and the run still passes with
//! every quirk off (the fault atlas keeps random faults recoverable; the
//! liveness phase heals them). Runs with faults are deterministic.

mod common;

use bootsim::Outcome;
use common::{fired, refused, run_all, scenario};

/// Seeds 1 and 2 both pass; `kind` fires at least once over the two.
fn fires_and_is_survived(kind: &str, faults: &str) {
    let s = scenario(faults);
    let mut total = 0;
    for seed in [1, 2] {
        let r = run_all(&s, seed);
        assert_eq!(
            r.outcome,
            Outcome::Pass,
            "{kind}, seed {seed}: {}",
            r.outcome
        );
        total += fired(&r, kind);
    }
    assert!(total > 0, "{kind} never fired");
}

#[test]
fn slow_hops_fire_and_the_cluster_still_converges() {
    fires_and_is_survived(
        "net_latency",
        "[faults.net]\ntail_latency = { num = 1, den = 5 }",
    );
}

#[test]
fn lost_requests_and_replies_are_survived() {
    fires_and_is_survived("net_drop", "[faults.net]\ndrop = { num = 1, den = 5 }");
}

#[test]
fn duplicated_requests_and_keep_alives_are_survived() {
    fires_and_is_survived(
        "net_duplicate",
        "[faults.net]\nduplicate = { num = 1, den = 4 }",
    );
}

#[test]
fn random_partitions_are_survived_and_the_atlas_bounds_them() {
    let faults = "[faults.net]\npartition = { num = 1, den = 10 }\npartition_max = \"30s\"";
    fires_and_is_survived("partition", faults);
    let r = run_all(&scenario(faults), 1);
    assert!(
        refused(&r, "partition").any(|reason| reason.contains("partitions already")),
        "no partition refused for the bound"
    );
}

#[test]
fn streams_cut_mid_transfer_are_survived() {
    fires_and_is_survived(
        "stream_cut",
        "[faults.net]\nstream_cut = { num = 1, den = 5 }",
    );
}

#[test]
fn held_links_are_survived() {
    fires_and_is_survived("hold_link", "[faults.net]\nhold = { num = 1, den = 10 }");
}

#[test]
fn unhealthy_peers_are_survived() {
    fires_and_is_survived(
        "unhealthy",
        "[faults.net]\nunhealthy = { num = 1, den = 10 }",
    );
}

#[test]
fn read_errors_are_survived() {
    fires_and_is_survived(
        "disk_read_eio",
        "[faults.disk]\nread_eio = { num = 1, den = 10 }",
    );
}

#[test]
fn write_errors_are_survived() {
    fires_and_is_survived(
        "disk_write_eio",
        "[faults.disk]\nwrite_eio = { num = 1, den = 10 }",
    );
}

#[test]
fn failed_syncs_are_survived() {
    fires_and_is_survived(
        "disk_sync_fail",
        "[faults.disk]\nsync_fail = { num = 1, den = 10 }",
    );
}

#[test]
fn a_full_disk_is_survived() {
    fires_and_is_survived(
        "disk_enospc",
        "[faults.disk]\nenospc = { num = 1, den = 10 }",
    );
}

/// `n1` stays `Leaving` for 10 minutes (its replacement cannot be marked
/// available), so corruption has a repairable replica to land on.
#[test]
fn random_corruption_lands_only_on_leaving_replicas_with_checksums_and_is_survived() {
    fires_and_is_survived(
        "corruption",
        "[faults.disk]\nchecksums = true\ncorruption = { num = 1, den = 2 }\n\
         [[step]]\nat = \"1h5m\"\ndo = \"mark_available_fails\"\nfor = \"10m\"",
    );
    let r = run_all(
        &scenario("[faults.disk]\nchecksums = true\ncorruption = { num = 1, den = 2 }"),
        1,
    );
    assert!(refused(&r, "corruption").any(|reason| reason.contains("never be repaired")));
}

#[test]
fn without_checksums_the_atlas_refuses_every_random_corruption() {
    let r = run_all(
        &scenario("[faults.disk]\ncorruption = { num = 1, den = 2 }"),
        1,
    );
    assert_eq!(r.outcome, Outcome::Pass);
    assert_eq!(fired(&r, "corruption"), 0);
    assert!(refused(&r, "corruption").any(|reason| reason.contains("checksums are off")));
}

#[test]
fn skewed_and_drifting_clocks_are_survived() {
    fires_and_is_survived(
        "clock_skew",
        "[faults.clock]\nskew_max = \"2s\"\ndrift_max_ppm = 500",
    );
}

#[test]
fn clock_jumps_are_survived() {
    fires_and_is_survived(
        "clock_jump",
        "[faults.clock]\njump = { num = 1, den = 20 }\njump_max = \"5m\"",
    );
}

#[test]
fn failing_mark_available_calls_are_survived() {
    fires_and_is_survived(
        "mark_available_fail",
        "[faults.placement]\nmark_available_fail = { num = 1, den = 1 }",
    );
}

#[test]
fn slow_mark_available_calls_are_survived() {
    fires_and_is_survived(
        "mark_available_delay",
        "[faults.placement]\nmark_available_delay = { num = 1, den = 1 }",
    );
}

const EVERY_FAULT: &str = r#"
[faults.net]
tail_latency = { num = 1, den = 10 }
drop = { num = 1, den = 20 }
duplicate = { num = 1, den = 10 }
partition = { num = 1, den = 60 }
partition_max = "30s"
stream_cut = { num = 1, den = 20 }
hold = { num = 1, den = 60 }
unhealthy = { num = 1, den = 60 }
[faults.disk]
checksums = true
read_eio = { num = 1, den = 100 }
write_eio = { num = 1, den = 100 }
sync_fail = { num = 1, den = 100 }
enospc = { num = 1, den = 100 }
corruption = { num = 1, den = 30 }
[faults.clock]
skew_max = "2s"
drift_max_ppm = 200
jump = { num = 1, den = 120 }
jump_max = "2m"
[faults.placement]
mark_available_fail = { num = 1, den = 3 }
mark_available_delay = { num = 1, den = 3 }
"#;

#[test]
fn the_same_seed_with_every_fault_on_gives_the_same_trace() {
    let s = scenario(EVERY_FAULT);
    let a = run_all(&s, 7);
    let b = run_all(&s, 7);
    assert_eq!(a.outcome, Outcome::Pass, "{}", a.outcome);
    assert!(
        a.trace
            .events()
            .filter(|e| e.name() == "fault_injected")
            .count()
            > 100,
        "too few faults to mean anything"
    );
    assert_eq!(a.trace.hash(), b.trace.hash());
    assert_ne!(a.trace.hash(), run_all(&s, 8).trace.hash());
}

#[test]
fn a_faults_section_with_everything_off_changes_nothing() {
    let plain = run_all(&scenario(""), 3);
    let off = run_all(&scenario("[faults]\ntick = \"1s\"\n[faults.net]\n"), 3);
    assert_eq!(plain.trace.hash(), off.trace.hash());
    assert!(
        plain
            .trace
            .events()
            .all(|e| e.name() != "fault_injected" && e.name() != "fault_refused")
    );
}
