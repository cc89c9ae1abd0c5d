//! The shrinker keeps a quirk failure the quirk's doing: shrinking a quirk
//! regression must not drift to another failure of the fixed code that
//! shows the same violation (and drop the quirk on the way).

use std::path::Path;

use bootsim::Scenario;
use bootsim::shrink;
use bootsim::{Outcome, RunOptions, run};
use shardboot::quirks::Quirk;

#[test]
fn a_quirk_failure_shrinks_to_one_that_still_passes_with_the_quirk_off() {
    // Q11's regression: dropping a node (n5 → 2 hosts) once made it a
    // quirk-free liveness failure (a raise to 2 replicas with a Leaving one
    // left on a 2-host cluster) within 42 runs. It is reported by its cause
    // now (n4's connection to n5 closed: peer-connections), and the shrunk
    // failure must still be Q11's.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/regressions/q11-closes-the-wrong-peer.toml");
    let input = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let shrunk = shrink(&input, 60, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shrunk.violation.kind.name(), "peer-connections");
    let mut fixed = shrunk.scenario.clone();
    assert!(fixed.quirk_set().on(Quirk::Q11), "{}", shrunk.after);
    fixed.switch_off(Quirk::Q11);
    let seed = shrunk.seed;
    let off = run(
        &fixed,
        RunOptions {
            scheduler: shrunk.scheduler,
            ..RunOptions::seed(seed)
        },
    );
    assert_eq!(off.outcome, Outcome::Pass, "{}", shrunk.after);
}
