//! The peer copy of one table shard (docs/MODEL.md §2
//! `fetch_data_from_peer`): session (kept alive by `keep_alive.rs`),
//! metadata, local metadata writes, and the pool of workers that stream every
//! vector party into local files.
//!
//! Client-side quirks: Q3 (keep-alive loss only logged), Q4 (metadata
//! written before any data), Q5 (workers share one result cell), Q7 (a
//! failed copy drops its keep-alive stream instead of ending the session),
//! Q10 (no purge before a copy; the workers in `workers.rs` also write final
//! file names and reopen fact files without truncation). Each is off by
//! default, giving the fixed behaviour.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::join_all;
use thiserror::Error;

use crate::buggify;
use crate::env::{Env, KeepAliveClient, PeerClient};
use crate::model::{FileKey, MetaWrite};
use crate::options::Options;
use crate::probe::Probe;
use crate::protocol::{
    KeepAlive, MetadataRequest, RpcError, SessionRef, StartSessionRequest, TableMetadata,
    TableShardMetadata, VectorPartyRef,
};
use crate::quirks::Quirk;
use crate::store::StoreError;
use crate::types::{BatchId, NodeId, SessionId, TableKind};

use super::TableShard;
use super::keep_alive::{KeepAliveFailure, KeepAliveTask, keep_alive_loop};
use super::workers::{CopyContext, VectorPartyError, VectorPartyJob, copy_worker};

/// Longest extra wait before a copied metadata write (BUGGIFY).
const METADATA_WRITE_DELAY_MAX: Duration = Duration::from_secs(3);

/// Every way a copy from one peer can fail.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CopyError {
    /// Purging or writing local files or metadata failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    #[error("start session: {0}")]
    StartSession(RpcError),
    #[error("open keep-alive stream: {0}")]
    OpenKeepAlive(RpcError),
    #[error("first keep-alive: {0}")]
    FirstKeepAlive(KeepAliveFailure),
    /// A later keep-alive failed (quirk Q3 off aborts the copy).
    #[error("keep-alive lost: {0}")]
    KeepAliveLost(KeepAliveFailure),
    #[error("fetch metadata: {0}")]
    Metadata(RpcError),
    #[error("peer sent {got} metadata for a {want} table")]
    WrongKind { got: TableKind, want: TableKind },
    /// Vector parties that could not be copied (with quirk Q5 on: the one
    /// left in the shared result cell, if any).
    #[error("{} vector parties failed: {}", .0.len(), List(.0))]
    VectorParties(Vec<VectorPartyError>),
}

/// Display helper: the failures separated by `; `.
struct List<'a>(&'a [VectorPartyError]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What the copy will write: shard-level metadata, per-batch versions, and
/// the vector parties.
struct CopyPlan {
    shard_meta: Vec<MetaWrite>,
    batch_meta: Vec<MetaWrite>,
    jobs: Vec<VectorPartyJob>,
}

impl<E: Env> TableShard<E> {
    /// Copy the table shard from `host` over `client` (docs/MODEL.md §2
    /// `fetch_data_from_peer`): open a session and keep it alive, fetch the
    /// metadata, write it and the data locally, end the session.
    pub async fn fetch_data_from_peer(
        &self,
        host: NodeId,
        client: &Rc<E::Peer>,
        origin: NodeId,
        options: &Options,
    ) -> Result<(), CopyError> {
        let quirks = options.quirks;
        if !quirks.on(Quirk::Q10) {
            self.store.purge_local().await?;
        }
        self.details.borrow_mut().set_source(host);
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            source = %host,
            "peer_copy_started"
        );
        let reply = client
            .start_session(StartSessionRequest {
                table: self.id.table.clone(),
                shard: self.id.shard,
                node: Some(origin),
                ttl: options.session_ttl,
            })
            .await
            .map_err(CopyError::StartSession);
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return Err(self.copy_failed(host, e)),
        };
        let mut stream = match client.keep_alive().await {
            Ok(s) => s,
            Err(e) => return Err(self.copy_failed(host, CopyError::OpenKeepAlive(e))),
        };
        let msg = KeepAlive {
            session: Some(reply.session),
            node: Some(origin),
        };
        let ttl = match self.first_keep_alive(&mut stream, msg).await {
            Ok(ttl) => ttl,
            Err(f) => {
                self.end_session(stream, false, options, reply.session);
                return Err(self.copy_failed(host, CopyError::FirstKeepAlive(f)));
            }
        };
        let lost = Rc::new(RefCell::new(None));
        let (stop, stopped) = oneshot::channel();
        let keeper = self.env.spawn(
            "keep_alive_client",
            keep_alive_loop(KeepAliveTask {
                env: self.env.clone(),
                shard: self.id.clone(),
                stream,
                msg,
                ttl,
                stop: stopped,
                lost: Rc::clone(&lost),
                abort_on_loss: !quirks.on(Quirk::Q3),
            }),
        );
        let copied = self
            .copy_session(client, reply.session, origin, options, &lost)
            .await;
        let _ = stop.send(());
        let stream = keeper.await;
        let result = match lost.borrow_mut().take() {
            Some(failure) => Err(CopyError::KeepAliveLost(failure)),
            None => copied,
        };
        self.end_session(stream, result.is_ok(), options, reply.session);
        match result {
            Ok(()) => {
                tracing::info!(
                    table = %self.id.table,
                    shard = %self.id.shard,
                    source = %host,
                    "peer_copy_finished"
                );
                Ok(())
            }
            Err(e) => Err(self.copy_failed(host, e)),
        }
    }

    fn copy_failed(&self, host: NodeId, error: CopyError) -> CopyError {
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            source = %host,
            error = %error,
            "peer_copy_failed"
        );
        error
    }

    /// End the session: close the keep-alive stream cleanly (the peer then
    /// removes the session). Quirk Q7 on: after a failure the stream is just
    /// dropped (broken), and the session lingers on the peer.
    fn end_session(
        &self,
        stream: <E::Peer as PeerClient>::KeepAliveStream,
        ok: bool,
        options: &Options,
        session: SessionId,
    ) {
        if ok || !options.quirks.on(Quirk::Q7) {
            stream.close();
            tracing::debug!(
                table = %self.id.table,
                shard = %self.id.shard,
                session = %session,
                "session_closed"
            );
        } else {
            drop(stream);
            tracing::info!(
                table = %self.id.table,
                shard = %self.id.shard,
                session = %session,
                "session_abandoned"
            );
        }
    }

    /// Metadata, local metadata writes and the vector-party copies, while
    /// the keep-alive task keeps the session.
    async fn copy_session(
        &self,
        client: &Rc<E::Peer>,
        session: SessionId,
        origin: NodeId,
        options: &Options,
        lost: &Rc<RefCell<Option<KeepAliveFailure>>>,
    ) -> Result<(), CopyError> {
        let session_ref = SessionRef {
            session: Some(session),
            node: Some(origin),
            table: self.id.table.clone(),
            shard: self.id.shard,
        };
        let today = self.env.now().day();
        let batches = match self.schema.kind {
            TableKind::Fact if self.schema.retention_days > 0 => {
                let days = i32::try_from(self.schema.retention_days).unwrap_or(i32::MAX);
                BatchId(today.0.saturating_sub(days).saturating_add(1))..=today.batch()
            }
            TableKind::Fact => BatchId(i32::MIN)..=today.batch(),
            TableKind::Dimension => BatchId(i32::MIN)..=BatchId(i32::MAX),
        };
        let metadata = client
            .fetch_metadata(MetadataRequest {
                session: session_ref.clone(),
                batches: Some(batches),
            })
            .await
            .map_err(CopyError::Metadata)?;
        if let Some(failure) = lost.borrow().clone() {
            return Err(CopyError::KeepAliveLost(failure));
        }
        let plan = self.plan_copy(&metadata)?;
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            commit = %metadata.commit_offset,
            checkpoint = %metadata.checkpoint_offset,
            vector_parties = plan.jobs.len(),
            "peer_metadata_fetched"
        );
        let metadata_first = options.quirks.on(Quirk::Q4);
        if metadata_first {
            self.write_metadata(&plan.shard_meta).await?;
            self.write_metadata(&plan.batch_meta).await?;
        }
        {
            let mut details = self.details.borrow_mut();
            details.set_num_columns(u32::try_from(self.schema.columns.len()).unwrap_or(u32::MAX));
            for job in &plan.jobs {
                details.add_vector_party_to_copy(job.batch, job.column);
            }
        }
        let context = Rc::new(CopyContext {
            env: self.env.clone(),
            shard: self.id.clone(),
            client: Rc::clone(client),
            session: session_ref,
            details: Rc::clone(&self.details),
            queue: RefCell::new(plan.jobs.into_iter().collect()),
            lost: Rc::clone(lost),
            shared_result: RefCell::new(None),
            shared_cell: options.quirks.on(Quirk::Q5),
            staged: !options.quirks.on(Quirk::Q10),
            attempts: options.copy_retries.max(1),
        });
        let workers = options.max_concurrent_streams_per_table_shard.max(1);
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                self.env
                    .spawn("vector_party_copier", copy_worker(Rc::clone(&context)))
            })
            .collect();
        let errors: Vec<VectorPartyError> = join_all(handles).await.into_iter().flatten().collect();
        if self.env.now().day() != today {
            Probe::DayRolledOverDuringCopy.hit();
        }
        let errors = if context.shared_cell {
            context
                .shared_result
                .borrow_mut()
                .take()
                .into_iter()
                .collect()
        } else {
            errors
        };
        if !errors.is_empty() {
            return Err(CopyError::VectorParties(errors));
        }
        if !metadata_first {
            self.write_metadata(&plan.batch_meta).await?;
            self.write_metadata(&plan.shard_meta).await?;
        }
        Ok(())
    }

    /// Turn the peer's metadata into local writes and vector-party jobs.
    fn plan_copy(&self, m: &TableShardMetadata) -> Result<CopyPlan, CopyError> {
        let mut shard_meta = vec![
            MetaWrite::CommitOffset(m.commit_offset),
            MetaWrite::CheckpointOffset(m.checkpoint_offset),
        ];
        let mut batch_meta = Vec::new();
        let mut jobs = Vec::new();
        match (&m.table, self.schema.kind) {
            (
                TableMetadata::Fact {
                    cutoff,
                    backfill,
                    batches,
                },
                TableKind::Fact,
            ) => {
                shard_meta.push(MetaWrite::ArchivingCutoff(*cutoff));
                shard_meta.push(MetaWrite::BackfillProgress(*backfill));
                for b in batches {
                    batch_meta.push(MetaWrite::BatchVersion {
                        batch: b.id,
                        meta: b.meta,
                    });
                    for column in &b.columns {
                        jobs.push(VectorPartyJob {
                            batch: b.id,
                            column: *column,
                            remote: VectorPartyRef::Fact {
                                batch: b.id,
                                version: b.meta.version,
                                seq: b.meta.seq,
                                column: *column,
                            },
                            local: FileKey::VectorParty {
                                shard: self.id.clone(),
                                batch: b.id,
                                version: b.meta.version,
                                seq: b.meta.seq,
                                column: *column,
                            },
                            fact: true,
                        });
                    }
                }
            }
            (TableMetadata::Dimension { snapshot, batches }, TableKind::Dimension) => {
                shard_meta.push(MetaWrite::SnapshotProgress(*snapshot));
                for b in batches {
                    for column in &b.columns {
                        jobs.push(VectorPartyJob {
                            batch: b.id,
                            column: *column,
                            remote: VectorPartyRef::Snapshot {
                                redo: snapshot.redo,
                                batch: b.id,
                                column: *column,
                            },
                            local: FileKey::Snapshot {
                                shard: self.id.clone(),
                                redo: snapshot.redo,
                                batch: b.id,
                                column: *column,
                            },
                            fact: false,
                        });
                    }
                }
            }
            (TableMetadata::Fact { .. }, want) => {
                return Err(CopyError::WrongKind {
                    got: TableKind::Fact,
                    want,
                });
            }
            (TableMetadata::Dimension { .. }, want) => {
                return Err(CopyError::WrongKind {
                    got: TableKind::Dimension,
                    want,
                });
            }
        }
        Ok(CopyPlan {
            shard_meta,
            batch_meta,
            jobs,
        })
    }

    async fn write_metadata(&self, writes: &[MetaWrite]) -> Result<(), CopyError> {
        for w in writes {
            if self.env.buggify(buggify::COPY_METADATA_WRITE_DELAY) {
                self.env
                    .sleep(buggify::delay(&self.env, METADATA_WRITE_DELAY_MAX))
                    .await;
            }
            self.store.write_meta(w.clone()).await?;
        }
        if !writes.is_empty() {
            tracing::debug!(
                table = %self.id.table,
                shard = %self.id.shard,
                writes = writes.len(),
                "copied_metadata_written"
            );
        }
        Ok(())
    }
}
