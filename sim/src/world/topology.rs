//! The placement service: versions of the cluster view (placement + tables)
//! that hosts watch, `mark_available`, and the operator's transitions.
//!
//! Transitions follow docs/MODEL.md §1: *add node* moves replicas from the most loaded
//! hosts to the new one (the donors' replicas become `Leaving`); *remove
//! node* turns its replicas `Leaving` and places an `Initializing`
//! replacement on the least loaded host without that shard; *replace node*
//! moves all of one host's replicas to a new host; *raise replicas* adds
//! `Initializing` replicas. A `Leaving` replica is removed (by the operator)
//! once the shard has as many `Available` replicas as the replication factor.
//! Placement choices are deterministic (ties go to the lowest node id).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::task::Waker;

use shardboot::env::ClusterError;
use shardboot::model::TableSchema;
use shardboot::placement::{ClusterView, Placement};
use shardboot::types::{NodeId, ShardId, ShardState, TableKind, TableName, TableShardId};
use thiserror::Error;

use crate::world::watch::Watch;

/// A transition the operator cannot make.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TransitionError {
    #[error("node {0} is already in the placement")]
    AlreadyPresent(NodeId),
    #[error("node {0} is not in the placement")]
    NotPresent(NodeId),
    #[error("cannot place {shard}: no host without a replica of it")]
    NoRoom { shard: ShardId },
    #[error("replication factor {0} must be at least the current one ({1})")]
    NotARaise(usize, usize),
}

struct State {
    view: Rc<ClusterView>,
    /// Every version ever published, oldest first (`history[v - 1]`).
    history: Vec<Rc<ClusterView>>,
    replicas: usize,
    watchers: Vec<Waker>,
    /// Told of every replica marked `Available` ([`crate::world::watch`]).
    watch: Watch,
}

/// The placement service shared by every host. Cloning shares it.
#[derive(Clone)]
pub struct PlacementService {
    state: Rc<RefCell<State>>,
}

impl PlacementService {
    /// A cluster of `nodes` hosts holding `shards` shards with `replicas`
    /// replicas each, round-robin, every replica in `initial` state.
    pub fn new(
        nodes: &[NodeId],
        shards: u32,
        replicas: usize,
        initial: ShardState,
        tables: BTreeMap<TableName, TableSchema>,
    ) -> PlacementService {
        let mut placement = Placement::default();
        for s in 0..shards {
            let holders = placement.shards.entry(ShardId(s)).or_default();
            for r in 0..replicas.min(nodes.len()) {
                holders.insert(nodes[(s as usize + r) % nodes.len()], initial);
            }
        }
        let first = Rc::new(ClusterView {
            version: 1,
            placement,
            tables,
        });
        PlacementService {
            state: Rc::new(RefCell::new(State {
                view: first.clone(),
                history: vec![first],
                replicas,
                watchers: Vec::new(),
                watch: Watch::default(),
            })),
        }
    }

    pub fn view(&self) -> Rc<ClusterView> {
        self.state.borrow().view.clone()
    }

    /// Version `version` of the view, if it was published.
    pub fn version(&self, version: u64) -> Option<Rc<ClusterView>> {
        let i = usize::try_from(version).ok()?.checked_sub(1)?;
        self.state.borrow().history.get(i).cloned()
    }

    /// Tell `watch` of every replica marked `Available` from now on.
    pub fn set_watch(&self, watch: Watch) {
        self.state.borrow_mut().watch = watch;
    }

    /// Register interest in the next change.
    pub fn watch(&self, waker: &Waker) {
        self.state.borrow_mut().watchers.push(waker.clone());
    }

    fn publish(&self, placement: Placement, tables: BTreeMap<TableName, TableSchema>, why: &str) {
        let watchers = {
            let mut st = self.state.borrow_mut();
            let version = st.view.version + 1;
            st.view = Rc::new(ClusterView {
                version,
                placement,
                tables,
            });
            let view = st.view.clone();
            st.history.push(view);
            std::mem::take(&mut st.watchers)
        };
        let view = self.view();
        tracing::info!(target: "sim::topology", version = view.version, change = why,
            placement = %render(&view.placement), "placement_published");
        watchers.into_iter().for_each(Waker::wake);
    }

    fn change(
        &self,
        why: &str,
        f: impl FnOnce(&mut Placement, usize) -> Result<(), TransitionError>,
    ) -> Result<(), TransitionError> {
        let view = self.view();
        let mut placement = view.placement.clone();
        f(&mut placement, self.state.borrow().replicas)?;
        self.publish(placement, view.tables.clone(), why);
        Ok(())
    }

    /// Add a new host and move replicas to it from the most loaded hosts.
    pub fn add_node(&self, node: NodeId) -> Result<(), TransitionError> {
        self.change("add_node", |p, _| {
            if p.contains_host(node) {
                return Err(TransitionError::AlreadyPresent(node));
            }
            let total: usize = p.shards.values().map(BTreeMap::len).sum();
            let hosts = p.hosts().len() + 1;
            let target = total / hosts;
            for _ in 0..target {
                // The most loaded host, then its first shard the new host lacks.
                let loads = load(p);
                let Some((donor, shard)) = loads.iter().rev().find_map(|(_, donor)| {
                    p.shards.iter().find_map(|(s, r)| {
                        (r.get(donor) == Some(&ShardState::Available) && !r.contains_key(&node))
                            .then_some((*donor, *s))
                    })
                }) else {
                    break;
                };
                let replicas = p.shards.entry(shard).or_default();
                replicas.insert(donor, ShardState::Leaving);
                replicas.insert(node, ShardState::Initializing);
            }
            Ok(())
        })
    }

    /// Take a host out: its replicas leave, replacements go elsewhere.
    pub fn remove_node(&self, node: NodeId) -> Result<(), TransitionError> {
        self.change("remove_node", |p, _| {
            if !p.contains_host(node) {
                return Err(TransitionError::NotPresent(node));
            }
            // A replica already Leaving has its replacement: it stays a
            // source until that is Available, and needs no second one.
            let shards: Vec<ShardId> = p
                .shards_of(node)
                .into_iter()
                .filter(|(_, st)| *st != ShardState::Leaving)
                .map(|(shard, _)| shard)
                .collect();
            for shard in shards {
                let target = least_loaded_without(p, shard, &[node])
                    .ok_or(TransitionError::NoRoom { shard })?;
                let replicas = p.shards.entry(shard).or_default();
                leave(replicas, node);
                replicas.insert(target, ShardState::Initializing);
            }
            Ok(())
        })
    }

    /// Move every replica of `old` to the new host `new`.
    pub fn replace_node(&self, old: NodeId, new: NodeId) -> Result<(), TransitionError> {
        self.change("replace_node", |p, _| {
            if !p.contains_host(old) {
                return Err(TransitionError::NotPresent(old));
            }
            if p.contains_host(new) {
                return Err(TransitionError::AlreadyPresent(new));
            }
            for replicas in p.shards.values_mut() {
                // A Leaving replica of `old` already has its replacement.
                if replicas
                    .get(&old)
                    .is_some_and(|st| *st != ShardState::Leaving)
                {
                    leave(replicas, old);
                    replicas.insert(new, ShardState::Initializing);
                }
            }
            Ok(())
        })
    }

    /// Raise the replication factor to `replicas`.
    pub fn raise_replicas(&self, replicas: usize) -> Result<(), TransitionError> {
        let current = self.state.borrow().replicas;
        if replicas < current {
            return Err(TransitionError::NotARaise(replicas, current));
        }
        self.change("raise_replicas", |p, _| {
            let shards: Vec<ShardId> = p.shards.keys().copied().collect();
            for shard in shards {
                // Leaving replicas are on their way out: they do not count.
                let serving = |p: &Placement| {
                    p.shards[&shard]
                        .values()
                        .filter(|st| **st != ShardState::Leaving)
                        .count()
                };
                while serving(p) < replicas {
                    let target = least_loaded_without(p, shard, &[])
                        .ok_or(TransitionError::NoRoom { shard })?;
                    p.shards
                        .entry(shard)
                        .or_default()
                        .insert(target, ShardState::Initializing);
                }
            }
            Ok(())
        })?;
        // Only a raise that took effect changes the factor: one refused for
        // lack of hosts must not leave a target no shard can reach (its
        // Leaving replicas would then never be removed).
        self.state.borrow_mut().replicas = replicas;
        Ok(())
    }

    /// Add (or replace) a table in the schema.
    pub fn add_table(&self, table: TableSchema) {
        let view = self.view();
        let mut tables = view.tables.clone();
        tables.insert(table.name.clone(), table);
        self.publish(view.placement.clone(), tables, "add_table");
    }

    /// The placement service call of a host whose `Initializing` replicas are
    /// ready; then the operator removes `Leaving` replicas made redundant.
    pub fn mark_available(&self, node: NodeId, shards: &[ShardId]) -> Result<(), ClusterError> {
        let view = self.view();
        let mut p = view.placement.clone();
        for shard in shards {
            match p.state(*shard, node) {
                Some(ShardState::Initializing) => {
                    p.shards
                        .entry(*shard)
                        .or_default()
                        .insert(node, ShardState::Available);
                }
                // A retry after a lost reply: already done.
                Some(ShardState::Available) => {}
                _ => return Err(ClusterError::NotInitializing(*shard)),
            }
        }
        tracing::info!(target: "sim::topology", node = %node, shards = ?shards, "shards_marked_available");
        let replicas = self.state.borrow().replicas;
        for shard in shards {
            let r = p.shards.entry(*shard).or_default();
            let available = r.values().filter(|s| **s == ShardState::Available).count();
            if available >= replicas {
                r.retain(|_, s| *s != ShardState::Leaving);
            }
        }
        self.publish(p, view.tables.clone(), "mark_available");
        let watch = self.state.borrow().watch.clone();
        watch.notify(|w| w.marked_available(node, shards));
        Ok(())
    }

    /// Whether every replica is `Available` (no transition in flight).
    pub fn settled(&self) -> bool {
        self.view()
            .placement
            .shards
            .values()
            .all(|r| r.values().all(|s| *s == ShardState::Available))
    }
}

/// Take `node`'s replica of a shard out of service. One that holds data
/// becomes `Leaving` and stays a copy source until its replacement is
/// `Available`. An `Initializing` one holds none (its copy may be half
/// done), so it is dropped at once, as M3's placement returns an
/// initializing shard to its source: made `Leaving`, it would be offered
/// as a source while its own bootstrap purges the files a copy from it is
/// reading.
fn leave(replicas: &mut BTreeMap<NodeId, ShardState>, node: NodeId) {
    if replicas.get(&node) == Some(&ShardState::Initializing) {
        replicas.remove(&node);
    } else {
        replicas.insert(node, ShardState::Leaving);
    }
}

/// Replica count per host, ascending (ties by node id).
fn load(p: &Placement) -> Vec<(usize, NodeId)> {
    let mut counts: BTreeMap<NodeId, usize> = p.hosts().into_iter().map(|h| (h, 0)).collect();
    for r in p.shards.values() {
        for h in r.keys() {
            *counts.entry(*h).or_default() += 1;
        }
    }
    let mut v: Vec<(usize, NodeId)> = counts.into_iter().map(|(h, c)| (c, h)).collect();
    v.sort();
    v
}

fn least_loaded_without(p: &Placement, shard: ShardId, exclude: &[NodeId]) -> Option<NodeId> {
    let holders: BTreeSet<NodeId> = p.shards.get(&shard)?.keys().copied().collect();
    load(p)
        .into_iter()
        .map(|(_, h)| h)
        .find(|h| !holders.contains(h) && !exclude.contains(h))
}

/// The table shards whose data the replicas of placement shard `shard`
/// serve: every fact table's shard `shard`, and on shard 0 every dimension
/// table too (dimension tables live on every host but are copied from the
/// replicas of shard 0, docs/MODEL.md §2).
pub fn served_table_shards(view: &ClusterView, shard: ShardId) -> Vec<TableShardId> {
    view.tables
        .values()
        .filter_map(|t| match t.kind {
            TableKind::Fact => Some(TableShardId::new(t.name.clone(), shard)),
            TableKind::Dimension if shard == ShardId::DIMENSION => {
                Some(TableShardId::new(t.name.clone(), shard))
            }
            TableKind::Dimension => None,
        })
        .collect()
}

/// `0:n1=A,n2=I 1:...` — compact, for traces.
pub fn render(p: &Placement) -> String {
    let mut out = String::new();
    for (shard, replicas) in &p.shards {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{shard}:"));
        let parts: Vec<String> = replicas
            .iter()
            .map(|(h, s)| {
                let c = match s {
                    ShardState::Initializing => 'I',
                    ShardState::Available => 'A',
                    ShardState::Leaving => 'L',
                };
                format!("{h}={c}")
            })
            .collect();
        out.push_str(&parts.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(nodes: u32, shards: u32, replicas: usize) -> PlacementService {
        let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        PlacementService::new(
            &ids,
            shards,
            replicas,
            ShardState::Available,
            BTreeMap::new(),
        )
    }

    #[test]
    fn initial_placement_is_round_robin() {
        let s = service(3, 4, 2);
        assert_eq!(
            render(&s.view().placement),
            "0:n1=A,n2=A 1:n2=A,n3=A 2:n1=A,n3=A 3:n1=A,n2=A"
        );
    }

    #[test]
    fn replace_node_moves_every_replica_and_leaving_goes_once_available() {
        let s = service(3, 2, 2);
        s.replace_node(NodeId(1), NodeId(4)).unwrap();
        assert_eq!(render(&s.view().placement), "0:n1=L,n2=A,n4=I 1:n2=A,n3=A");
        s.mark_available(NodeId(4), &[ShardId(0)]).unwrap();
        assert_eq!(render(&s.view().placement), "0:n2=A,n4=A 1:n2=A,n3=A");
        assert!(s.settled());
        assert_eq!(s.view().version, 3);
    }

    #[test]
    fn add_node_takes_a_fair_share_from_the_most_loaded() {
        let s = service(2, 4, 2);
        s.add_node(NodeId(3)).unwrap();
        let p = s.view().placement.clone();
        assert_eq!(p.shards_of(NodeId(3)).len(), 8 / 3);
        assert!(p.shards.values().all(|r| r.len() <= 3));
    }

    /// A replica still `Initializing` holds no complete data: removing or
    /// replacing its host drops it instead of making it a `Leaving` source
    /// (a copy from it would read files its own bootstrap purges).
    #[test]
    fn an_initializing_replica_is_dropped_not_left_when_its_host_goes() {
        let s = service(3, 2, 2);
        s.replace_node(NodeId(1), NodeId(4)).unwrap();
        s.replace_node(NodeId(4), NodeId(5)).unwrap();
        assert_eq!(render(&s.view().placement), "0:n1=L,n2=A,n5=I 1:n2=A,n3=A");
        s.remove_node(NodeId(5)).unwrap();
        let p = s.view().placement.clone();
        assert!(!p.contains_host(NodeId(5)));
        assert_eq!(p.state(ShardId(0), NodeId(1)), Some(ShardState::Leaving));
        assert_eq!(
            p.shards[&ShardId(0)]
                .values()
                .filter(|st| **st == ShardState::Initializing)
                .count(),
            1,
            "a new replica elsewhere: {}",
            render(&p)
        );
    }

    #[test]
    fn remove_node_places_replacements_elsewhere() {
        let s = service(3, 3, 2);
        s.remove_node(NodeId(2)).unwrap();
        let p = s.view().placement.clone();
        for (shard, st) in p.shards_of(NodeId(2)) {
            assert_eq!(st, ShardState::Leaving);
            assert_eq!(p.shards[&shard].len(), 3);
        }
        assert_eq!(
            s.remove_node(NodeId(9)),
            Err(TransitionError::NotPresent(NodeId(9)))
        );
    }

    #[test]
    fn raise_replicas_adds_initializing_replicas() {
        let s = service(3, 2, 1);
        s.raise_replicas(2).unwrap();
        let p = s.view().placement.clone();
        assert!(p.shards.values().all(|r| r.len() == 2));
        assert_eq!(s.raise_replicas(1), Err(TransitionError::NotARaise(1, 2)));
    }

    #[test]
    fn a_leaving_replica_gets_no_second_replacement() {
        let s = service(3, 2, 2);
        s.replace_node(NodeId(1), NodeId(4)).unwrap();
        let before = render(&s.view().placement);
        assert_eq!(before, "0:n1=L,n2=A,n4=I 1:n2=A,n3=A");
        // n1 holds only a Leaving replica: removing it or replacing it
        // again adds no other Initializing one.
        s.remove_node(NodeId(1)).unwrap();
        assert_eq!(render(&s.view().placement), before);
        s.replace_node(NodeId(1), NodeId(5)).unwrap();
        assert_eq!(render(&s.view().placement), before);
    }

    #[test]
    fn raise_replicas_does_not_count_leaving_replicas() {
        let s = service(3, 3, 1);
        s.replace_node(NodeId(1), NodeId(4)).unwrap();
        assert_eq!(render(&s.view().placement), "0:n1=L,n4=I 1:n2=A 2:n3=A");
        s.raise_replicas(2).unwrap();
        let p = s.view().placement.clone();
        let serving = p.shards[&ShardId(0)]
            .values()
            .filter(|st| **st != ShardState::Leaving)
            .count();
        assert_eq!(serving, 2, "{}", render(&p));
    }

    #[test]
    fn a_refused_raise_leaves_the_factor_as_it_was() {
        let s = service(1, 2, 1);
        assert!(matches!(
            s.raise_replicas(2),
            Err(TransitionError::NoRoom { .. })
        ));
        // The factor is still 1: the donor of a later join is removed once
        // the joiner is Available (with 2 it would stay Leaving for ever).
        s.add_node(NodeId(2)).unwrap();
        assert_eq!(render(&s.view().placement), "0:n1=L,n2=I 1:n1=A");
        s.mark_available(NodeId(2), &[ShardId(0)]).unwrap();
        assert_eq!(render(&s.view().placement), "0:n2=A 1:n1=A");
    }

    #[test]
    fn mark_available_is_idempotent_but_refuses_foreign_replicas() {
        let s = service(3, 1, 2);
        assert_eq!(s.mark_available(NodeId(1), &[ShardId(0)]), Ok(()));
        assert_eq!(
            s.mark_available(NodeId(3), &[ShardId(0)]),
            Err(ClusterError::NotInitializing(ShardId(0)))
        );
    }
}
