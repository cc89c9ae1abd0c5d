//! Shared by the integration tests: load a scenario file of `scenarios/`.

// Each test binary compiles its own copy and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bootsim::Scenario;

/// The path of `scenarios/<file>`.
pub fn scenario_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file)
}

/// Load `scenarios/<file>`, failing the test with the scenario error.
pub fn scenario(file: &str) -> Scenario {
    Scenario::load(&scenario_path(file)).unwrap_or_else(|e| panic!("{e}"))
}
