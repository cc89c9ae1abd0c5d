//! The oracle's [`Watcher`]: at the instants the world announces
//! ([`crate::world::watch`]) it reads the state an invariant is about — the
//! data node's table shards, the peer server's session table, what the
//! network relayed to each session — and reports what does not hold as an
//! `invariant_violated` event, so the violation gets a trace index like any
//! probe's. It also keeps what the end-of-run session check needs: which
//! sessions lost their client to a crash.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::{Rc, Weak};

use shardboot::model::FileKey;
use shardboot::types::{NodeId, SessionId, ShardId, TableKind, TableShardId};

use crate::check::oracle::instant::{self, Client, HeldShard};
use crate::check::oracle::{Violation, ViolationKind};
use crate::engine::executor;
use crate::world::lifecycle::{Lifecycle, NodeStatus, Nodes};
use crate::world::state::WorldState;
use crate::world::watch::Watcher;

/// The watcher of one run.
pub(super) struct OracleWatch {
    world: Weak<WorldState>,
    nodes: Nodes,
    /// Every table of the scenario, by name.
    tables: BTreeMap<String, TableKind>,
    /// Sessions (source, id) whose client process was killed after they
    /// opened: their client is gone.
    orphans: RefCell<BTreeSet<(NodeId, SessionId)>>,
}

impl OracleWatch {
    pub(super) fn new(
        world: &Rc<WorldState>,
        nodes: Nodes,
        tables: BTreeMap<String, TableKind>,
    ) -> OracleWatch {
        OracleWatch {
            world: Rc::downgrade(world),
            nodes,
            tables,
            orphans: RefCell::default(),
        }
    }

    /// `node`'s table shards as they are now.
    fn held(&self, node: NodeId) -> BTreeMap<TableShardId, HeldShard> {
        let nodes = self.nodes.borrow();
        let Some(dn) = nodes.get(&node) else {
            return BTreeMap::new();
        };
        dn.table_shards()
            .iter()
            .map(|ts| {
                let held = HeldShard {
                    state: ts.state(),
                    needs_peer_copy: ts.needs_peer_copy(),
                };
                (ts.id().clone(), held)
            })
            .collect()
    }

    /// The first session open on a running source that nobody uses
    /// ([`instant::leaked`]), read from every peer server's session table.
    /// A paused source is skipped: the ends of sessions it has not read
    /// yet wait in its streams.
    pub(super) fn leaked_session(&self, lifecycle: &Lifecycle) -> Option<Violation> {
        let world = self.world.upgrade()?;
        for &source in world.hosts.keys() {
            let Some(server) = world.server(source) else {
                continue;
            };
            if lifecycle.status(source) != NodeStatus::Up {
                continue;
            }
            for session in server.sessions() {
                // The end of the session may wait behind a held link.
                if world.faults.link_held(session.node, source) {
                    continue;
                }
                let client = if self.orphans.borrow().contains(&(source, session.id)) {
                    Client::Gone
                } else {
                    match self.nodes.borrow().get(&session.node) {
                        None => Client::Gone,
                        Some(dn) => dn
                            .table_shard(&session.shard)
                            .map_or(Client::DoesNotHold, |ts| Client::Holds(ts.state())),
                    }
                };
                if let Some(detail) = instant::leaked(&session, client) {
                    return Some(Violation {
                        kind: ViolationKind::LeakedSession,
                        node: Some(source),
                        shard: Some(session.shard.clone()),
                        at: executor::now(),
                        trace_index: None,
                        detail,
                    });
                }
            }
        }
        None
    }
}

/// Report a violation found at an instant, as a probe does.
fn report(kind: ViolationKind, node: NodeId, shard: Option<&TableShardId>, detail: &str) {
    match shard {
        Some(s) => tracing::warn!(target: "sim::oracle", violation = kind.name(), node = %node,
            table = %s.table, shard = %s.shard, detail, "invariant_violated"),
        None => tracing::warn!(target: "sim::oracle", violation = kind.name(), node = %node,
            detail, "invariant_violated"),
    }
}

impl Watcher for OracleWatch {
    fn marked_available(&self, node: NodeId, shards: &[ShardId]) {
        let held = self.held(node);
        for shard in shards {
            if let Some(detail) = instant::not_ready_to_serve(&self.tables, *shard, &held) {
                report(ViolationKind::PrematureAvailable, node, None, &detail);
                return;
            }
        }
    }

    fn file_deleted(&self, node: NodeId, file: &FileKey) {
        let Some(world) = self.world.upgrade() else {
            return;
        };
        let Some(server) = world.server(node) else {
            return;
        };
        let sessions = server.sessions();
        if let Some(s) = instant::session_holding(node, file, &sessions, &world.listings) {
            let detail = format!(
                "{file:?} deleted while session {}, which listed it, was open",
                s.id.0
            );
            report(
                ViolationKind::FileDeletedUnderSession,
                node,
                Some(&s.shard),
                &detail,
            );
        }
    }

    fn process_killed(&self, node: NodeId) {
        let Some(world) = self.world.upgrade() else {
            return;
        };
        let mut orphans = self.orphans.borrow_mut();
        // The node's own server goes: its session ids start again at 1.
        orphans.retain(|(source, _)| *source != node);
        for &source in world.hosts.keys() {
            if let Some(server) = world.server(source) {
                orphans.extend(
                    server
                        .sessions()
                        .into_iter()
                        .filter(|s| s.node == node)
                        .map(|s| (source, s.id)),
                );
            }
        }
    }
}
