//! The vector-party copy workers of one peer copy: a shared queue of
//! (batch, column) jobs drained by `max_concurrent_streams_per_table_shard`
//! spawned tasks, each job with up to `copy_retries` attempts.
//!
//! Quirk Q5 on: every finished job overwrites one shared result cell, so a
//! later success hides an earlier exhausted job (upstream's shared `err`).
//! Quirk Q10 on: files are written under their final names and fact files
//! reopened without truncation; off: staging names, renamed when synced.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use thiserror::Error;

use crate::buggify;
use crate::details::BootstrapDetails;
use crate::env::{ChunkStream, Disk, DiskError, Env, OpenMode, PeerClient, WriteFile};
use crate::model::FileKey;
use crate::probe::Probe;
use crate::protocol::{RawDataRequest, RpcError, SessionRef, VectorPartyRef};
use crate::types::{BatchId, ColumnId, TableShardId};

use super::keep_alive::{KeepAliveFailure, RETRY_BACKOFF};

/// Why one attempt to copy a vector party failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum VectorPartyFailure {
    #[error(transparent)]
    Rpc(RpcError),
    #[error("local disk: {0}")]
    Disk(DiskError),
    /// The keep-alive was lost (quirk Q3 off): the copy stopped.
    #[error("copy aborted after keep-alive loss")]
    Aborted,
}

/// A vector party whose every copy attempt failed (the last cause).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("vector party batch {batch} column {column}: {cause}")]
pub struct VectorPartyError {
    pub batch: BatchId,
    pub column: ColumnId,
    pub cause: VectorPartyFailure,
}

/// One vector party to copy: where it is on the peer, where it goes here.
#[derive(Clone, Debug)]
pub(super) struct VectorPartyJob {
    pub(super) batch: BatchId,
    pub(super) column: ColumnId,
    pub(super) remote: VectorPartyRef,
    pub(super) local: FileKey,
    pub(super) fact: bool,
}

/// Shared by the copy workers of one copy.
pub(super) struct CopyContext<E: Env> {
    pub(super) env: E,
    pub(super) shard: TableShardId,
    pub(super) client: Rc<E::Peer>,
    pub(super) session: SessionRef,
    pub(super) details: Rc<RefCell<BootstrapDetails>>,
    pub(super) queue: RefCell<VecDeque<VectorPartyJob>>,
    /// Set by the keep-alive task when it lost the session (Q3 off only).
    pub(super) lost: Rc<RefCell<Option<KeepAliveFailure>>>,
    /// Quirk Q5: the one result cell every worker overwrites.
    pub(super) shared_result: RefCell<Option<VectorPartyError>>,
    pub(super) shared_cell: bool,
    /// Quirk Q10 off: write to staging names, rename when synced.
    pub(super) staged: bool,
    pub(super) attempts: u32,
}

impl<E: Env> CopyContext<E> {
    fn aborted(&self) -> bool {
        self.lost.borrow().is_some()
    }
}

/// Take jobs off the shared queue until it is empty. Returns the failures
/// (quirk Q5 on: none; each result overwrites the shared cell instead).
pub(super) async fn copy_worker<E: Env>(ctx: Rc<CopyContext<E>>) -> Vec<VectorPartyError> {
    let mut errors = Vec::new();
    loop {
        let Some(job) = ctx.queue.borrow_mut().pop_front() else {
            return errors;
        };
        let result = copy_vector_party(&ctx, &job).await;
        if ctx.shared_cell {
            *ctx.shared_result.borrow_mut() = result.err();
        } else if let Err(e) = result {
            errors.push(e);
        }
    }
}

/// Copy one vector party with up to `attempts` tries.
async fn copy_vector_party<E: Env>(
    ctx: &CopyContext<E>,
    job: &VectorPartyJob,
) -> Result<(), VectorPartyError> {
    let fail = |cause| VectorPartyError {
        batch: job.batch,
        column: job.column,
        cause,
    };
    let mut last = VectorPartyFailure::Aborted;
    for attempt in 1..=ctx.attempts {
        if attempt > 1 {
            ctx.env.sleep(RETRY_BACKOFF).await;
        }
        if ctx.aborted() {
            return Err(fail(VectorPartyFailure::Aborted));
        }
        match copy_once(ctx, job).await {
            Ok(bytes) => {
                if attempt > 1 {
                    Probe::VectorPartyRetried.hit();
                }
                ctx.details
                    .borrow_mut()
                    .mark_vector_party_finished(job.batch, job.column);
                tracing::debug!(
                    table = %ctx.shard.table,
                    shard = %ctx.shard.shard,
                    batch = %job.batch,
                    column = %job.column,
                    bytes,
                    attempt,
                    "vector_party_copied"
                );
                return Ok(());
            }
            Err(cause) => {
                tracing::info!(
                    table = %ctx.shard.table,
                    shard = %ctx.shard.shard,
                    batch = %job.batch,
                    column = %job.column,
                    attempt,
                    error = %cause,
                    "vector_party_copy_failed"
                );
                last = cause;
            }
        }
    }
    Err(fail(last))
}

/// One attempt: open the local file, stream the peer's chunks into it,
/// sync (and, Q10 off, rename the staging file into place). Bytes written.
async fn copy_once<E: Env>(
    ctx: &CopyContext<E>,
    job: &VectorPartyJob,
) -> Result<usize, VectorPartyFailure> {
    let (target, mode) = if ctx.staged {
        (job.local.staging(), OpenMode::Truncate)
    } else if job.fact {
        (job.local.clone(), OpenMode::Overwrite)
    } else {
        (job.local.clone(), OpenMode::Truncate)
    };
    let disk = ctx.env.disk();
    let mut file = disk
        .open(&target, mode)
        .await
        .map_err(VectorPartyFailure::Disk)?;
    let mut stream = ctx
        .client
        .fetch_raw_data(RawDataRequest {
            session: ctx.session.clone(),
            vector_party: job.remote.clone(),
        })
        .await
        .map_err(VectorPartyFailure::Rpc)?;
    // BUGGIFY: this attempt fails once its first chunk is written.
    let fail_midway = ctx.env.buggify(buggify::VECTOR_PARTY_ATTEMPT_FAILS);
    let mut bytes = 0;
    loop {
        let chunk = match stream.next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                if bytes > 0 {
                    Probe::RawDataStreamBrokeMidFile.hit();
                }
                return Err(VectorPartyFailure::Rpc(e));
            }
        };
        if ctx.aborted() {
            return Err(VectorPartyFailure::Aborted);
        }
        file.write(&chunk).await.map_err(VectorPartyFailure::Disk)?;
        bytes += chunk.len();
        if fail_midway {
            return Err(VectorPartyFailure::Disk(DiskError::Io));
        }
    }
    file.sync().await.map_err(VectorPartyFailure::Disk)?;
    if ctx.staged {
        disk.rename(&target, &job.local)
            .await
            .map_err(VectorPartyFailure::Disk)?;
    }
    Ok(bytes)
}
