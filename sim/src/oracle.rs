//! The oracle: what must always hold (SPEC §7), checked while the run goes
//! (from the trace, event by event) and at its end (from the hosts' state
//! against the upstream log, the ground truth).
//!
//! Every violation has a stable name ([`ViolationKind::name`]) that reports,
//! scenario `expect`s, snapshots and the shrinker match on, and says where
//! and when it first held: node, table shard, virtual time, trace index.

use std::collections::BTreeMap;
use std::fmt;

use shardboot::model::TableSchema;
use shardboot::placement::Placement;
use shardboot::store::HeldRows;
use shardboot::types::{Day, NodeId, Offset, ShardId, ShardState, TableKind, TableShardId};

use crate::time::VirtualTime;
use crate::trace::TraceEvent;
use crate::upstream::Upstream;

/// The named invariants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A replica lacks rows the upstream log has.
    DataLoss,
    /// A replica holds rows the upstream log does not have (or wrong ones).
    PhantomData,
    /// A table shard's bootstrap state moved other than NotStarted →
    /// Bootstrapping → {Bootstrapped, NotStarted}.
    BootstrapState,
    /// Two bootstraps of one table shard ran at once.
    ConcurrentBootstrap,
    /// A copy source was this host, an `Initializing` replica, or a host not
    /// in the bootstrap's placement snapshot.
    BadSource,
    /// Liveness: the cluster did not converge by the end of the run.
    Liveness,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 6] = [
        ViolationKind::DataLoss,
        ViolationKind::PhantomData,
        ViolationKind::BootstrapState,
        ViolationKind::ConcurrentBootstrap,
        ViolationKind::BadSource,
        ViolationKind::Liveness,
    ];

    /// The stable name: `data-loss`, `bad-source`, ...
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::DataLoss => "data-loss",
            ViolationKind::PhantomData => "phantom-data",
            ViolationKind::BootstrapState => "bootstrap-state",
            ViolationKind::ConcurrentBootstrap => "concurrent-bootstrap",
            ViolationKind::BadSource => "bad-source",
            ViolationKind::Liveness => "liveness",
        }
    }

    /// Safety ("never") as opposed to liveness ("eventually").
    pub fn is_safety(self) -> bool {
        self != ViolationKind::Liveness
    }
}

/// An invariant that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub node: Option<NodeId>,
    pub shard: Option<TableShardId>,
    pub at: VirtualTime,
    /// Index of the trace event at which it was seen, if one.
    pub trace_index: Option<u64>,
    pub detail: String,
}

/// `data-loss: n4 trips/2 at 01:12:07.301 (trace #1234): ...`
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.kind.name())?;
        if let Some(n) = self.node {
            write!(f, " {n}")?;
        }
        if let Some(s) = &self.shard {
            write!(f, " {s}")?;
        }
        write!(f, " at {}", self.at)?;
        if let Some(i) = self.trace_index {
            write!(f, " (trace #{i})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Bootstrap state of one table shard as the oracle tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracked {
    NotStarted,
    Bootstrapping,
    Bootstrapped,
}

/// The oracle of one run.
#[derive(Default)]
pub struct Oracle {
    states: BTreeMap<(NodeId, TableShardId), Tracked>,
    /// Every published placement, by version (to check copy sources against
    /// the snapshot a bootstrap used).
    placements: BTreeMap<u64, Placement>,
    violation: Option<Violation>,
}

fn event_shard(ev: &TraceEvent) -> Option<TableShardId> {
    let table = ev.field("table")?;
    let shard = ev.field("shard")?.parse().ok()?;
    Some(TableShardId::new(table, ShardId(shard)))
}

/// Parse `[NodeId(2), NodeId(3)]`-style or `[n2, n3]`-style host lists.
fn parse_hosts(s: &str) -> Vec<NodeId> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .map(NodeId)
        .collect()
}

impl Oracle {
    /// The first violation seen, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Record a violation; only the first counts.
    pub fn report(&mut self, v: Violation) {
        if self.violation.is_none() {
            tracing::info!(target: "sim::oracle", violation = v.kind.name(), detail = %v.detail, "violation_detected");
            self.violation = Some(v);
        }
    }

    /// Remember a placement version (the runner calls this as it publishes).
    pub fn placement_published(&mut self, version: u64, placement: Placement) {
        self.placements.insert(version, placement);
    }

    /// A node restarted: every table shard starts NotStarted.
    pub fn node_restarted(&mut self, node: NodeId) {
        self.states.retain(|(n, _), _| *n != node);
    }

    /// Check one trace event (continuous safety checks).
    pub fn observe(&mut self, ev: &TraceEvent) {
        let (Some(node), Some(shard)) = (ev.node, event_shard(ev)) else {
            return;
        };
        let violation = |kind, detail: String| Violation {
            kind,
            node: Some(node),
            shard: Some(shard.clone()),
            at: ev.time,
            trace_index: Some(ev.index),
            detail,
        };
        let key = (node, shard.clone());
        let state = self
            .states
            .get(&key)
            .copied()
            .unwrap_or(Tracked::NotStarted);
        match ev.name.as_str() {
            "bootstrap_started" => {
                if state == Tracked::Bootstrapping {
                    self.report(violation(
                        ViolationKind::ConcurrentBootstrap,
                        "a second bootstrap started while one was running".into(),
                    ));
                } else if state == Tracked::Bootstrapped {
                    self.report(violation(
                        ViolationKind::BootstrapState,
                        "Bootstrapped → Bootstrapping".into(),
                    ));
                }
                self.states.insert(key, Tracked::Bootstrapping);
            }
            "bootstrap_finished" | "bootstrap_failed" => {
                if state != Tracked::Bootstrapping {
                    self.report(violation(
                        ViolationKind::BootstrapState,
                        format!("{} without a running bootstrap", ev.name),
                    ));
                }
                let next = if ev.name == "bootstrap_finished" {
                    Tracked::Bootstrapped
                } else {
                    Tracked::NotStarted
                };
                self.states.insert(key, next);
            }
            "table_shard_removed" => {
                self.states.remove(&key);
            }
            "copy_sources_chosen" => self.check_sources(ev, node, &shard, violation),
            _ => {}
        }
    }

    fn check_sources(
        &mut self,
        ev: &TraceEvent,
        node: NodeId,
        shard: &TableShardId,
        violation: impl Fn(ViolationKind, String) -> Violation,
    ) {
        let sources = ev.field("sources").map(parse_hosts).unwrap_or_default();
        let snapshot = ev
            .field("view")
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|v| self.placements.get(&v));
        for host in sources {
            let problem = if host == node {
                Some("this host itself".to_string())
            } else {
                match snapshot.map(|p| p.state(shard.shard, host)) {
                    Some(None) => Some(format!("{host}, not in the placement snapshot")),
                    Some(Some(ShardState::Initializing)) => {
                        Some(format!("{host}, an Initializing replica"))
                    }
                    _ => None,
                }
            };
            if let Some(p) = problem {
                self.report(violation(
                    ViolationKind::BadSource,
                    format!("copy source {p}"),
                ));
                return;
            }
        }
    }

    /// End of run: every replica the final placement assigns is `Available`
    /// and bootstrapped, and holds exactly the upstream rows.
    pub fn check_end_state(&mut self, end: EndState<'_>) {
        for (shard, replicas) in &end.placement.shards {
            for (node, state) in replicas {
                if *state != ShardState::Available {
                    self.report(Violation {
                        kind: ViolationKind::Liveness,
                        node: Some(*node),
                        shard: None,
                        at: end.at,
                        trace_index: None,
                        detail: format!("shard {shard} is still {state} at the end of the run"),
                    });
                }
            }
        }
        for replica in &end.replicas {
            if let Some(v) = check_rows(replica, end.upstream, end.at) {
                self.report(v);
            }
        }
    }
}

/// One replica at the end of a run.
pub struct ReplicaState {
    pub node: NodeId,
    pub shard: TableShardId,
    pub schema: TableSchema,
    pub bootstrapped: bool,
    pub today: Day,
    pub rows: HeldRows,
}

/// What the end-state check looks at.
pub struct EndState<'a> {
    pub at: VirtualTime,
    pub placement: &'a Placement,
    pub upstream: &'a Upstream,
    pub replicas: Vec<ReplicaState>,
}

/// Compare a replica's rows with the upstream log up to its commit offset.
fn check_rows(r: &ReplicaState, upstream: &Upstream, at: VirtualTime) -> Option<Violation> {
    let violation = |kind, detail: String| Violation {
        kind,
        node: Some(r.node),
        shard: Some(r.shard.clone()),
        at,
        trace_index: None,
        detail,
    };
    if !r.bootstrapped {
        return Some(violation(
            ViolationKind::Liveness,
            "table shard is not bootstrapped at the end of the run".into(),
        ));
    }
    if let Some(d) = r.rows.damaged.first() {
        return Some(violation(
            ViolationKind::DataLoss,
            format!("batch {} column {}: {:?}", d.batch, d.column, d.kind),
        ));
    }
    let records = upstream.records(&r.shard, Offset(0), r.rows.commit_offset);
    let expected: Vec<Offset> = match r.schema.kind {
        TableKind::Fact => records
            .iter()
            .filter(|rec| r.schema.retains(rec.day, r.today))
            .map(|rec| rec.offset)
            .collect(),
        TableKind::Dimension => {
            let latest: BTreeMap<u32, Offset> =
                records.iter().map(|rec| (rec.key, rec.offset)).collect();
            let mut v: Vec<Offset> = latest.into_values().collect();
            v.sort();
            v
        }
    };
    if let Some(missing) = expected
        .iter()
        .find(|o| r.rows.offsets.binary_search(o).is_err())
    {
        let count = expected
            .iter()
            .filter(|o| r.rows.offsets.binary_search(o).is_err())
            .count();
        return Some(violation(
            ViolationKind::DataLoss,
            format!(
                "{count} upstream rows below commit offset {} missing, first offset {missing}",
                r.rows.commit_offset
            ),
        ));
    }
    if let Some(extra) = r
        .rows
        .offsets
        .iter()
        .find(|o| expected.binary_search(o).is_err())
    {
        return Some(violation(
            ViolationKind::PhantomData,
            format!("row at offset {extra} is not an upstream row within retention"),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, node: u32, name: &str, fields: &[(&'static str, &str)]) -> TraceEvent {
        let mut f = vec![("table", "trips".to_string()), ("shard", "1".to_string())];
        f.extend(fields.iter().map(|(k, v)| (*k, v.to_string())));
        TraceEvent {
            index,
            time: VirtualTime::ZERO,
            node: Some(NodeId(node)),
            target: "shardboot::table_shard",
            level: tracing::Level::INFO,
            name: name.into(),
            fields: f,
        }
    }

    #[test]
    fn a_second_concurrent_bootstrap_is_reported() {
        let mut o = Oracle::default();
        o.observe(&ev(0, 1, "bootstrap_started", &[]));
        o.observe(&ev(1, 1, "bootstrap_started", &[]));
        let v = o.violation().unwrap();
        assert_eq!(v.kind, ViolationKind::ConcurrentBootstrap);
        assert_eq!(v.trace_index, Some(1));
    }

    #[test]
    fn finishing_without_starting_is_a_state_violation() {
        let mut o = Oracle::default();
        o.observe(&ev(0, 1, "bootstrap_finished", &[]));
        assert_eq!(o.violation().unwrap().kind, ViolationKind::BootstrapState);
    }

    #[test]
    fn legal_transitions_pass() {
        let mut o = Oracle::default();
        for (i, name) in [
            "bootstrap_started",
            "bootstrap_failed",
            "bootstrap_started",
            "bootstrap_finished",
        ]
        .into_iter()
        .enumerate()
        {
            o.observe(&ev(i as u64, 1, name, &[]));
        }
        assert_eq!(o.violation(), None);
    }

    #[test]
    fn sources_are_checked_against_the_snapshot() {
        let mut p = Placement::default();
        let r = p.shards.entry(ShardId(1)).or_default();
        r.insert(NodeId(1), ShardState::Initializing);
        r.insert(NodeId(2), ShardState::Available);
        r.insert(NodeId(3), ShardState::Initializing);
        let mut o = Oracle::default();
        o.placement_published(4, p);
        o.observe(&ev(
            0,
            1,
            "copy_sources_chosen",
            &[("sources", "[NodeId(2)]"), ("view", "4")],
        ));
        assert_eq!(o.violation(), None);
        o.observe(&ev(
            1,
            1,
            "copy_sources_chosen",
            &[("sources", "[NodeId(2), NodeId(3)]"), ("view", "4")],
        ));
        assert_eq!(o.violation().unwrap().kind, ViolationKind::BadSource);
        let mut o = Oracle::default();
        o.observe(&ev(
            0,
            1,
            "copy_sources_chosen",
            &[("sources", "[NodeId(1)]"), ("view", "4")],
        ));
        assert!(o.violation().unwrap().detail.contains("itself"));
    }
}
