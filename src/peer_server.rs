//! The peer-data server: the source side of a peer copy (docs/MODEL.md §4).
//!
//! A bootstrapping host opens a **session** for one table shard, keeps it
//! alive over a keep-alive stream, asks for the table shard's metadata and
//! streams the raw vector-party files. Background jobs of this host
//! (archiving, backfill, purge, snapshot) ask for a **token** before deleting
//! files, and are refused while a session for that table shard is open.
//!
//! The upstream races are reproduced behind switches: Q3 (a swept session's
//! bound stream is never ended), Q6 (uniqueness check and insert in two
//! critical sections), Q7 (broken sessions linger until `acquire_token`
//! reaps them), Q8 (metadata from separate reads), Q9 (tokens reserve
//! nothing).
//!
//! Deliberately not modelled: transport (the caller — the simulated network
//! or a test fake — turns these async calls into RPCs and streams), table
//! incarnations, and ownership checks of the requested shard (upstream has a
//! TODO there and accepts any shard of a known table).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};

use crate::buggify;
use crate::env::{Cluster, Disk, DiskError, Env, Incoming, KeepAliveServer, MetaError, MetaStore};
use crate::model::{BatchMeta, FileKey, ShardMeta, TableSchema};
use crate::options::Options;
use crate::probe::Probe;
use crate::protocol::{
    BatchMetadata, CHUNK_BYTES, KeepAlive, MetadataRequest, PeerError, RawDataRequest, SessionRef,
    StartSessionReply, StartSessionRequest, TableMetadata, TableShardMetadata, VectorPartyRef,
};
use crate::quirks::Quirk;
use crate::store::TokenSource;
use crate::types::{BatchId, ColumnId, NodeId, SessionId, TableKind, TableShardId, Timestamp};

/// Longest wait between separate metadata reads (BUGGIFY, quirk Q8 on).
const METADATA_READS_DELAY_MAX: Duration = Duration::from_secs(1);

/// An open session as the simulator's oracle sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub shard: TableShardId,
    /// The caller (the bootstrapping host).
    pub node: NodeId,
    pub ttl: Duration,
    /// Last keep-alive (or the start), on this host's clock.
    pub last_live: Timestamp,
}

/// A session and, once a keep-alive stream is bound to it, the switch that
/// ends that stream from the server side when the session is swept.
struct Session {
    info: SessionInfo,
    stop: Option<oneshot::Sender<()>>,
}

/// Everything mutable, behind one `RefCell`; never borrowed across an await.
#[derive(Default)]
struct State {
    ready: bool,
    /// Last session id handed out; ids start at 1.
    last_id: u64,
    sessions: BTreeMap<SessionId, Session>,
    /// Tokens granted and not yet released, per table shard (Q9 off only).
    tokens: BTreeMap<TableShardId, u32>,
}

/// The peer-data server of one host. Cloning is cheap and shares the state,
/// so every request handler (and the keep-alive task) can hold one.
pub struct PeerServer<E: Env> {
    inner: Rc<Inner<E>>,
}

struct Inner<E: Env> {
    env: E,
    options: Rc<Options>,
    state: RefCell<State>,
}

impl<E: Env> Clone for PeerServer<E> {
    fn clone(&self) -> Self {
        PeerServer {
            inner: Rc::clone(&self.inner),
        }
    }
}

/// How a keep-alive loop iteration ended.
enum Step {
    Incoming(Incoming<KeepAlive>),
    /// The session was swept and (Q3 off) the server ends its stream.
    Stop,
    /// The stop switch was dropped without firing: never end from here.
    StopGone,
}

impl<E: Env> PeerServer<E> {
    /// A server that is **not ready**: a host serves peer copies only once
    /// its readiness check passed (docs/MODEL.md §5), so the data node calls
    /// [`PeerServer::set_ready`].
    pub fn new(env: E, options: Rc<Options>) -> Self {
        PeerServer {
            inner: Rc::new(Inner {
                env,
                options,
                state: RefCell::new(State::default()),
            }),
        }
    }

    fn quirk(&self, q: Quirk) -> bool {
        self.inner.options.quirks.on(q)
    }

    /// Mark the host ready (or not) to serve peer copies.
    pub fn set_ready(&self, ready: bool) {
        self.inner.state.borrow_mut().ready = ready;
        tracing::info!(ready, "peer_server_readiness_set");
    }

    /// Health check: serving iff ready. A non-ready server also refuses
    /// [`PeerServer::start_session`] with [`PeerError::NotReady`]; requests on
    /// sessions it already has are still answered.
    pub fn health(&self) -> bool {
        self.inner.state.borrow().ready
    }

    /// The open sessions, by id (for the oracle and tests).
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.inner
            .state
            .borrow()
            .sessions
            .values()
            .map(|s| s.info.clone())
            .collect()
    }

    /// Whether a granted token is held for `shard` (always false with Q9 on,
    /// where a token reserves nothing).
    pub fn token_held(&self, shard: &TableShardId) -> bool {
        self.inner
            .state
            .borrow()
            .tokens
            .get(shard)
            .is_some_and(|n| *n > 0)
    }

    /// Open a copy session for one table shard from one caller.
    ///
    /// Refused when not ready, without a caller, for an unknown table, when
    /// the same caller already has a session for the table shard, or (Q9 off)
    /// while a background job holds the table shard's token.
    pub async fn start_session(
        &self,
        req: StartSessionRequest,
    ) -> Result<StartSessionReply, PeerError> {
        let result = self.start_session_inner(&req).await;
        match &result {
            Ok(reply) => tracing::info!(
                table = %req.table, shard = %req.shard, session = %reply.session,
                caller = %show(req.node), ttl_ms = req.ttl.as_millis() as u64, "session_started"
            ),
            Err(e) => tracing::info!(
                table = %req.table, shard = %req.shard, caller = %show(req.node),
                error = %e, "session_refused"
            ),
        }
        result
    }

    async fn start_session_inner(
        &self,
        req: &StartSessionRequest,
    ) -> Result<StartSessionReply, PeerError> {
        self.sweep_if_fixed();
        if !self.health() {
            return Err(PeerError::NotReady);
        }
        let node = req.node.ok_or(PeerError::CallerNotSet)?;
        self.schema(&req.table)?;
        let shard = TableShardId::new(req.table.clone(), req.shard);
        if self.quirk(Quirk::Q6) {
            // Upstream checks under one lock and inserts under another: two
            // concurrent starts from one node can both pass the check.
            self.check_can_start(&shard, node)?;
            crate::env::yield_now().await;
            Ok(self.insert_session(shard, node, req.ttl))
        } else {
            self.check_can_start(&shard, node)?;
            Ok(self.insert_session(shard, node, req.ttl))
        }
    }

    fn check_can_start(&self, shard: &TableShardId, node: NodeId) -> Result<(), PeerError> {
        let state = self.inner.state.borrow();
        if state
            .sessions
            .values()
            .any(|s| s.info.shard == *shard && s.info.node == node)
        {
            Probe::SessionAlreadyRunning.hit();
            return Err(PeerError::SessionAlreadyRunning);
        }
        if state.tokens.get(shard).is_some_and(|n| *n > 0) {
            return Err(PeerError::TokenHeld);
        }
        Ok(())
    }

    fn insert_session(
        &self,
        shard: TableShardId,
        node: NodeId,
        ttl: Duration,
    ) -> StartSessionReply {
        let now = self.inner.env.now();
        let mut state = self.inner.state.borrow_mut();
        state.last_id += 1;
        let id = SessionId(state.last_id);
        let info = SessionInfo {
            id,
            shard,
            node,
            ttl,
            last_live: now,
        };
        state.sessions.insert(id, Session { info, stop: None });
        StartSessionReply { session: id, ttl }
    }

    /// Serve one keep-alive stream until it ends.
    ///
    /// The first message binds the stream to its session (validated like
    /// every request); each message refreshes the session's last-live time
    /// and is answered with its ttl. A clean close removes the session. A
    /// broken stream leaves it (Q7 on: until `acquire_token` reaps it; Q7
    /// off: it is removed too). When the session is swept, the server ends
    /// the stream (Q3 off) or keeps answering as if nothing happened (Q3 on).
    /// A first message that fails validation ends the stream and is returned.
    pub async fn serve_keep_alive(
        &self,
        mut stream: impl KeepAliveServer,
    ) -> Result<(), PeerError> {
        let mut bound: Option<(SessionId, Duration)> = None;
        let mut stop: Option<oneshot::Receiver<()>> = None;
        loop {
            let step = match stop.as_mut() {
                // The stop switch first, so queued messages cannot starve it.
                Some(rx) => match select(rx, pin!(stream.recv())).await {
                    Either::Left((Ok(()), _)) => Step::Stop,
                    Either::Left((Err(oneshot::Canceled), _)) => Step::StopGone,
                    Either::Right((incoming, _)) => Step::Incoming(incoming),
                },
                None => Step::Incoming(stream.recv().await),
            };
            match step {
                Step::StopGone => stop = None,
                Step::Stop => {
                    if let Some((id, _)) = bound {
                        tracing::info!(session = %id, "keep_alive_ended_by_server");
                    }
                    stream.end();
                    return Ok(());
                }
                Step::Incoming(Incoming::Message(msg)) => {
                    self.sweep_if_fixed();
                    let (id, ttl) = match bound {
                        Some(b) => b,
                        None => match self.bind(&msg) {
                            Ok((id, ttl, rx)) => {
                                bound = Some((id, ttl));
                                stop = Some(rx);
                                (id, ttl)
                            }
                            Err(e) => {
                                tracing::info!(error = %e, "keep_alive_refused");
                                stream.end();
                                return Err(e);
                            }
                        },
                    };
                    let now = self.inner.env.now();
                    let alive = match self.inner.state.borrow_mut().sessions.get_mut(&id) {
                        Some(s) => {
                            s.info.last_live = now;
                            true
                        }
                        None => false,
                    };
                    if !alive && !self.quirk(Quirk::Q3) {
                        tracing::info!(session = %id, "keep_alive_ended_by_server");
                        stream.end();
                        return Ok(());
                    }
                    // With Q3 on a swept session is answered all the same: the
                    // client believes its session is alive.
                    stream.reply(ttl);
                }
                Step::Incoming(Incoming::Closed) => {
                    if let Some((id, _)) = bound {
                        self.remove_session(id, "closed");
                    }
                    return Ok(());
                }
                Step::Incoming(Incoming::Broken) => {
                    if let Some((id, _)) = bound {
                        if self.quirk(Quirk::Q7) {
                            tracing::info!(session = %id, "keep_alive_broken");
                        } else {
                            self.remove_session(id, "broken");
                        }
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Validate the first keep-alive message and bind the stream's stop
    /// switch to its session.
    fn bind(
        &self,
        msg: &KeepAlive,
    ) -> Result<(SessionId, Duration, oneshot::Receiver<()>), PeerError> {
        let node = msg.node.ok_or(PeerError::CallerNotSet)?;
        let id = msg.session.ok_or(PeerError::SessionNotSet)?;
        let mut state = self.inner.state.borrow_mut();
        let session = state
            .sessions
            .get_mut(&id)
            .ok_or(PeerError::InvalidSession(id))?;
        if session.info.node != node {
            return Err(PeerError::Mismatch);
        }
        let (tx, rx) = oneshot::channel();
        session.stop = Some(tx);
        tracing::info!(session = %id, table = %session.info.shard.table,
            shard = %session.info.shard.shard, "keep_alive_bound");
        Ok((id, session.info.ttl, rx))
    }

    /// Remove a session whose keep-alive stream ended (`cause`: how).
    fn remove_session(&self, id: SessionId, cause: &'static str) {
        let removed = self.inner.state.borrow_mut().sessions.remove(&id);
        if let Some(s) = removed {
            tracing::info!(session = %id, table = %s.info.shard.table,
                shard = %s.info.shard.shard, cause, "session_removed");
        }
    }

    /// Remove every expired session. With Q3 off the stream bound to a swept
    /// session is ended, so its client learns the session is gone.
    fn sweep(&self) {
        let now = self.inner.env.now();
        let swept: Vec<Session> = {
            let mut state = self.inner.state.borrow_mut();
            let expired: Vec<SessionId> = state
                .sessions
                .values()
                .filter(|s| now.since(s.info.last_live) > s.info.ttl)
                .map(|s| s.info.id)
                .collect();
            expired
                .iter()
                .filter_map(|id| state.sessions.remove(id))
                .collect()
        };
        for s in swept {
            tracing::info!(session = %s.info.id, table = %s.info.shard.table,
                shard = %s.info.shard.shard, "session_expired");
            Probe::SessionExpired.hit();
            if let Some(stop) = s.stop
                && !self.quirk(Quirk::Q3)
            {
                let _ = stop.send(());
            }
        }
    }

    /// Q7 off: expired sessions are swept on every request, not only when a
    /// job asks for a token.
    fn sweep_if_fixed(&self) {
        if !self.quirk(Quirk::Q7) {
            self.sweep();
        }
    }

    /// Validate a session-bound request: caller set, session set, session
    /// known, caller and table shard match the session.
    fn validate(&self, r: &SessionRef) -> Result<(SessionId, TableShardId), PeerError> {
        let node = r.node.ok_or(PeerError::CallerNotSet)?;
        let id = r.session.ok_or(PeerError::SessionNotSet)?;
        let state = self.inner.state.borrow();
        let session = state
            .sessions
            .get(&id)
            .ok_or(PeerError::InvalidSession(id))?;
        if session.info.node != node
            || session.info.shard.table != r.table
            || session.info.shard.shard != r.shard
        {
            return Err(PeerError::Mismatch);
        }
        Ok((id, session.info.shard.clone()))
    }

    fn schema(&self, table: &str) -> Result<TableSchema, PeerError> {
        self.inner
            .env
            .cluster()
            .view()
            .tables
            .get(table)
            .cloned()
            .ok_or_else(|| PeerError::UnknownTable(table.to_string()))
    }

    async fn read_meta(&self, shard: &TableShardId) -> Result<ShardMeta, PeerError> {
        self.inner
            .env
            .metastore()
            .read(shard)
            .await
            .map_err(meta_error)
    }

    /// A scheduling point between two metastore reads (Q8 on): background
    /// jobs may run here, as they could between upstream's separate reads.
    /// BUGGIFY: a slow metastore stretches the window.
    async fn between_reads(&self) {
        let env = &self.inner.env;
        let wait = if env.buggify(buggify::METADATA_READS_SLOW) {
            buggify::delay(env, METADATA_READS_DELAY_MAX)
        } else {
            Duration::ZERO
        };
        env.sleep(wait).await;
    }

    /// The table shard's metadata: offsets, then (fact) cutoff, backfill
    /// progress and the archive batches within both the retention window and
    /// the requested range, or (dimension) the snapshot progress and the
    /// snapshot's batches; each batch with the columns present on disk.
    ///
    /// Q8 on: offsets, progress and batches come from separate reads with
    /// scheduling points between them. Q8 off: one read, listed at once.
    pub async fn fetch_metadata(
        &self,
        req: MetadataRequest,
    ) -> Result<TableShardMetadata, PeerError> {
        let result = self.fetch_metadata_inner(&req).await;
        if let Err(e) = &result {
            tracing::info!(table = %req.session.table, shard = %req.session.shard,
                caller = %show(req.session.node), error = %e, "metadata_refused");
        }
        result
    }

    async fn fetch_metadata_inner(
        &self,
        req: &MetadataRequest,
    ) -> Result<TableShardMetadata, PeerError> {
        self.sweep_if_fixed();
        let (session, shard) = self.validate(&req.session)?;
        let schema = self.schema(&shard.table)?;
        let separate = self.quirk(Quirk::Q8);
        let first = self.read_meta(&shard).await?;
        let (commit_offset, checkpoint_offset) = (first.commit_offset, first.checkpoint_offset);
        let table = match schema.kind {
            TableKind::Fact => {
                let window = self.fact_window(&schema, req.batches.as_ref());
                let progress = if separate {
                    self.between_reads().await;
                    self.read_meta(&shard).await?
                } else {
                    first.clone()
                };
                let batches_meta = if separate {
                    self.between_reads().await;
                    let m = self.read_meta(&shard).await?;
                    self.between_reads().await;
                    m
                } else {
                    first
                };
                let files = self.inner.env.disk().list(&shard);
                let batches = window
                    .map(|w| batches_meta.batches.range(w))
                    .into_iter()
                    .flatten()
                    .map(|(id, meta)| BatchMetadata {
                        id: *id,
                        meta: *meta,
                        columns: fact_columns(&files, *id, meta),
                    })
                    .collect();
                TableMetadata::Fact {
                    cutoff: progress.cutoff,
                    backfill: progress.backfill,
                    batches,
                }
            }
            TableKind::Dimension => {
                let snapshot = if separate {
                    self.between_reads().await;
                    let m = self.read_meta(&shard).await?;
                    self.between_reads().await;
                    m.snapshot
                } else {
                    first.snapshot
                };
                let files = self.inner.env.disk().list(&shard);
                let mut by_batch: BTreeMap<BatchId, BTreeSet<ColumnId>> = BTreeMap::new();
                for f in &files {
                    if let FileKey::Snapshot {
                        redo,
                        batch,
                        column,
                        ..
                    } = f
                        && *redo == snapshot.redo
                    {
                        by_batch.entry(*batch).or_default().insert(*column);
                    }
                }
                // Upstream reports no per-batch size for snapshots; the
                // client takes the last batch's size from the progress.
                let batches = by_batch
                    .into_iter()
                    .map(|(id, cols)| BatchMetadata {
                        id,
                        meta: BatchMeta::default(),
                        columns: cols.into_iter().collect(),
                    })
                    .collect();
                TableMetadata::Dimension { snapshot, batches }
            }
        };
        tracing::info!(table = %shard.table, shard = %shard.shard, session = %session,
            commit = %commit_offset, checkpoint = %checkpoint_offset, "metadata_served");
        Ok(TableShardMetadata {
            commit_offset,
            checkpoint_offset,
            table,
        })
    }

    /// The fact batches served: today back to the retention (no lower bound
    /// when retention is 0), intersected with the requested range; `None`
    /// when that is empty.
    fn fact_window(
        &self,
        schema: &TableSchema,
        requested: Option<&RangeInclusive<BatchId>>,
    ) -> Option<RangeInclusive<BatchId>> {
        let today = self.inner.env.now().day().0;
        let mut start = if schema.retention_days > 0 {
            today
                .saturating_sub(schema.retention_days as i32)
                .saturating_add(1)
        } else {
            i32::MIN
        };
        let mut end = today;
        if let Some(r) = requested {
            start = start.max(r.start().0);
            end = end.min(r.end().0);
        }
        (start <= end).then_some(BatchId(start)..=BatchId(end))
    }

    /// The raw bytes of one vector-party file, as chunks of at most
    /// [`CHUNK_BYTES`] in file order (none for an empty file), so the
    /// transport can stream them one by one.
    pub async fn fetch_raw_data(&self, req: RawDataRequest) -> Result<Vec<Vec<u8>>, PeerError> {
        let result = self.fetch_raw_data_inner(&req).await;
        if let Err(e) = &result {
            tracing::info!(table = %req.session.table, shard = %req.session.shard,
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
        tracing::debug!(table = %shard.table, shard = %shard.shard, file = ?key,
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

    /// May a background job delete files of `shard` now? Reaps expired
    /// sessions first, then grants only if no session is open for it.
    ///
    /// Q9 off: a grant is held until [`PeerServer::release_token`] and blocks
    /// new sessions for the table shard meanwhile. Q9 on: it reserves nothing.
    pub fn acquire_token(&self, shard: &TableShardId) -> bool {
        self.sweep();
        let granted = {
            let mut state = self.inner.state.borrow_mut();
            let open = state.sessions.values().any(|s| s.info.shard == *shard);
            if !open && !self.quirk(Quirk::Q9) {
                *state.tokens.entry(shard.clone()).or_default() += 1;
            }
            !open
        };
        if granted {
            tracing::debug!(table = %shard.table, shard = %shard.shard, "token_granted");
        } else {
            tracing::info!(table = %shard.table, shard = %shard.shard, "token_refused");
            Probe::TokenRefused.hit();
        }
        granted
    }

    /// Give back a token from [`PeerServer::acquire_token`]. With Q9 on no
    /// grant was counted, so this is a no-op, as upstream.
    pub fn release_token(&self, shard: &TableShardId) {
        let mut state = self.inner.state.borrow_mut();
        if let Some(n) = state.tokens.get_mut(shard) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.tokens.remove(shard);
            }
            tracing::debug!(table = %shard.table, shard = %shard.shard, "token_released");
        }
    }
}

/// The host's peer-data server is the token source of its jobs.
impl<E: Env> TokenSource for PeerServer<E> {
    fn acquire_token(&self, shard: &TableShardId) -> bool {
        PeerServer::acquire_token(self, shard)
    }
    fn release_token(&self, shard: &TableShardId) {
        PeerServer::release_token(self, shard)
    }
}

/// The columns of a fact batch present on disk at the batch's version.
fn fact_columns(files: &[FileKey], batch: BatchId, meta: &BatchMeta) -> Vec<ColumnId> {
    let cols: BTreeSet<ColumnId> = files
        .iter()
        .filter_map(|f| match f {
            FileKey::VectorParty {
                batch: b,
                version,
                seq,
                column,
                ..
            } if *b == batch && *version == meta.version && *seq == meta.seq => Some(*column),
            _ => None,
        })
        .collect();
    cols.into_iter().collect()
}

/// A caller id for traces (`-` when unset).
fn show(node: Option<NodeId>) -> String {
    node.map_or_else(|| "-".to_string(), |n| n.to_string())
}

fn meta_error(e: MetaError) -> PeerError {
    PeerError::Disk(format!("metastore: {e}"))
}

#[cfg(test)]
mod tests;
