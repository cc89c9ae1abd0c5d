//! The oracle: what must always hold (docs/MODEL.md §7), checked while the run goes
//! (from the trace, event by event) and at its end (from the hosts' state
//! against the upstream log, the ground truth).
//!
//! Every violation has a stable name ([`ViolationKind::name`]) that reports,
//! scenario `expect`s, snapshots and the shrinker match on, and says where
//! and when it first held: node, table shard, virtual time, trace index.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use shardboot::placement::Placement;
use shardboot::types::{NodeId, ShardState, TableShardId};

use crate::engine::time::VirtualTime;
use crate::engine::trace::TraceEvent;

mod end_state;
mod events;
mod hosts;
pub mod instant;

pub use end_state::jobs_behind;
pub use end_state::{EndState, ReplicaState};
use end_state::{check_rows, stray_table_shard};
use events::{CopyProgress, ShardEvent, Tracked, event_shard, parse_hosts, parse_node};
pub use hosts::HostState;

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
    /// The needs-peer-copy flag was cleared before every vector party of the
    /// copy was written and synced.
    PeerCopyFlagClearedEarly,
    /// A replica was marked `Available` while one of its fact table shards
    /// or dimension tables was not `Bootstrapped` (or still owed its copy).
    PrematureAvailable,
    /// A shard with data had no `Available`/`Leaving` replica holding it.
    NoReplicaHoldsData,
    /// A file was deleted while a copy session that listed it was open.
    FileDeletedUnderSession,
    /// A source kept a live session open that no bootstrap used.
    LeakedSession,
    /// An archived batch holds a day the archiving cutoff it was written at
    /// had not passed.
    ArchiveLayout,
    /// A bootstrapped table shard's reported progress (what operators read)
    /// says otherwise.
    BootstrapDetails,
    /// After the heal, a fact replica's background jobs did not catch up.
    JobsStalled,
    /// A host that assigned the final placement does not know its hosts, or
    /// keeps one's connection closed for good.
    PeerConnections,
    /// Liveness: the cluster did not converge by the end of the run.
    Liveness,
}

impl ViolationKind {
    /// Every invariant, in the order reports list them.
    pub const ALL: [ViolationKind; 15] = [
        ViolationKind::DataLoss,
        ViolationKind::PhantomData,
        ViolationKind::BootstrapState,
        ViolationKind::ConcurrentBootstrap,
        ViolationKind::BadSource,
        ViolationKind::PeerCopyFlagClearedEarly,
        ViolationKind::PrematureAvailable,
        ViolationKind::NoReplicaHoldsData,
        ViolationKind::FileDeletedUnderSession,
        ViolationKind::LeakedSession,
        ViolationKind::ArchiveLayout,
        ViolationKind::BootstrapDetails,
        ViolationKind::JobsStalled,
        ViolationKind::PeerConnections,
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
            ViolationKind::PeerCopyFlagClearedEarly => "peer-copy-flag-cleared-early",
            ViolationKind::PrematureAvailable => "premature-available",
            ViolationKind::NoReplicaHoldsData => "no-replica-holds-data",
            ViolationKind::FileDeletedUnderSession => "file-deleted-under-session",
            ViolationKind::LeakedSession => "leaked-session",
            ViolationKind::ArchiveLayout => "archive-layout",
            ViolationKind::BootstrapDetails => "bootstrap-details",
            ViolationKind::JobsStalled => "jobs-stalled",
            ViolationKind::PeerConnections => "peer-connections",
            ViolationKind::Liveness => "liveness",
        }
    }

    /// One line on what the invariant checks and from which state
    /// (`bootsim invariants`).
    pub fn description(self) -> &'static str {
        match self {
            ViolationKind::DataLoss => {
                "every replica's rows on its disk and in memory include the upstream log's up to its commit offset"
            }
            ViolationKind::PhantomData => {
                "no replica holds a row the upstream log does not have, or another value for it"
            }
            ViolationKind::BootstrapState => {
                "a table shard's bootstrap goes only NotStarted -> Bootstrapping -> Bootstrapped or NotStarted"
            }
            ViolationKind::ConcurrentBootstrap => "no table shard runs two bootstraps at once",
            ViolationKind::BadSource => {
                "a copy source is never this host, an Initializing replica, or a host outside the bootstrap's placement snapshot"
            }
            ViolationKind::PeerCopyFlagClearedEarly => {
                "needs-peer-copy is cleared only once every vector party of the copy is written and synced"
            }
            ViolationKind::PrematureAvailable => {
                "when a replica is marked Available, the node holds every fact and dimension table shard of it Bootstrapped, no copy owed"
            }
            ViolationKind::NoReplicaHoldsData => {
                "a fact table shard whose rows a serving replica held always has an Available or Leaving replica with rows on disk"
            }
            ViolationKind::FileDeletedUnderSession => {
                "no file is deleted while a session the source's server holds open was told about it"
            }
            ViolationKind::LeakedSession => {
                "at the end, no source still holds a session its client knew of (a keep-alive stream bound it) once that client is not copying the table shard"
            }
            ViolationKind::ArchiveLayout => {
                "every archive batch in a fact replica's durable metadata is of a day before the archiving cutoff it was written at (its version)"
            }
            ViolationKind::BootstrapDetails => {
                "at the end, every Bootstrapped table shard reports stage finished, stamped by its host's clock within the run, and no vector party still to copy"
            }
            ViolationKind::JobsStalled => {
                "runs with a liveness phase: once converged, every fact replica's durable cutoff reaches today - lag and its archive keeps no day beyond retention, within one purge and one archiving interval"
            }
            ViolationKind::PeerConnections => {
                "at the end, a host that assigned the final placement has one peer slot per host it places, none of them closed"
            }
            ViolationKind::Liveness => {
                "after the last fault heals every assigned replica becomes Available and every table shard Bootstrapped; a host that assigned the final placement holds no table shard it does not place there; no bootstrap request waits with no bootstrap running"
            }
        }
    }

    /// The kind with this stable name.
    pub fn from_name(name: &str) -> Option<ViolationKind> {
        ViolationKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Safety ("never") as opposed to liveness ("eventually").
    pub fn is_safety(self) -> bool {
        !matches!(self, ViolationKind::Liveness | ViolationKind::JobsStalled)
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

/// The oracle of one run.
#[derive(Default)]
pub struct Oracle {
    states: BTreeMap<(NodeId, TableShardId), Tracked>,
    copies: BTreeMap<(NodeId, TableShardId), CopyProgress>,
    /// The last bootstrap error per table shard (for liveness reports).
    last_errors: BTreeMap<(NodeId, TableShardId), String>,
    /// Every published placement, by version (to check copy sources against
    /// the snapshot a bootstrap used).
    placements: BTreeMap<u64, Placement>,
    violation: Option<Violation>,
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

    /// A node crashed or restarted: every table shard starts NotStarted.
    fn node_restarted(&mut self, node: NodeId) {
        self.states.retain(|(n, _), _| *n != node);
        self.copies.retain(|(n, _), _| *n != node);
    }

    /// The last bootstrap error of a table shard, if it failed.
    pub fn last_error(&self, node: NodeId, shard: &TableShardId) -> Option<&str> {
        self.last_errors
            .get(&(node, shard.clone()))
            .map(String::as_str)
    }

    /// Check one trace event (continuous safety checks).
    pub fn observe(&mut self, ev: &TraceEvent) {
        match ev.name() {
            // Probes in the world report what they saw at once, as events.
            "invariant_violated" => return self.probe_report(ev),
            "node_restarted" | "node_crashed" => {
                if let Some(n) = ev.field("node").and_then(parse_node) {
                    self.node_restarted(n);
                }
                return;
            }
            _ => {}
        }
        // Every other event but these per-shard ones (most events are
        // `records_ingested`) is not checked: leave before parsing its shard.
        let Some(kind) = ShardEvent::from_name(ev.name()) else {
            return;
        };
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
        match kind {
            ShardEvent::BootstrapStarted => {
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
            ShardEvent::BootstrapFinished | ShardEvent::BootstrapFailed => {
                if let Some(e) = ev.field("error") {
                    self.last_errors.insert(key.clone(), e.to_string());
                }
                if state != Tracked::Bootstrapping {
                    self.report(violation(
                        ViolationKind::BootstrapState,
                        format!("{} without a running bootstrap", ev.name()),
                    ));
                }
                let next = if kind == ShardEvent::BootstrapFinished {
                    Tracked::Bootstrapped
                } else {
                    Tracked::NotStarted
                };
                self.states.insert(key, next);
            }
            ShardEvent::TableShardRemoved => {
                self.states.remove(&key);
                self.copies.remove(&key);
            }
            ShardEvent::CopySourcesChosen => self.check_sources(ev, node, &shard, violation),
            ShardEvent::PeerMetadataFetched => {
                let planned = ev
                    .field("vector_parties")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                self.copies.insert(
                    key,
                    CopyProgress {
                        planned,
                        done: BTreeSet::new(),
                    },
                );
            }
            ShardEvent::VectorPartyCopied => {
                if let (Some(b), Some(c)) = (ev.field("batch"), ev.field("column")) {
                    let progress = self.copies.entry(key).or_default();
                    progress.done.insert((b.to_string(), c.to_string()));
                }
            }
            ShardEvent::PeerCopyFlagCleared => {
                // A skipped copy (no source) plans nothing and copies nothing.
                let progress = self.copies.remove(&key).unwrap_or_default();
                if progress.done.len() < progress.planned {
                    self.report(violation(
                        ViolationKind::PeerCopyFlagClearedEarly,
                        format!(
                            "needs-peer-copy cleared with {} of {} vector parties written",
                            progress.done.len(),
                            progress.planned
                        ),
                    ));
                }
            }
        }
    }

    /// An `invariant_violated` event from a probe in the world.
    fn probe_report(&mut self, ev: &TraceEvent) {
        let Some(kind) = ev.field("violation").and_then(ViolationKind::from_name) else {
            return;
        };
        self.report(Violation {
            kind,
            node: ev.node.or_else(|| ev.field("node").and_then(parse_node)),
            shard: event_shard(ev),
            at: ev.time,
            trace_index: Some(ev.index),
            detail: ev.field("detail").unwrap_or_default().to_string(),
        });
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
        // A host's broken bookkeeping first: it is the cause a replica still
        // Initializing at the end is often the symptom of.
        if let Some(v) = hosts::check_hosts(end.placement, &end.hosts, end.at) {
            self.report(v);
        }
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
        let assigned: BTreeSet<NodeId> = end
            .hosts
            .iter()
            .filter(|h| h.assigned)
            .map(|h| h.node)
            .collect();
        if let Some(v) = stray_table_shard(end.placement, &assigned, &end.replicas, end.at) {
            self.report(v);
        }
        for replica in &end.replicas {
            if let Some(v) = check_rows(replica, end.upstream, end.at) {
                self.report(v);
            }
        }
    }
}

#[cfg(test)]
mod tests;
