//! BUGGIFY: points fire for some seeds and not others, the same way for the
//! same seed, never when disabled, and the code survives them.

mod support;

use support::{assert_pass, faults, replace_node, run_all};

fn seeds() -> std::ops::Range<u64> {
    1..9
}

#[test]
fn buggify_fires_for_some_seeds_and_not_others() {
    let scenario = replace_node("1h15m", "buggify = true", "");
    let fired: Vec<usize> = seeds()
        .map(|seed| faults(&run_all(&scenario, seed), "buggify").len())
        .collect();
    assert!(fired.iter().any(|n| *n > 0), "never fired: {fired:?}");
    assert!(fired.contains(&0), "fired for every seed: {fired:?}");
}

#[test]
fn buggify_is_deterministic_for_a_seed() {
    let scenario = replace_node("1h15m", "buggify = true", "");
    let seed = seeds()
        .find(|s| !faults(&run_all(&scenario, *s), "buggify").is_empty())
        .expect("some seed fires");
    let a = run_all(&scenario, seed);
    let b = run_all(&scenario, seed);
    assert_eq!(a.trace.hash(), b.trace.hash());
    let points = |r: &bootsim::Report| -> Vec<String> {
        faults(r, "buggify").iter().map(|e| e.to_string()).collect()
    };
    assert_eq!(points(&a), points(&b));
}

#[test]
fn buggify_never_fires_when_disabled() {
    for head in ["", "buggify = false", "[buggify]\nenabled = false"] {
        let scenario = replace_node("1h15m", head, "");
        for seed in seeds() {
            let report = run_all(&scenario, seed);
            assert!(
                faults(&report, "buggify").is_empty(),
                "{head:?} seed {seed}"
            );
            assert!(
                report.trace.events().all(|e| e.target != "sim::buggify"),
                "{head:?} seed {seed}"
            );
        }
    }
}

#[test]
fn replace_node_survives_buggify_at_high_odds() {
    let scenario = replace_node(
        "1h15m",
        "[buggify]\nenabled = true\nactivate = { num = 1, den = 1 }\nfire = { num = 1, den = 8 }",
        "",
    );
    for seed in seeds() {
        let report = run_all(&scenario, seed);
        assert!(!faults(&report, "buggify").is_empty(), "seed {seed}");
        assert_pass(&report);
    }
}
