//! bootsim from someone else's crate: this crate has no code of its own,
//! only tests that use bootsim through its public API, as the engineers of
//! another database would from theirs.
//!
//! - `tests/builder.rs`: a simulation built from code with
//!   `Sim::builder()`, and one loaded from a scenario file;
//! - `tests/property.rs`: a proptest drawing scenarios with bootsim's
//!   strategies and checking the oracle on each;
//! - `tests/regressions.rs`: one `#[test]` per scenario file in
//!   `regressions/` — drop a shrunk failure there and it is a test (the
//!   build script lists the folder).
