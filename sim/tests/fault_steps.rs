//! Scripted fault steps: each does what it says on a replace-node run
//! (n1 → n4 at 1h5m), and the scenario format accepts and checks them.

mod common;

use std::path::Path;
use std::time::Duration;

use bootsim::Scenario;
use bootsim::VirtualTime;
use bootsim::{Outcome, Report};
use common::{fired, refused, run_all, scenario};

fn at(s: &str) -> VirtualTime {
    VirtualTime::ZERO + bootsim::duration::parse(s).unwrap()
}

/// When n4 finished its last peer copy.
fn last_copy_on_n4(r: &Report) -> VirtualTime {
    r.trace
        .events()
        .filter(|e| e.name() == "peer_copy_finished" && e.node.is_some_and(|n| n.0 == 4))
        .map(|e| e.time)
        .max()
        .expect("n4 copied")
}

fn passes(r: &Report) {
    assert_eq!(r.outcome, Outcome::Pass, "{}", r.outcome);
}

#[test]
fn a_partition_keeps_the_new_node_from_copying_until_it_heals() {
    for oneway in [false, true] {
        let r = run_all(
            &scenario(&format!(
                "[[step]]\nat = \"1h4m\"\ndo = \"partition\"\nnodes = [\"n4\"]\noneway = {oneway}\n\
                 [[step]]\nat = \"1h10m\"\ndo = \"heal\""
            )),
            1,
        );
        passes(&r);
        assert_eq!(fired(&r, "partition"), 1);
        assert!(last_copy_on_n4(&r) > at("1h10m"), "oneway = {oneway}");
    }
}

#[test]
fn held_links_delay_the_copy_until_released_and_lose_nothing() {
    let hold = |verb, from| {
        format!(
            "[[step]]\nat = \"{}\"\ndo = \"{verb}\"\nfrom = \"{from}\"\nto = \"n4\"\n",
            { if verb == "hold_link" { "1h4m" } else { "1h8m" } }
        )
    };
    let steps: String = ["n1", "n2", "n3"]
        .iter()
        .flat_map(|n| [hold("hold_link", n), hold("release_link", n)])
        .collect();
    let r = run_all(&scenario(&steps), 1);
    passes(&r);
    assert_eq!(fired(&r, "hold_link"), 3);
    assert!(last_copy_on_n4(&r) > at("1h8m"));
}

#[test]
fn cutting_a_sources_streams_mid_copy_is_survived() {
    for seed in [1, 2] {
        let r = run_all(
            &scenario(
                "[[step]]\nat = \"1h5m20ms\"\ndo = \"cut_streams\"\nnode = \"n2\"\n\
                 [[step]]\nat = \"1h5m20ms\"\ndo = \"cut_streams\"\nnode = \"n3\"",
            ),
            seed,
        );
        passes(&r);
        assert_eq!(fired(&r, "stream_cut"), 2);
    }
}

#[test]
fn unhealthy_sources_are_skipped_until_they_recover() {
    let r = run_all(
        &scenario(
            "[[step]]\nat = \"1h4m\"\ndo = \"unhealthy\"\nnode = \"n1\"\nfor = \"3m\"\n\
             [[step]]\nat = \"1h4m\"\ndo = \"unhealthy\"\nnode = \"n2\"\nfor = \"3m\"\n\
             [[step]]\nat = \"1h4m\"\ndo = \"unhealthy\"\nnode = \"n3\"\nfor = \"3m\"",
        ),
        1,
    );
    passes(&r);
    assert!(r.trace.events().any(|e| e.name() == "peer_skipped"
        && e.field("reason").is_some_and(|x| x.contains("not serving"))));
    assert!(last_copy_on_n4(&r) > at("1h7m"));
}

#[test]
fn a_clock_jumping_back_two_hours_moves_only_that_node_and_is_survived() {
    let r = run_all(
        &scenario("[[step]]\nat = \"1h5m\"\ndo = \"clock_jump\"\nnode = \"n2\"\nby = \"-2h\""),
        1,
    );
    passes(&r);
    let jump = r
        .trace
        .events()
        .find(|e| e.name() == "fault_injected" && e.field("kind") == Some("clock_jump"))
        .expect("jumped");
    assert_eq!(jump.field("offset_ms"), Some("-7200000"));
    assert_eq!(jump.field("by"), Some("-2h"));
}

#[test]
fn mark_available_outage_holds_the_new_replica_initializing_until_it_ends() {
    let r = run_all(
        &scenario("[[step]]\nat = \"1h5m\"\ndo = \"mark_available_fails\"\nfor = \"10m\""),
        1,
    );
    passes(&r);
    assert!(fired(&r, "mark_available_fail") > 1);
    let available = r
        .trace
        .events()
        .filter(|e| e.name() == "shard_marked_available")
        .map(|e| e.time)
        .min()
        .expect("marked available");
    assert!(available >= at("1h15m"));
}

const CORRUPT_N1: &str =
    "[[step]]\nat = \"1h4m\"\ndo = \"corrupt_file\"\nnode = \"n1\"\ntable = \"trips\"\nshard = 0";

/// Whether n4 copied `trips/0` from n1 (the corrupted replica).
fn copied_from_n1(r: &Report) -> bool {
    r.trace.events().any(|e| {
        e.name() == "peer_copy_finished"
            && e.field("table") == Some("trips")
            && e.field("shard") == Some("0")
            && e.field("source") == Some("n1")
    })
}

#[test]
fn with_checksums_a_corrupted_source_fails_the_copy_and_the_next_source_serves_it() {
    let s = scenario(&format!("[faults.disk]\nchecksums = true\n{CORRUPT_N1}"));
    let mut met = 0;
    for seed in 1..=4 {
        let r = run_all(&s, seed);
        passes(&r);
        assert_eq!(fired(&r, "corruption"), 1);
        assert!(
            !copied_from_n1(&r),
            "seed {seed} copied the corrupted replica"
        );
        met += usize::from(
            r.trace
                .events()
                .any(|e| e.name() == "checksum_mismatch_found"),
        );
    }
    assert!(met > 0, "no copy ever met the corrupted file");
}

#[test]
fn without_checksums_a_copied_corruption_is_reported_by_the_oracle() {
    let s = scenario(CORRUPT_N1);
    let mut lost = 0;
    for seed in 1..=4 {
        let r = run_all(&s, seed);
        if !copied_from_n1(&r) {
            passes(&r);
            continue;
        }
        match &r.outcome {
            Outcome::Violation(v) if v.kind.is_safety() => {
                assert_eq!(v.node.map(|n| n.0), Some(4), "{v}");
                assert!(v.detail.contains("WrongValue"), "{v}");
                lost += 1;
            }
            other => panic!("seed {seed}: expected the damage reported, got {other}"),
        }
    }
    assert!(lost > 0, "no seed copied from the corrupted replica");
}

#[test]
fn corrupting_a_table_shard_with_no_stored_file_is_refused_and_traced() {
    let r = run_all(
        &scenario(
            "[[step]]\nat = \"1m\"\ndo = \"corrupt_file\"\nnode = \"n1\"\ntable = \"trips\"\nshard = 0",
        ),
        1,
    );
    passes(&r);
    assert_eq!(fired(&r, "corruption"), 0);
    assert_eq!(
        refused(&r, "corruption").collect::<Vec<_>>(),
        ["no stored data file to corrupt"]
    );
}

#[test]
fn heal_all_stops_random_faults_at_once() {
    let r = run_all(
        &scenario(
            "[faults.net]\ndrop = { num = 1, den = 2 }\n\
             [[step]]\nat = \"1h20m\"\ndo = \"heal_all\"",
        ),
        1,
    );
    passes(&r);
    assert!(fired(&r, "net_drop") > 0);
    let healed = at("1h20m");
    assert!(
        r.trace
            .events()
            .filter(|e| e.name() == "fault_injected")
            .all(|e| e.time <= healed)
    );
}

#[test]
fn fault_steps_round_trip_through_the_scenario_format() {
    let s = scenario(
        "[[step]]\nat = \"1h\"\ndo = \"partition\"\nnodes = [\"n1\"]\nfrom = [\"n2\"]\noneway = true\n\
         [[step]]\nat = \"1h1m\"\ndo = \"clock_jump\"\nnode = \"n2\"\nby = \"-2h\"\n\
         [[step]]\nat = \"1h2m\"\ndo = \"unhealthy\"\nnode = \"n3\"\nfor = \"30s\"\n\
         [[step]]\nat = \"1h3m\"\ndo = \"heal_all\"\n\
         [faults.net]\ndrop = { num = 1, den = 9 }",
    );
    let text = toml::to_string(&s).unwrap();
    let again = Scenario::parse(Path::new("again.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let steps = |s: &Scenario| {
        s.steps
            .iter()
            .map(|st| st.get_ref().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(steps(&again), steps(&s));
    assert_eq!(again.faults, s.faults);
    assert_eq!(s.steps[1].get_ref().at, Duration::from_secs(3600));
}

#[test]
fn bad_fault_steps_and_knobs_are_reported_with_file_line_and_field() {
    let text = |extra: &str| format!("{}\n{extra}\n", common::BASE);
    let err = |extra: &str| {
        Scenario::parse(Path::new("f.toml"), &text(extra))
            .unwrap_err()
            .to_string()
    };
    let line_of = |extra: &str, start: &str| {
        text(extra)
            .lines()
            .position(|l| l.starts_with(start))
            .map_or(0, |i| i + 1)
    };
    let bad_node = "[[step]]\nat = \"1m\"\ndo = \"partition\"\nnodes = [\"n9\"]";
    assert_eq!(
        err(bad_node),
        format!(
            "f.toml:{}: field `nodes`: n9 is not a node of this scenario (n1..n4)",
            line_of(bad_node, "nodes = [")
        )
    );
    assert!(
        err("[[step]]\nat = \"1m\"\ndo = \"clock_jump\"\nnode = \"n1\"\nby = \"-2 hours\"")
            .contains("is not a duration")
    );
    assert!(err("[[step]]\nat = \"1m\"\ndo = \"heal\"\nnode = \"n1\"").contains("unknown field"));
    let bad_ratio = "[faults.net]\ndrop = { num = 3, den = 2 }";
    assert_eq!(
        err(bad_ratio),
        format!(
            "f.toml:{}: field `drop`: in [faults.net]: 3/2 is not a probability (need den > 0 and num <= den)",
            line_of(bad_ratio, "drop")
        )
    );
    assert!(err("[faults.net]\ndropp = { num = 1, den = 2 }").contains("unknown field `dropp`"));
}
