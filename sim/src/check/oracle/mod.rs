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
use shardboot::types::{NodeId, SessionId, ShardId, ShardState, TableKind, TableShardId};

use crate::engine::time::VirtualTime;
use crate::engine::trace::TraceEvent;
use crate::world::listings::Listings;

mod end_state;
mod events;

use end_state::check_rows;
pub use end_state::{EndState, ReplicaState};
use events::{
    CopyProgress, ShardEvent, Tracked, event_shard, parse_hosts, parse_node, parse_numbers,
};

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
    /// (or, Q13 off, dimension tables) was not `Bootstrapped`.
    PrematureAvailable,
    /// A shard with data had no `Available`/`Leaving` replica holding it.
    NoReplicaHoldsData,
    /// A file was deleted while a copy session that listed it was open.
    FileDeletedUnderSession,
    /// Liveness: the cluster did not converge by the end of the run.
    Liveness,
}

impl ViolationKind {
    /// Every invariant, in the order reports list them.
    pub const ALL: [ViolationKind; 10] = [
        ViolationKind::DataLoss,
        ViolationKind::PhantomData,
        ViolationKind::BootstrapState,
        ViolationKind::ConcurrentBootstrap,
        ViolationKind::BadSource,
        ViolationKind::PeerCopyFlagClearedEarly,
        ViolationKind::PrematureAvailable,
        ViolationKind::NoReplicaHoldsData,
        ViolationKind::FileDeletedUnderSession,
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
            ViolationKind::Liveness => "liveness",
        }
    }

    /// The kind with this stable name.
    pub fn from_name(name: &str) -> Option<ViolationKind> {
        ViolationKind::ALL.into_iter().find(|k| k.name() == name)
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

/// The oracle of one run.
#[derive(Default)]
pub struct Oracle {
    /// Table kinds by name (which table shards a shard's availability
    /// depends on).
    tables: BTreeMap<String, TableKind>,
    /// Quirk Q13 on: availability does not wait for dimension tables.
    dimensions_exempt: bool,
    /// What each copy session was told (shared with the network).
    listings: Listings,
    /// Open copy sessions per source host: session id → table shard.
    sessions: BTreeMap<(NodeId, String), TableShardId>,
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
    /// The oracle of a run over `tables`, reading session listings from
    /// `listings`; `dimensions_exempt` is quirk Q13.
    pub fn new(
        tables: BTreeMap<String, TableKind>,
        dimensions_exempt: bool,
        listings: Listings,
    ) -> Oracle {
        Oracle {
            tables,
            dimensions_exempt,
            listings,
            ..Oracle::default()
        }
    }

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

    /// A node crashed or restarted: every table shard starts NotStarted,
    /// and the sessions its peer server held died with it.
    fn node_restarted(&mut self, node: NodeId) {
        self.states.retain(|(n, _), _| *n != node);
        self.copies.retain(|(n, _), _| *n != node);
        self.sessions.retain(|(n, _), _| *n != node);
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
            "shards_marked_available" => return self.check_availability(ev),
            "file_deleted" => return self.check_deletion(ev),
            // A session ends when its keep-alive stream ends or when the
            // server sweeps it as expired: from then on every request on it
            // is refused, so its client can read no file of its listing.
            "session_removed" | "session_expired" => {
                if let (Some(n), Some(id)) = (ev.node, ev.field("session")) {
                    self.sessions.remove(&(n, id.to_string()));
                }
                return;
            }
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
            ShardEvent::SessionStarted => {
                if let Some(id) = ev.field("session") {
                    self.sessions.insert((node, id.to_string()), shard.clone());
                }
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

    /// `node` had `shards` marked Available: each must have every fact table
    /// shard (and, Q13 off, every dimension table) Bootstrapped there.
    fn check_availability(&mut self, ev: &TraceEvent) {
        let Some(node) = ev.field("node").and_then(parse_node) else {
            return;
        };
        let shards: Vec<ShardId> = ev
            .field("shards")
            .map(|s| parse_numbers(s).into_iter().map(ShardId).collect())
            .unwrap_or_default();
        for shard in shards {
            let needed = self.tables.iter().filter_map(|(name, kind)| match kind {
                TableKind::Fact => Some(TableShardId::new(name.clone(), shard)),
                TableKind::Dimension if !self.dimensions_exempt => {
                    Some(TableShardId::new(name.clone(), ShardId::DIMENSION))
                }
                TableKind::Dimension => None,
            });
            let missing: Vec<String> = needed
                .filter(|id| self.states.get(&(node, id.clone())) != Some(&Tracked::Bootstrapped))
                .map(|id| id.to_string())
                .collect();
            if !missing.is_empty() {
                self.report(Violation {
                    kind: ViolationKind::PrematureAvailable,
                    node: Some(node),
                    shard: None,
                    at: ev.time,
                    trace_index: Some(ev.index),
                    detail: format!(
                        "shard {shard} marked Available while {} not Bootstrapped",
                        missing.join(", ")
                    ),
                });
                return;
            }
        }
    }

    /// A file was deleted on `ev.node`: no open session there may have been
    /// told about it.
    fn check_deletion(&mut self, ev: &TraceEvent) {
        let (Some(node), Some(file)) = (ev.node, ev.field("file")) else {
            return;
        };
        let holder =
            self.sessions
                .iter()
                .filter(|((n, _), _)| *n == node)
                .find(|((_, id), shard)| {
                    parse_numbers(id).first().is_some_and(|n| {
                        self.listings
                            .listed(node, SessionId(u64::from(*n)), shard, file)
                    })
                });
        if let Some(((_, id), shard)) = holder {
            let v = Violation {
                kind: ViolationKind::FileDeletedUnderSession,
                node: Some(node),
                shard: Some(shard.clone()),
                at: ev.time,
                trace_index: Some(ev.index),
                detail: format!("{file} deleted while session {id}, which listed it, was open"),
            };
            self.report(v);
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

#[cfg(test)]
mod tests;
