//! The checks made at an instant the world announces
//! ([`crate::world::watch`]), from the state they are about: the data
//! node's own table shards, the peer server's own session table, the
//! files the world's network relayed to each session. Pure functions of
//! that state, so each is tested on hand-made state.

use std::collections::BTreeMap;

use shardboot::model::FileKey;
use shardboot::peer_server::SessionInfo;
use shardboot::table_shard::BootstrapState;
use shardboot::types::{NodeId, ShardId, TableKind, TableShardId};

use crate::world::listings::Listings;

/// One table shard of a node as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldShard {
    pub state: BootstrapState,
    pub needs_peer_copy: bool,
}

/// Why `shard` of a node must not be `Available` yet, if it must not:
/// every fact table's shard `shard` and every dimension table (shard 0)
/// must be held there, `Bootstrapped`, with no peer copy still owed.
/// `tables` is every table of the cluster, `held` the node's table shards.
pub fn not_ready_to_serve(
    tables: &BTreeMap<String, TableKind>,
    shard: ShardId,
    held: &BTreeMap<TableShardId, HeldShard>,
) -> Option<String> {
    let missing: Vec<String> = tables
        .iter()
        .map(|(name, kind)| match kind {
            TableKind::Fact => TableShardId::new(name.clone(), shard),
            TableKind::Dimension => TableShardId::new(name.clone(), ShardId::DIMENSION),
        })
        .filter_map(|id| match held.get(&id) {
            None => Some(format!("{id} (not held)")),
            Some(h) if h.needs_peer_copy => Some(format!("{id} (peer copy owed)")),
            Some(h) if h.state != BootstrapState::Bootstrapped => {
                Some(format!("{id} ({:?})", h.state))
            }
            Some(_) => None,
        })
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "shard {shard} marked Available while {} not Bootstrapped",
            missing.join(", ")
        )
    })
}

/// The open session on `source` that was told about `file`, if one was:
/// `file` must not be deleted while it is open.
pub fn session_holding<'a>(
    source: NodeId,
    file: &FileKey,
    sessions: &'a [SessionInfo],
    listings: &Listings,
) -> Option<&'a SessionInfo> {
    let candidates = sessions.iter().filter(|s| &s.shard == file.shard());
    let mut name = None;
    for s in candidates {
        let name = name.get_or_insert_with(|| format!("{file:?}"));
        if listings.listed(source, s.id, &s.shard, name) {
            return Some(s);
        }
    }
    None
}

/// What the leaked-session check needs to know of a session's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// The process that opened the session is gone (crashed, restarted
    /// since, or never came back).
    Gone,
    /// The process that opened the session runs and holds the table shard
    /// in this state.
    Holds(BootstrapState),
    /// That process runs and no longer holds the table shard.
    DoesNotHold,
}

/// Why `session`, still open on a source, is leaked, if it is. A client
/// must end every session it knows of once its copy is over, well or
/// badly: an open session blocks the source's background jobs (no token
/// while it is open, until it expires and is swept) and the same node's
/// next copy. A session is known to its client once a keep-alive stream
/// bound it; the others (a start reply lost or refused on the way) and
/// those of a client process that is gone cannot be ended by anyone but
/// the server, which sweeps them on the next request after their ttl.
pub fn leaked(session: &SessionInfo, client: Client) -> Option<String> {
    let why = match client {
        _ if !session.bound => return None,
        Client::Gone | Client::Holds(BootstrapState::Bootstrapping) => return None,
        Client::Holds(state) => format!("its client's table shard is {state:?}, not copying"),
        Client::DoesNotHold => "its client no longer holds the table shard".to_string(),
    };
    Some(format!(
        "session {} from {} still open after its copy ended: {why}",
        session.id.0, session.node,
    ))
}

#[cfg(test)]
mod tests {
    use shardboot::model::BatchMeta;
    use shardboot::protocol::{BatchMetadata, SessionRef, TableMetadata, TableShardMetadata};
    use std::time::Duration;

    use shardboot::types::{BatchId, ColumnId, Offset, SessionId, Timestamp};

    use super::*;

    fn held(entries: &[(&str, u32, BootstrapState, bool)]) -> BTreeMap<TableShardId, HeldShard> {
        entries
            .iter()
            .map(|(t, s, state, owed)| {
                let h = HeldShard {
                    state: *state,
                    needs_peer_copy: *owed,
                };
                (TableShardId::new(*t, ShardId(*s)), h)
            })
            .collect()
    }

    #[test]
    fn availability_needs_every_fact_and_dimension_table_shard_bootstrapped() {
        use BootstrapState::{Bootstrapped, Bootstrapping};
        let tables: BTreeMap<String, TableKind> = [
            ("trips".to_string(), TableKind::Fact),
            ("orders".to_string(), TableKind::Fact),
            ("cities".to_string(), TableKind::Dimension),
        ]
        .into();
        let all = [
            ("trips", 2, Bootstrapped, false),
            ("orders", 2, Bootstrapped, false),
            ("cities", 0, Bootstrapped, false),
        ];
        assert_eq!(not_ready_to_serve(&tables, ShardId(2), &held(&all)), None);
        // One fact table of two still copying.
        let mut one = all;
        one[1].2 = Bootstrapping;
        let why = not_ready_to_serve(&tables, ShardId(2), &held(&one)).unwrap();
        assert!(why.contains("orders/2 (Bootstrapping)"), "{why}");
        // The dimension table: whatever a quirk switch says.
        let mut dim = all;
        dim[2].2 = Bootstrapping;
        let why = not_ready_to_serve(&tables, ShardId(2), &held(&dim)).unwrap();
        assert!(why.contains("cities/0"), "{why}");
        // Not held at all, or Bootstrapped with its copy still owed.
        let why = not_ready_to_serve(&tables, ShardId(2), &held(&all[..2])).unwrap();
        assert!(why.contains("cities/0 (not held)"), "{why}");
        let mut owed = all;
        owed[0].3 = true;
        let why = not_ready_to_serve(&tables, ShardId(2), &held(&owed)).unwrap();
        assert!(why.contains("trips/2 (peer copy owed)"), "{why}");
    }

    fn session(id: u64, node: u32, last_live: u64) -> SessionInfo {
        SessionInfo {
            id: SessionId(id),
            shard: TableShardId::new("cities", ShardId(0)),
            node: NodeId(node),
            ttl: Duration::from_secs(300),
            last_live: Timestamp(last_live),
            bound: true,
        }
    }

    #[test]
    fn a_listed_file_is_held_while_its_session_is_open() {
        let s = session(1, 4, 0);
        let metadata = TableShardMetadata {
            commit_offset: Offset(0),
            checkpoint_offset: Offset(0),
            table: TableMetadata::Dimension {
                snapshot: Default::default(),
                batches: vec![BatchMetadata {
                    id: BatchId(0),
                    meta: BatchMeta::default(),
                    columns: vec![ColumnId(0)],
                }],
            },
        };
        let file = crate::world::listings::listed_files(&s.shard, &metadata)[0].clone();
        let listings = Listings::default();
        let told = SessionRef {
            session: Some(s.id),
            node: Some(s.node),
            table: s.shard.table.clone(),
            shard: s.shard.shard,
        };
        listings.record(NodeId(2), &told, &metadata);
        let open = [s.clone()];
        assert_eq!(
            session_holding(NodeId(2), &file, &open, &listings),
            Some(&s)
        );
        // Once the server no longer holds it, or on another source.
        assert_eq!(session_holding(NodeId(2), &file, &[], &listings), None);
        assert_eq!(session_holding(NodeId(3), &file, &open, &listings), None);
        // Another session of the same table shard was told nothing.
        let other = [session(2, 4, 0)];
        assert_eq!(session_holding(NodeId(2), &file, &other, &listings), None);
    }

    #[test]
    fn a_session_its_client_no_longer_uses_is_leaked() {
        let s = session(3, 4, 90_000);
        let done = Client::Holds(BootstrapState::Bootstrapped);
        assert!(leaked(&s, done).unwrap().contains("Bootstrapped"));
        assert!(leaked(&s, Client::Holds(BootstrapState::NotStarted)).is_some());
        assert!(leaked(&s, Client::DoesNotHold).is_some());
        // In use, or its client gone: not a leak.
        let copying = Client::Holds(BootstrapState::Bootstrapping);
        assert_eq!(leaked(&s, copying), None);
        assert_eq!(leaked(&s, Client::Gone), None);
        // Never bound: its client may never have learned of it.
        let unknown = SessionInfo { bound: false, ..s };
        assert_eq!(leaked(&unknown, done), None);
    }
}
