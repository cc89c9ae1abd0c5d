//! The seams: everything the bootstrap logic needs from the world, and nothing
//! more. The simulator implements them with virtual time, a seeded RNG and
//! fault injection; a production binding (tokio, files, gRPC) could implement
//! the same traits without touching the logic.
//!
//! All of it runs on one thread: futures need not be `Send`, and shared state
//! lives in `Rc<RefCell<_>>`. Every method that waits in the real world is
//! `async` here, so a scheduler can interleave tasks at exactly those points.

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use thiserror::Error;

use crate::model::{FileKey, MetaWrite, Record, ShardMeta};
use crate::placement::ClusterView;
use crate::protocol::{
    KeepAlive, MetadataRequest, RawDataRequest, RpcError, StartSessionReply, StartSessionRequest,
    TableShardMetadata,
};
use crate::types::{NodeId, Offset, ShardId, TableShardId, Timestamp};

/// One host's view of the world. Cloning is cheap (handles only).
///
/// *Clock*: [`Env::now`] is this host's wall clock, which may be skewed or jump;
/// [`Env::sleep`] waits a duration of true time. *Spawn*: tasks run
/// concurrently on the same thread and die with the host. *Randomness*:
/// [`Env::random_u64`] is the host's only random source.
pub trait Env: Clone + 'static {
    type Disk: Disk;
    type MetaStore: MetaStore;
    type Peer: PeerClient;
    type Cluster: Cluster;
    type Upstream: UpstreamLog;
    /// Awaiting it yields the spawned task's output.
    type JoinHandle<T: 'static>: Future<Output = T>;

    /// This host's id.
    fn node(&self) -> NodeId;
    /// This host's wall clock. Never fails; may be skewed or jump.
    fn now(&self) -> Timestamp;
    /// Wait `d` of true time.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
    /// Run `fut` as a task of this host; `name` appears in stall reports.
    fn spawn<T: 'static>(
        &self,
        name: &'static str,
        fut: impl Future<Output = T> + 'static,
    ) -> Self::JoinHandle<T>;
    /// A random number from the host's seeded source.
    fn random_u64(&self) -> u64;
    /// BUGGIFY (after FoundationDB): whether the named point should take its
    /// *legal but unlucky* path this time — an extra delay, a short read, a
    /// failed attempt that the code must handle anyway. Each point keeps the
    /// code correct; it only makes rare timings and failures common.
    ///
    /// Off outside simulation: a production binding returns `false`. The
    /// simulator switches each point on for a whole run with some
    /// probability the first time it is hit, then fires it by chance each
    /// time it is hit, and traces every firing.
    fn buggify(&self, point: &'static str) -> bool;
    /// Local files.
    fn disk(&self) -> &Self::Disk;
    /// Local durable metadata.
    fn metastore(&self) -> &Self::MetaStore;
    /// Open a connection to a peer host's data server. Fails when the host is
    /// unknown or cannot be dialled.
    fn dial(&self, host: NodeId) -> impl Future<Output = Result<Self::Peer, RpcError>>;
    /// Placement, schema and the placement service.
    fn cluster(&self) -> &Self::Cluster;
    /// The replayable upstream log each table shard ingests from.
    fn upstream(&self) -> &Self::Upstream;
}

/// How [`Disk::open`] treats an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Start empty.
    Truncate,
    /// Write from the start over the old content, keeping any longer tail
    /// (upstream's reopen of a fact vector party, quirk Q10).
    Overwrite,
    /// Write after the current end (redo logs).
    Append,
}

/// Errors a disk operation can return.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum DiskError {
    #[error("file not found")]
    NotFound,
    #[error("input/output error")]
    Io,
    #[error("no space left on device")]
    NoSpace,
    #[error("checksum mismatch")]
    Corrupt,
}

/// The content of a file as a read returns it (and as
/// [`WriteFile::write_shared`] hands it over): shared, not copied. Whole
/// batch files are written once and then read by backfill, preload, peer
/// copies and the oracle; a writer that changes a shared content copies it
/// first (`Rc::make_mut`).
pub type FileBytes = Rc<Vec<u8>>;

/// A host's local files. Writes become durable only at [`WriteFile::sync`]:
/// a crash loses (or tears) what was written since the last sync. Reads,
/// writes and syncs can fail with I/O errors or a full disk; a stored file may
/// be silently corrupted.
pub trait Disk {
    type File: WriteFile;
    fn open(
        &self,
        key: &FileKey,
        mode: OpenMode,
    ) -> impl Future<Output = Result<Self::File, DiskError>>;
    fn read(&self, key: &FileKey) -> impl Future<Output = Result<FileBytes, DiskError>>;
    /// The files of one table shard, in name order (a directory listing).
    fn list(&self, shard: &TableShardId) -> Vec<FileKey>;
    fn delete(&self, key: &FileKey) -> impl Future<Output = Result<(), DiskError>>;
    /// Atomically replace `to` with `from` (durable once done).
    fn rename(&self, from: &FileKey, to: &FileKey) -> impl Future<Output = Result<(), DiskError>>;
}

/// An open file being written.
pub trait WriteFile {
    /// Write `data` at the file's position (overwriting, then extending).
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<(), DiskError>>;
    /// [`WriteFile::write`] of bytes the caller keeps as well (a batch file
    /// that also stays in memory): a disk may share them instead of copying.
    fn write_shared(&mut self, data: FileBytes) -> impl Future<Output = Result<(), DiskError>> {
        async move { self.write(&data).await }
    }
    fn sync(&mut self) -> impl Future<Output = Result<(), DiskError>>;
}

/// Errors of the metastore.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MetaError {
    #[error("metastore input/output error")]
    Io,
}

/// A host's durable per-table-shard metadata. Each write is durable when it
/// returns; a write can fail with an I/O error.
pub trait MetaStore {
    /// The shard's metadata; a shard never written reads as the default.
    fn read(&self, shard: &TableShardId) -> impl Future<Output = Result<ShardMeta, MetaError>>;
    fn write(
        &self,
        shard: &TableShardId,
        update: MetaWrite,
    ) -> impl Future<Output = Result<(), MetaError>>;
    /// Forget everything about the shard.
    fn delete(&self, shard: &TableShardId) -> impl Future<Output = Result<(), MetaError>>;
}

/// A connection to one peer's data server. Any call can fail with
/// [`RpcError::Unavailable`] (host down, partition, lost message) or with the
/// server's own error.
pub trait PeerClient: 'static {
    type KeepAliveStream: KeepAliveClient;
    type RawStream: ChunkStream;
    /// Whether the peer's server is serving.
    fn health(&self) -> impl Future<Output = Result<bool, RpcError>>;
    fn start_session(
        &self,
        req: StartSessionRequest,
    ) -> impl Future<Output = Result<StartSessionReply, RpcError>>;
    /// Open the keep-alive stream; the first message sent binds the session.
    fn keep_alive(&self) -> impl Future<Output = Result<Self::KeepAliveStream, RpcError>>;
    fn fetch_metadata(
        &self,
        req: MetadataRequest,
    ) -> impl Future<Output = Result<TableShardMetadata, RpcError>>;
    fn fetch_raw_data(
        &self,
        req: RawDataRequest,
    ) -> impl Future<Output = Result<Self::RawStream, RpcError>>;
}

/// Client end of a keep-alive stream.
pub trait KeepAliveClient {
    fn send(&mut self, msg: KeepAlive) -> impl Future<Output = Result<(), RpcError>>;
    /// The next reply: the session's ttl; `None` when the server ended the
    /// stream.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Duration>, RpcError>>;
    /// End the stream cleanly (the server then removes the session).
    fn close(self);
}

/// What the server side of a stream receives next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming<T> {
    Message(T),
    /// The client ended the stream cleanly.
    Closed,
    /// The stream broke (client gone, connection cut).
    Broken,
}

/// Server end of a keep-alive stream.
pub trait KeepAliveServer {
    fn recv(&mut self) -> impl Future<Output = Incoming<KeepAlive>>;
    fn reply(&mut self, ttl: Duration);
    /// End the stream from the server side.
    fn end(self);
}

/// A stream of raw file chunks; `None` after the last one.
pub trait ChunkStream {
    fn next(&mut self) -> impl Future<Output = Result<Option<Vec<u8>>, RpcError>>;
}

/// Errors of the placement service.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("placement service unavailable")]
    Unavailable,
    #[error("shard {0} is not initializing on this node")]
    NotInitializing(ShardId),
}

/// Placement and schema as watched by a host, and the placement service.
pub trait Cluster {
    /// The latest view this host has seen.
    fn view(&self) -> Rc<ClusterView>;
    /// Wait for a view newer than `seen`.
    fn changed(&self, seen: u64) -> impl Future<Output = Rc<ClusterView>>;
    /// Ask the placement service to mark these `Initializing` replicas of
    /// `node` as `Available`. May fail or be slow.
    fn mark_available(
        &self,
        node: NodeId,
        shards: Vec<ShardId>,
    ) -> impl Future<Output = Result<(), ClusterError>>;
}

/// Errors reading the upstream log.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("upstream log unavailable")]
    Unavailable,
}

/// The ordered, replayable upstream log of every table shard (like Kafka).
pub trait UpstreamLog {
    /// Up to `max` records from `from` on; fewer (or none) at the head.
    fn read(
        &self,
        shard: &TableShardId,
        from: Offset,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Record>, UpstreamError>>;
}

/// Let every other ready task run before going on, on any executor: the
/// task wakes itself and is pending once. This is the point where upstream
/// releases a lock and takes another, so another goroutine may run in
/// between (quirk Q6). A zero [`Env::sleep`] is no such point: the
/// simulator's is ready at once.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
