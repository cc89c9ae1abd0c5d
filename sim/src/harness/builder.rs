//! Scenarios built from code: [`SimBuilder`] (from [`Sim::builder`]) sets
//! the same fields a scenario file has and then goes through the very same
//! parser and validation ([`Scenario::parse`]), so a scenario built in a
//! test and one written in TOML mean the same thing, fail with the same
//! errors and can be saved as a file ([`SimBuilder::to_toml`]).

use std::path::Path;
use std::time::Duration;

use shardboot::quirks::Quirk;
use shardboot::types::NodeId;
use toml::{Table, Value};

use crate::engine::duration;
use crate::harness::sim::Sim;
use crate::scenario::format::{Action, Scenario, ScenarioError, Step};
use crate::world::node_name::NodeName;

/// How errors of a built scenario name their "file".
const BUILT: &str = "<Sim::builder>";

/// A scenario under construction. Every setter mirrors a field of the file
/// format (scenarios/README.md documents each); what is not set takes the
/// format's default. Nothing is checked until [`SimBuilder::scenario`] or
/// [`SimBuilder::build`], which report a bad value as a file would.
///
/// ```
/// use std::time::Duration;
/// use bootsim::Sim;
///
/// let scenario = Sim::builder()
///     .name("two-tables")
///     .nodes(3)
///     .replicas(2)
///     .shards(4)
///     .fact_table("trips")
///     .dimension_table("cities")
///     .duration(Duration::from_secs(600))
///     .scenario()
///     .expect("a valid scenario");
/// assert_eq!(scenario.tables.len(), 2);
/// let report = bootsim::run(&scenario, bootsim::RunOptions::seed(7));
/// assert!(report.outcome.matches(&scenario.expect), "{}", report.outcome.label());
/// ```
#[derive(Clone, Debug)]
pub struct SimBuilder {
    doc: Table,
    tables: Vec<Value>,
    steps: Vec<Step>,
    quirks: Vec<Value>,
    seed: u64,
}

impl Sim {
    /// A scenario from code: see [`SimBuilder`].
    pub fn builder() -> SimBuilder {
        let mut doc = Table::new();
        doc.insert("name".into(), Value::from("built"));
        doc.insert("duration".into(), Value::from("1h"));
        let mut cluster = Table::new();
        cluster.insert("nodes".into(), Value::from(3));
        cluster.insert("replicas".into(), Value::from(2));
        cluster.insert("shards".into(), Value::from(2));
        doc.insert("cluster".into(), Value::Table(cluster));
        SimBuilder {
            doc,
            tables: Vec::new(),
            steps: Vec::new(),
            quirks: Vec::new(),
            seed: 1,
        }
    }
}

impl SimBuilder {
    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.doc.insert(key.into(), value.into());
        self
    }

    fn section(mut self, section: &str, key: &str, value: impl Into<Value>) -> Self {
        let table = self
            .doc
            .entry(section)
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = table {
            t.insert(key.into(), value.into());
        }
        self
    }

    /// The scenario's name (reports and artifacts show it).
    pub fn name(self, name: &str) -> Self {
        self.set("name", name)
    }

    /// How long the run lasts in virtual time (default 1 h).
    pub fn duration(self, d: Duration) -> Self {
        self.set("duration", duration::format(d))
    }

    /// Hosts in the initial placement, `n1..=nN` (default 3).
    pub fn nodes(self, n: u32) -> Self {
        self.section("cluster", "nodes", n)
    }

    /// Running hosts outside the placement, for add and replace steps.
    pub fn spare_nodes(self, n: u32) -> Self {
        self.section("cluster", "spare_nodes", n)
    }

    /// Replicas per shard (default 2).
    pub fn replicas(self, n: u32) -> Self {
        self.section("cluster", "replicas", n)
    }

    /// Shards per table (default 2).
    pub fn shards(self, n: u32) -> Self {
        self.section("cluster", "shards", n)
    }

    /// Start from a brand-new placement (every replica `Initializing`)
    /// instead of an established cluster.
    pub fn new_placement(self) -> Self {
        self.section("cluster", "initial", "new")
    }

    /// A fact table with the format's defaults (all days kept).
    pub fn fact_table(self, name: &str) -> Self {
        self.table(name, "fact", &[])
    }

    /// A fact table keeping `retention_days` and preloading
    /// `preloading_days` into memory at bootstrap.
    pub fn fact_table_kept(self, name: &str, retention_days: u32, preloading_days: u32) -> Self {
        self.table(
            name,
            "fact",
            &[
                ("retention_days", retention_days),
                ("preloading_days", preloading_days),
            ],
        )
    }

    /// A dimension table.
    pub fn dimension_table(self, name: &str) -> Self {
        self.table(name, "dimension", &[])
    }

    fn table(mut self, name: &str, kind: &str, extra: &[(&str, u32)]) -> Self {
        let mut t = Table::new();
        t.insert("name".into(), Value::from(name));
        t.insert("kind".into(), Value::from(kind));
        for (k, v) in extra {
            t.insert((*k).into(), Value::from(*v));
        }
        self.tables.push(Value::Table(t));
        self
    }

    /// Fact rows per second per fact table (the workload).
    pub fn rows_per_second(self, n: u32) -> Self {
        self.section("workload", "rows_per_second", n)
    }

    /// Dimension upserts per second per dimension table.
    pub fn upserts_per_second(self, n: u32) -> Self {
        self.section("workload", "upserts_per_second", n)
    }

    /// Switch an upstream quirk on (docs/MODEL.md §6).
    pub fn quirk(mut self, quirk: Quirk) -> Self {
        self.quirks.push(Value::from(format!("{quirk:?}")));
        self
    }

    /// The run is expected to report this violation (by name, e.g.
    /// `"data-loss"`) instead of passing.
    pub fn expect_violation(mut self, name: &str) -> Self {
        let mut t = Table::new();
        t.insert("violation".into(), Value::from(name));
        self.doc.insert("expect".into(), Value::Table(t));
        self
    }

    /// An operator or fault step at `at` from the start.
    pub fn step(mut self, at: Duration, action: Action) -> Self {
        self.steps.push(Step { at, action });
        self
    }

    /// Shorthand: host `n` joins the placement at `at` (it must be a spare).
    pub fn add_node(self, at: Duration, n: u32) -> Self {
        self.step(at, Action::AddNode { node: node(n) })
    }

    /// Shorthand: host `n` leaves the placement at `at`.
    pub fn remove_node(self, at: Duration, n: u32) -> Self {
        self.step(at, Action::RemoveNode { node: node(n) })
    }

    /// Shorthand: every replica of `old` moves to the spare `new` at `at`.
    pub fn replace_node(self, at: Duration, old: u32, new: u32) -> Self {
        self.step(
            at,
            Action::ReplaceNode {
                old: node(old),
                new: node(new),
            },
        )
    }

    /// The seed [`SimBuilder::build`] uses (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The scenario as a scenario file would say it.
    pub fn to_toml(&self) -> Result<String, ScenarioError> {
        let mut doc = self.doc.clone();
        if !self.quirks.is_empty() {
            doc.insert("quirks".into(), Value::Array(self.quirks.clone()));
        }
        if !self.tables.is_empty() {
            doc.insert("table".into(), Value::Array(self.tables.clone()));
        }
        if !self.steps.is_empty() {
            let steps = self
                .steps
                .iter()
                .map(Value::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(unprintable)?;
            doc.insert("step".into(), Value::Array(steps));
        }
        toml::to_string(&doc).map_err(unprintable)
    }

    /// The validated scenario, or the error a file with these fields gives.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new(BUILT), &self.to_toml()?)
    }

    /// A [`Sim`] of the scenario with the builder's seed, nothing started
    /// yet (start hosts with [`Sim::start_all_nodes`]).
    pub fn build(&self) -> Result<Sim, ScenarioError> {
        Ok(Sim::new(&self.scenario()?, self.seed))
    }
}

/// A value the TOML writer refused (a step it cannot print), reported
/// against the builder as a parse error of its text.
fn unprintable(e: impl std::fmt::Display) -> ScenarioError {
    ScenarioError::Parse {
        file: BUILT.into(),
        line: 1,
        column: 1,
        message: e.to_string(),
    }
}

fn node(n: u32) -> NodeName {
    NodeName(NodeId(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_scenario_reads_back_as_the_file_it_prints() {
        let b = Sim::builder()
            .duration(Duration::from_secs(2 * 3600))
            .nodes(3)
            .spare_nodes(1)
            .shards(4)
            .fact_table_kept("trips", 7, 1)
            .dimension_table("cities")
            .quirk(Quirk::Q5)
            .add_node(Duration::from_secs(65 * 60), 4);
        let built = b.scenario().expect("valid");
        let text = b.to_toml().expect("printable");
        let parsed = Scenario::parse(Path::new("x.toml"), &text).expect("valid file");
        assert_eq!(built.cluster.nodes, 3);
        assert_eq!(built.tables.len(), 2);
        assert_eq!(built.tables[0].retention_days, 7);
        assert_eq!(built.steps.len(), 1);
        assert_eq!(built.quirk_set(), parsed.quirk_set());
        assert_eq!(format!("{:?}", built.steps), format!("{:?}", parsed.steps));
    }

    #[test]
    fn a_bad_value_is_reported_as_a_file_would_report_it() {
        let err = Sim::builder()
            .replicas(5)
            .nodes(2)
            .fact_table("t")
            .scenario();
        let message = err.expect_err("more replicas than hosts").to_string();
        assert!(message.contains(BUILT), "{message}");
    }
}
