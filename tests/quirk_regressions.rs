//! The quirk regressions (docs/MODEL.md §6): for every upstream quirk Qn one file
//! `scenarios/regressions/qN-<slug>.toml` with the quirk switched on, found
//! by `bootsim swarm --quirk Qn` and minimised by `bootsim shrink`. Each
//! file must
//! - replay its `expect`ed outcome deterministically (two replays, one
//!   trace hash), and
//! - pass with its quirk switched off, so the violation is the quirk's
//!   doing and not the scenario's.
//!
//! A quirk that cannot break anything in the model has a file that
//! expects `pass` and says why in its header; its swarm test lives in
//! `tests/quirk_cannot_fail.rs`.
//!
//! The files are found by name, so a new `q*-*.toml` joins the suite by
//! being there, and every quirk Q1..Q14 must have exactly one; the insta
//! suite (`tests/regressions.rs`) snapshots them too.

use std::path::{Path, PathBuf};

use bootsim::Outcome;
use bootsim::Scenario;
use bootsim::replay;
use shardboot::quirks::Quirk;

/// `scenarios/regressions`.
fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions")
}

/// The quirk a regression file is for, from its name: `q5-...toml` → Q5;
/// `None` for a file that is not a quirk regression. A `q...` name that
/// does not name a quirk fails the test.
fn quirk_of(path: &Path) -> Option<Quirk> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".toml")?;
    let (number, _slug) = stem.split_once('-')?;
    let digits = number.strip_prefix('q')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        format!("Q{digits}")
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

/// Every quirk regression file, by file name.
fn quirk_files() -> Vec<(Quirk, PathBuf)> {
    let dir = regressions_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<(Quirk, PathBuf)> = entries
        .map(|e| e.expect("directory entry").path())
        .filter_map(|p| quirk_of(&p).map(|q| (q, p)))
        .collect();
    files.sort_by(|a, b| a.1.cmp(&b.1));
    files
}

/// What is wrong with one quirk regression file, if anything.
fn check(quirk: Quirk, path: &Path) -> Result<(), String> {
    let scenario = Scenario::load(path).map_err(|e| e.to_string())?;
    if !scenario.quirk_set().on(quirk) {
        return Err(format!("{quirk} is not switched on in the file"));
    }
    let first = replay(&scenario, 0);
    if !first.outcome_matches(&scenario) {
        return Err(format!(
            "expected {}, got {}",
            scenario.expect, first.report.outcome
        ));
    }
    let again = replay(&scenario, 0);
    let (h1, h2) = (first.report.trace.hash(), again.report.trace.hash());
    if h1 != h2 {
        return Err(format!("two replays, two trace hashes: {h1} and {h2}"));
    }
    let mut fixed = scenario;
    fixed.switch_off(quirk);
    let off = replay(&fixed, 0);
    if off.report.outcome != Outcome::Pass {
        return Err(format!(
            "with {quirk} off it still fails: {}",
            off.report.outcome
        ));
    }
    Ok(())
}

#[test]
fn every_quirk_regression_replays_its_violation_and_passes_with_the_quirk_off() {
    let files = quirk_files();
    assert!(!files.is_empty(), "no q*-*.toml in scenarios/regressions");
    let wrong: Vec<String> = files
        .iter()
        .filter_map(|(q, p)| check(*q, p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_quirk_has_exactly_one_regression_file() {
    let files = quirk_files();
    let wrong: Vec<String> = Quirk::ALL
        .into_iter()
        .filter_map(|q| {
            let n = files.iter().filter(|(f, _)| *f == q).count();
            (n != 1).then(|| format!("{q}: {n} files"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join(", "));
}

#[test]
fn file_names_give_the_quirk() {
    let q = |s: &str| quirk_of(Path::new(s));
    assert_eq!(
        q("scenarios/regressions/q5-shared-cell.toml"),
        Some(Quirk::Q5)
    );
    assert_eq!(q("q14-no-retry.toml"), Some(Quirk::Q14));
    assert_eq!(q("planted-empty-copied-column.toml"), None);
    assert_eq!(q("quiet-node.toml"), None);
    assert_eq!(q("q5-shared-cell.txt"), None);
}
