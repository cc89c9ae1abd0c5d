//! A stable summary of a run's trace, for snapshots: per node, the stages
//! its bootstrap reached, the copy sources it chose, the faults that hit
//! it and the final state of each of its table shards; the coverage
//! probes the run reached; and the outcome.
//!
//! Deliberately left out: times, counts of records and messages, session
//! ids — anything that shifts with an unrelated change. What is left
//! changes when the story of the run changes (a node no longer copies, picks
//! another source, ends in another state), which is what a regression
//! snapshot should catch.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::engine::trace::TraceEvent;
use crate::harness::run::Report;

/// Event names that mark a stage of a node's life or bootstrap.
const STAGES: &[&str] = &[
    "data_node_started",
    "shard_set_assigned",
    "memstore_bootstrap_started",
    "memstore_bootstrap_finished",
    "bootstrap_started",
    "bootstrap_refused",
    "copy_sources_chosen",
    "peer_copy_started",
    "peer_copy_skipped",
    "peer_copy_finished",
    "peer_copy_failed",
    "copy_source_abandoned",
    "vector_party_copied",
    "vector_party_copy_failed",
    "fact_batches_preloaded",
    "snapshot_loaded",
    "bootstrap_finished",
    "bootstrap_failed",
    "node_bootstrapped",
    "node_bootstrap_failed",
    "node_ready",
    "shard_marked_available",
    "mark_available_failed",
    "table_shard_removed",
];

/// The summary of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    /// `ok`, `violation: data-loss`, `panic`.
    pub outcome: String,
    /// Per node (`n1`, ...), what its bootstrap did.
    pub nodes: BTreeMap<String, NodeSummary>,
    /// Operator steps carried out, in order, and refused ones.
    pub steps: Vec<String>,
    /// Coverage probes reached ([`shardboot::probe`]), in catalogue order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<&'static str>,
}

/// What one node went through.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeSummary {
    /// Stages reached (see `STAGES`), in the order first reached.
    pub stages: Vec<String>,
    /// Copy sources chosen, per table shard (`trips/2`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, BTreeSet<String>>,
    /// Faults injected on this node, by kind, with how often.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub faults: BTreeMap<String, u64>,
    /// The last bootstrap state seen of each table shard: `bootstrapping`,
    /// `bootstrapped`, `failed`, `removed`.
    pub table_shards: BTreeMap<String, &'static str>,
}

impl TraceSummary {
    /// Summarise a whole run (recorded with `Keep::All`): its outcome, its
    /// trace and the probes it reached.
    pub fn of_report(report: &Report) -> Self {
        TraceSummary {
            probes: report.trace.probes().names(),
            ..TraceSummary::of(report.outcome.label(), report.trace.events())
        }
    }

    /// Summarise `events` (the whole trace: `Keep::All`) of a run that gave
    /// `outcome` (its label).
    pub fn of<'a>(outcome: String, events: impl IntoIterator<Item = &'a TraceEvent>) -> Self {
        let mut s = TraceSummary {
            outcome,
            ..TraceSummary::default()
        };
        for e in events {
            match e.name() {
                "step_started" => s
                    .steps
                    .push(e.field("action").unwrap_or_default().to_string()),
                "step_refused" => s
                    .steps
                    .push(format!("refused: {}", e.field("error").unwrap_or_default())),
                _ => {}
            }
            let node = match e.node.or_else(|| {
                e.field("node")
                    .and_then(|n| n.strip_prefix('n')?.parse().ok())
                    .map(shardboot::types::NodeId)
            }) {
                Some(n) => n.to_string(),
                None => continue,
            };
            let n = s.nodes.entry(node).or_default();
            let name = e.name();
            if STAGES.contains(&name) && !n.stages.iter().any(|x| x == name) {
                n.stages.push(name.to_string());
            }
            let shard = match (e.field("table"), e.field("shard")) {
                (Some(t), Some(sh)) => Some(format!("{t}/{sh}")),
                _ => None,
            };
            match (name, shard) {
                ("copy_sources_chosen", Some(ts)) => {
                    let sources = e.field("sources").unwrap_or_default().to_string();
                    n.sources.entry(ts).or_default().insert(sources);
                }
                ("bootstrap_started", Some(ts)) => {
                    n.table_shards.insert(ts, "bootstrapping");
                }
                ("bootstrap_finished", Some(ts)) => {
                    n.table_shards.insert(ts, "bootstrapped");
                }
                ("bootstrap_failed", Some(ts)) => {
                    n.table_shards.insert(ts, "failed");
                }
                ("table_shard_removed", Some(ts)) => {
                    n.table_shards.insert(ts, "removed");
                }
                ("fault_injected", _) => {
                    let kind = e.field("kind").unwrap_or("?").to_string();
                    *n.faults.entry(kind).or_default() += 1;
                }
                _ => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use shardboot::types::NodeId;

    use super::*;

    fn ev(node: u32, name: &str, fields: &[(&'static str, &str)]) -> TraceEvent {
        let mut event = TraceEvent::new(name, fields);
        event.node = Some(NodeId(node));
        event
    }

    #[test]
    fn stages_sources_and_final_states_per_node() {
        let events = [
            ev(
                4,
                "bootstrap_started",
                &[("table", "trips"), ("shard", "1")],
            ),
            ev(
                4,
                "copy_sources_chosen",
                &[("table", "trips"), ("shard", "1"), ("sources", "[n2]")],
            ),
            ev(4, "records_ingested", &[("table", "trips"), ("shard", "1")]),
            ev(
                4,
                "bootstrap_finished",
                &[("table", "trips"), ("shard", "1")],
            ),
            ev(
                4,
                "bootstrap_started",
                &[("table", "trips"), ("shard", "1")],
            ),
        ];
        let s = TraceSummary::of("ok".into(), &events);
        let n4 = &s.nodes["n4"];
        assert_eq!(
            n4.stages,
            [
                "bootstrap_started",
                "copy_sources_chosen",
                "bootstrap_finished"
            ]
        );
        assert_eq!(n4.table_shards["trips/1"], "bootstrapping");
        assert!(n4.sources["trips/1"].contains("[n2]"));
    }
}
