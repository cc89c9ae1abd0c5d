//! The raw bytes of one vector-party file served to a copy, in chunks the
//! transport streams one by one; a batch replaced since the copy's metadata
//! listed it is noticed (a coverage probe) but served as asked.

use crate::env::{Disk, DiskError, Env};
use crate::model::FileKey;
use crate::probe::Probe;
use crate::protocol::{CHUNK_BYTES, PeerError, RawDataRequest, VectorPartyRef};

use super::server::{PeerServer, TARGET, show};

impl<E: Env> PeerServer<E> {
    /// The raw bytes of one vector-party file, as chunks of at most
    /// [`CHUNK_BYTES`] in file order (none for an empty file), so the
    /// transport can stream them one by one.
    pub async fn fetch_raw_data(&self, req: RawDataRequest) -> Result<Vec<Vec<u8>>, PeerError> {
        let result = self.fetch_raw_data_inner(&req).await;
        if let Err(e) = &result {
            tracing::info!(target: TARGET, table = %req.session.table, shard = %req.session.shard,
                caller = %show(req.session.node), vector_party = ?req.vector_party,
                error = %e, "raw_data_refused");
        }
        result
    }

    async fn fetch_raw_data_inner(&self, req: &RawDataRequest) -> Result<Vec<Vec<u8>>, PeerError> {
        self.sweep_if_fixed();
        let (_, shard) = self.validate(&req.session)?;
        self.schema(&shard.table)?;
        let key = match req.vector_party.clone() {
            VectorPartyRef::Fact {
                batch,
                version,
                seq,
                column,
            } => FileKey::VectorParty {
                shard: shard.clone(),
                batch,
                version,
                seq,
                column,
            },
            VectorPartyRef::Snapshot {
                redo,
                batch,
                column,
            } => FileKey::Snapshot {
                shard: shard.clone(),
                redo,
                batch,
                column,
            },
        };
        if self.replaced_since_listed(&key) {
            Probe::BatchVersionChangedDuringCopy.hit();
        }
        let bytes = self
            .inner
            .env
            .disk()
            .read(&key)
            .await
            .map_err(|e| match e {
                DiskError::NotFound => PeerError::FileNotFound,
                other => PeerError::Disk(other.to_string()),
            })?;
        tracing::debug!(target: TARGET, table = %shard.table, shard = %shard.shard, file = ?key,
            bytes = bytes.len(), "raw_data_served");
        Ok(bytes.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect())
    }

    /// Whether a newer version of the fact batch of `asked` than the one a
    /// copy asks for is on disk: a job replaced the batch after the copy's
    /// metadata listed it (or while it did).
    fn replaced_since_listed(&self, asked: &FileKey) -> bool {
        let FileKey::VectorParty {
            shard,
            batch,
            version,
            seq,
            column,
        } = asked
        else {
            return false;
        };
        self.inner.env.disk().list(shard).iter().any(|f| {
            matches!(f, FileKey::VectorParty { batch: b, version: v, seq: s, column: c, .. }
                if b == batch && c == column && (v, s) > (version, seq))
        })
    }
}
