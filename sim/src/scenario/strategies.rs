//! proptest strategies that generate valid scenarios (feature `proptest`):
//! cluster sizes, tables, a workload, a sequence of placement changes and
//! operator steps, and a random fault plan with a liveness phase.
//!
//! A generated scenario is rendered as TOML and parsed by the one scenario
//! parser, so it is valid by the same rules as a hand-written file, and a
//! failing case prints as a file one can save and hand to `bootsim replay`
//! or `bootsim shrink`. proptest shrinks the *parameters* (fewer nodes,
//! steps, faults); [`crate::tools::shrink::shrink`] then minimises the failing
//! scenario itself (see `tests/properties.rs`).

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;

use crate::scenario::format::Scenario;

/// The parameters of a generated scenario.
#[derive(Clone, Debug)]
pub struct ScenarioParams {
    /// Hosts in the initial placement.
    pub nodes: u32,
    /// Spare hosts for add and replace steps.
    pub spare_nodes: u32,
    /// Replicas per shard.
    pub replicas: usize,
    /// Shards per table.
    pub shards: u32,
    /// Columns of the fact table (`None`: no fact table).
    pub fact_columns: Option<u32>,
    /// Columns of the dimension table (`None`: no dimension table).
    pub dimension_columns: Option<u32>,
    /// Fact rows per second.
    pub rows_per_second: u32,
    /// Operator steps: (minute, action).
    pub steps: Vec<(u32, StepParam)>,
    /// Random faults: per-mille rates of message drop, stream cut and
    /// per-tick partition.
    pub faults: Option<(u32, u32, u32)>,
}

/// An operator step, by node index (resolved against the cluster).
#[derive(Clone, Debug)]
pub enum StepParam {
    /// The next spare joins.
    AddSpare,
    /// The placed host of this index leaves.
    RemoveNode(u32),
    /// The placed host of this index is replaced by the next spare.
    ReplaceWithSpare(u32),
    /// One more replica per shard.
    RaiseReplicas,
    /// The host of this index is asked for a bootstrap retry.
    Retry(u32),
}

/// A step of a generated timeline.
pub fn step() -> impl Strategy<Value = StepParam> {
    prop_oneof![
        Just(StepParam::AddSpare),
        (0u32..4).prop_map(StepParam::RemoveNode),
        (0u32..4).prop_map(StepParam::ReplaceWithSpare),
        Just(StepParam::RaiseReplicas),
        (0u32..5).prop_map(StepParam::Retry),
    ]
}

/// Parameters of a small cluster: 2..=4 nodes, 0..=1 spare, 1..=3
/// replicas, 1..=4 shards, a fact and/or a dimension table, 0..=3 steps in
/// the first 30 minutes, and random faults half the time.
pub fn params() -> impl Strategy<Value = ScenarioParams> {
    (
        2u32..=4,
        0u32..=1,
        1usize..=3,
        1u32..=4,
        prop::option::of(1u32..=3),
        prop::option::of(1u32..=3),
        0u32..=40,
        prop::collection::vec((1u32..=30, step()), 0..=3),
        prop::option::of((0u32..=20, 0u32..=5, 0u32..=20)),
    )
        .prop_map(
            |(nodes, spare_nodes, replicas, shards, fact, dim, rows, mut steps, faults)| {
                steps.sort_by_key(|(m, _)| *m);
                ScenarioParams {
                    nodes,
                    spare_nodes,
                    replicas: replicas.min(nodes as usize),
                    shards,
                    fact_columns: fact.or(if dim.is_none() { Some(2) } else { None }),
                    dimension_columns: dim,
                    rows_per_second: rows,
                    steps,
                    faults,
                }
            },
        )
}

impl ScenarioParams {
    /// The scenario as TOML text: 23:50 start (so copies cross midnight),
    /// 60 minutes; with faults, a liveness phase heals them at 40 minutes
    /// and the cluster must converge within 20.
    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "name = \"generated\"\nduration = \"1h\"");
        let _ = writeln!(
            t,
            "\n[cluster]\nnodes = {}\nspare_nodes = {}\nreplicas = {}\nshards = {}\nstart_time = \"23h50m\"",
            self.nodes, self.spare_nodes, self.replicas, self.shards
        );
        if let Some(c) = self.fact_columns {
            let _ = writeln!(
                t,
                "\n[[table]]\nname = \"trips\"\nkind = \"fact\"\nretention_days = 3\npreloading_days = 1\ncolumns = {c}"
            );
        }
        if let Some(c) = self.dimension_columns {
            let _ = writeln!(
                t,
                "\n[[table]]\nname = \"cities\"\nkind = \"dimension\"\ncolumns = {c}"
            );
        }
        let _ = writeln!(
            t,
            "\n[workload]\nrows_per_second = {}",
            self.rows_per_second
        );
        if let Some((drop, cut, partition)) = self.faults {
            let _ = writeln!(
                t,
                "\n[faults.net]\ndrop = {{ num = {drop}, den = 1000 }}\nstream_cut = {{ num = {cut}, den = 1000 }}\npartition = {{ num = {partition}, den = 1000 }}\npartition_max = \"30s\"\n\n[liveness]\nheal_at = \"40m\"\nwithin = \"20m\""
            );
        }
        let (nodes, all) = (self.nodes, self.nodes + self.spare_nodes);
        let mut spare = nodes + 1;
        let mut replicas = self.replicas;
        for (minute, s) in &self.steps {
            let at = format!("\n[[step]]\nat = \"{minute}m\"");
            match s {
                StepParam::AddSpare if spare <= all => {
                    let _ = writeln!(t, "{at}\ndo = \"add_node\"\nnode = \"n{spare}\"");
                    spare += 1;
                }
                StepParam::ReplaceWithSpare(i) if spare <= all => {
                    let old = 1 + i % nodes;
                    let _ = writeln!(
                        t,
                        "{at}\ndo = \"replace_node\"\nold = \"n{old}\"\nnew = \"n{spare}\""
                    );
                    spare += 1;
                }
                StepParam::RemoveNode(i) => {
                    let _ = writeln!(
                        t,
                        "{at}\ndo = \"remove_node\"\nnode = \"n{}\"",
                        1 + i % nodes
                    );
                }
                StepParam::RaiseReplicas if replicas < nodes as usize => {
                    replicas += 1;
                    let _ = writeln!(t, "{at}\ndo = \"raise_replicas\"\nreplicas = {replicas}");
                }
                StepParam::Retry(i) => {
                    let _ = writeln!(t, "{at}\ndo = \"retry\"\nnode = \"n{}\"", 1 + i % all);
                }
                _ => {}
            }
        }
        t
    }

    /// The parsed scenario (`None` if the parser refuses it, which the
    /// strategy then skips).
    pub fn scenario(&self) -> Option<Scenario> {
        Scenario::parse(Path::new("generated.toml"), &self.to_toml()).ok()
    }
}

/// Valid generated scenarios.
pub fn scenario() -> impl Strategy<Value = Scenario> {
    params().prop_filter_map("the scenario parser refused it", |p| p.scenario())
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    #[test]
    fn generated_scenarios_parse() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..50 {
            let p = params().new_tree(&mut runner).unwrap().current();
            let text = p.to_toml();
            Scenario::parse(Path::new("g.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }
}
