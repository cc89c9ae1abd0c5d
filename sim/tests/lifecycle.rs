//! Node lifecycle faults: a crash and restart, a pause, a restart on an
//! empty disk and one on a copy of another host's disk each fire (counted
//! in the trace) and a replace-node cluster with every quirk off survives
//! them, converging in the liveness window after the last fault. Random
//! node faults from `[faults.node]` fire, replay, and heal.

mod support;

use bootsim::Report;
use support::{assert_pass, count, faults, replace_node, run_all};

/// Faults come a few seconds into n4's copies from n1..n3 (at 55 m, some
/// 15 s long); everything heals at 1h5m and must converge by 1h35m.
const LIVENESS: &str = "[liveness]\nheal_at = \"1h5m\"\nwithin = \"30m\"";

fn with_steps(steps: &str) -> bootsim::Scenario {
    replace_node("1h35m", "", &format!("{steps}\n{LIVENESS}"))
}

fn lifecycle(report: &Report, name: &str, node: &str) -> usize {
    count(report, name, "node", node)
}

const SEEDS: [u64; 4] = [1, 2, 3, 4];

#[test]
fn a_source_that_crashes_mid_copy_restarts_and_replace_node_converges() {
    let scenario = with_steps(
        "[[step]]\nat = \"55m5s\"\ndo = \"crash\"\nnode = \"n2\"\nrestart_after = \"40s\"",
    );
    for seed in SEEDS {
        let report = run_all(&scenario, seed);
        assert_pass(&report);
        assert_eq!(faults(&report, "crash").len(), 1, "seed {seed}");
        assert_eq!(lifecycle(&report, "node_crashed", "n2"), 1, "seed {seed}");
        assert_eq!(lifecycle(&report, "node_restarted", "n2"), 1, "seed {seed}");
        assert_eq!(count(&report, "node_restarted", "disk", "own"), 1);
    }
}

#[test]
fn the_new_node_crashing_mid_copy_copies_again_after_its_restart() {
    let scenario = with_steps(
        "[[step]]\nat = \"55m5s\"\ndo = \"crash\"\nnode = \"n4\"\nrestart_after = \"10s\"",
    );
    for seed in SEEDS {
        let report = run_all(&scenario, seed);
        assert_pass(&report);
        assert_eq!(lifecycle(&report, "node_restarted", "n4"), 1, "seed {seed}");
    }
}

#[test]
fn a_paused_source_is_slow_not_down_and_replace_node_converges() {
    let scenario =
        with_steps("[[step]]\nat = \"55m5s\"\ndo = \"pause\"\nnode = \"n2\"\nfor = \"30s\"");
    for seed in SEEDS {
        let report = run_all(&scenario, seed);
        assert_pass(&report);
        assert_eq!(faults(&report, "pause").len(), 1, "seed {seed}");
        assert_eq!(lifecycle(&report, "node_paused", "n2"), 1);
        assert_eq!(lifecycle(&report, "node_resumed", "n2"), 1);
        assert_eq!(lifecycle(&report, "node_crashed", "n2"), 0);
        let saw_down = report.trace.events().any(|e| {
            e.fields()
                .any(|(_, v)| v.contains("peer n2 unavailable") || v.contains("from n2 broken"))
        });
        assert!(!saw_down, "seed {seed}: a peer saw the paused n2 as down");
    }
}

#[test]
fn a_pause_stops_the_hosts_work_until_it_resumes() {
    let scenario =
        with_steps("[[step]]\nat = \"40m\"\ndo = \"pause\"\nnode = \"n3\"\nfor = \"2m\"");
    let report = run_all(&scenario, 1);
    assert_pass(&report);
    let paused = |e: &&bootsim::TraceEvent| {
        e.node == Some(shardboot::types::NodeId(3))
            && e.time.elapsed() > std::time::Duration::from_secs(40 * 60)
            && e.time.elapsed() < std::time::Duration::from_secs(42 * 60)
    };
    assert_eq!(report.trace.events().filter(paused).count(), 0);
    let after = report
        .trace
        .events()
        .filter(|e| e.node == Some(shardboot::types::NodeId(3)))
        .filter(|e| e.time.elapsed() >= std::time::Duration::from_secs(42 * 60))
        .count();
    assert!(after > 0, "n3 never ran again after its pause");
}

#[test]
fn a_host_restarted_on_an_empty_disk_recovers_and_replace_node_converges() {
    let scenario = with_steps("[[step]]\nat = \"55m5s\"\ndo = \"restart_empty\"\nnode = \"n3\"");
    for seed in SEEDS {
        let report = run_all(&scenario, seed);
        assert_pass(&report);
        assert_eq!(faults(&report, "restart_empty").len(), 1, "seed {seed}");
        assert_eq!(lifecycle(&report, "node_crashed", "n3"), 1);
        assert_eq!(count(&report, "node_restarted", "disk", "empty"), 1);
    }
}

#[test]
fn a_host_restarted_on_a_copy_of_another_disk_recovers_and_replace_node_converges() {
    let scenario = with_steps(
        "[[step]]\nat = \"55m5s\"\ndo = \"restart_with_disk_of\"\nnode = \"n3\"\nfrom = \"n2\"",
    );
    for seed in SEEDS {
        let report = run_all(&scenario, seed);
        assert_pass(&report);
        assert_eq!(
            faults(&report, "restart_with_disk_of").len(),
            1,
            "seed {seed}"
        );
        assert_eq!(count(&report, "node_restarted", "disk", "copy of n2"), 1);
    }
}

#[test]
fn a_crash_of_a_host_that_is_down_is_refused() {
    let scenario = with_steps(
        "[[step]]\nat = \"55m5s\"\ndo = \"crash\"\nnode = \"n2\"\nrestart_after = \"1m\"\n\
         [[step]]\nat = \"55m30s\"\ndo = \"crash\"\nnode = \"n2\"\nrestart_after = \"1s\"\n\
         [[step]]\nat = \"55m40s\"\ndo = \"pause\"\nnode = \"n2\"\nfor = \"1s\"",
    );
    let report = run_all(&scenario, 1);
    assert_pass(&report);
    assert_eq!(faults(&report, "crash").len(), 1);
    assert_eq!(count(&report, "fault_refused", "kind", "crash"), 1);
    assert_eq!(count(&report, "fault_refused", "kind", "pause"), 1);
    let restarted = report
        .trace
        .events()
        .find(|e| e.name() == "node_restarted")
        .expect("n2 restarted");
    assert_eq!(
        restarted.time.elapsed().as_secs(),
        56 * 60 + 5,
        "restart_after of the first crash"
    );
}

/// Random crashes and pauses of every host until the heal.
fn random_faults() -> bootsim::Scenario {
    let faults = "[faults.node]\ncheck_every = \"1m\"\ncrash = { num = 1, den = 10 }\n\
         restart_after_min = \"5s\"\nrestart_after_max = \"1m\"\npause = { num = 1, den = 10 }\n\
         pause_max = \"20s\"";
    replace_node("1h35m", "", &format!("{faults}\n{LIVENESS}"))
}

#[test]
fn random_node_faults_fire_and_the_cluster_converges_after_the_heal() {
    let scenario = random_faults();
    for seed in SEEDS {
        let report = run_all(&scenario, seed);
        assert_pass(&report);
        let fired = faults(&report, "crash").len() + faults(&report, "pause").len();
        assert!(fired > 0, "seed {seed}: no random node fault");
        assert!(
            faults(&report, "crash")
                .iter()
                .chain(faults(&report, "pause").iter())
                .all(|e| e.field("source") == Some("random")
                    && e.time.elapsed() <= std::time::Duration::from_secs(65 * 60)),
            "seed {seed}: a random fault after the heal"
        );
        assert_eq!(
            count(&report, "node_faults_healed", "restarted", "0")
                + count(&report, "node_faults_healed", "restarted", "1"),
            1
        );
    }
}

#[test]
fn random_node_faults_replay_identically_for_a_seed() {
    let scenario = random_faults();
    let a = run_all(&scenario, 7);
    let b = run_all(&scenario, 7);
    assert_eq!(a.trace.hash(), b.trace.hash());
    assert_ne!(a.trace.hash(), run_all(&scenario, 8).trace.hash());
}

#[test]
fn lifecycle_steps_are_validated_with_file_line_and_field() {
    let text = |step: &str| {
        format!(
            "name = \"t\"\nduration = \"1h\"\n[cluster]\nnodes = 2\nreplicas = 1\nshards = 1\n\
             [[step]]\nat = \"1m\"\n{step}\n"
        )
    };
    let err = |step: &str| {
        bootsim::Scenario::parse(std::path::Path::new("s.toml"), &text(step))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        err("do = \"restart_with_disk_of\"\nnode = \"n1\"\nfrom = \"n1\""),
        "s.toml:11: field `from`: a host cannot restart with a copy of its own disk"
    );
    assert_eq!(
        err("do = \"crash\"\nnode = \"n5\"\nrestart_after = \"1m\""),
        "s.toml:10: field `node`: n5 is not a node of this scenario (n1..n2)"
    );
    assert!(err("do = \"crash\"\nnode = \"n1\"").contains("missing field `restart_after`"));
    assert!(err("do = \"pause\"\nnode = \"n1\"\nfor = \"soon\"").contains("not a duration"));
    assert_eq!(err("do = \"pause\"\nnode = \"n1\"\nfor = \"5s\""), "");
}

#[test]
fn a_host_restarted_by_the_heal_is_bootstrapped_before_the_cluster_counts_as_converged() {
    let scenario = with_steps(
        "[[step]]\nat = \"1h4m50s\"\ndo = \"crash\"\nnode = \"n3\"\nrestart_after = \"10m\"",
    );
    let report = run_all(&scenario, 1);
    assert_pass(&report);
    let events: Vec<_> = report.trace.events().collect();
    let restarted = events
        .iter()
        .position(|e| e.name() == "node_restarted")
        .expect("the heal restarted n3");
    let converged = events
        .iter()
        .position(|e| e.name() == "cluster_converged")
        .expect("converged");
    let n3_bootstrapped = events[restarted..converged]
        .iter()
        .filter(|e| e.name() == "bootstrap_finished" && e.node == Some(shardboot::types::NodeId(3)))
        .count();
    assert_eq!(
        n3_bootstrapped, 3,
        "n3's table shards: trips/1, trips/2, cities/0"
    );
}
