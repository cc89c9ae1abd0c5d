//! What each copy session was told: the files a source's metadata reply
//! listed, per (source host, session). The oracle holds deletions against it
//! ("no file is deleted while a session that listed it is open").
//!
//! File names are kept in the trace's text form (`Debug` of [`FileKey`]), so
//! they compare directly with the `file` field of `file_deleted` events.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use shardboot::model::FileKey;
use shardboot::protocol::{SessionRef, TableMetadata, TableShardMetadata};
use shardboot::types::{NodeId, SessionId, TableShardId};

/// The files one session was told about, in trace form.
type Listed = BTreeSet<String>;

/// Listings by (source host, session, table shard): session ids restart at
/// 1 when a host's process restarts, so the id alone is ambiguous.
#[derive(Clone, Debug, Default)]
pub struct Listings {
    inner: Rc<RefCell<BTreeMap<SessionKey, Listed>>>,
}

/// A session: its source host, id and table shard.
type SessionKey = (NodeId, SessionId, TableShardId);

impl Listings {
    /// Remember the files `metadata` lists for `session` on `source`.
    pub fn record(&self, source: NodeId, session: &SessionRef, metadata: &TableShardMetadata) {
        let Some(id) = session.session else {
            return;
        };
        let shard = TableShardId::new(session.table.clone(), session.shard);
        let files: Vec<String> = listed_files(&shard, metadata)
            .into_iter()
            .map(|k| format!("{k:?}"))
            .collect();
        self.inner
            .borrow_mut()
            .entry((source, id, shard))
            .or_default()
            .extend(files);
    }

    /// Whether `session` of `shard` on `source` was told about `file`
    /// (trace form).
    pub fn listed(
        &self,
        source: NodeId,
        session: SessionId,
        shard: &TableShardId,
        file: &str,
    ) -> bool {
        self.inner
            .borrow()
            .get(&(source, session, shard.clone()))
            .is_some_and(|files| files.contains(file))
    }
}

/// The vector-party files a metadata reply refers to.
pub fn listed_files(shard: &TableShardId, metadata: &TableShardMetadata) -> Vec<FileKey> {
    match &metadata.table {
        TableMetadata::Fact { batches, .. } => batches
            .iter()
            .flat_map(|b| {
                b.columns.iter().map(move |c| FileKey::VectorParty {
                    shard: shard.clone(),
                    batch: b.id,
                    version: b.meta.version,
                    seq: b.meta.seq,
                    column: *c,
                })
            })
            .collect(),
        TableMetadata::Dimension { snapshot, batches } => batches
            .iter()
            .flat_map(|b| {
                b.columns.iter().map(move |c| FileKey::Snapshot {
                    shard: shard.clone(),
                    redo: snapshot.redo,
                    batch: b.id,
                    column: *c,
                })
            })
            .collect(),
    }
}
