//! The peer-data protocol between a bootstrapping host (client) and a source
//! host (server): requests, replies and the errors either side can see.
//!
//! Optional ids are `Option` on purpose: upstream validates that the caller
//! set them and answers with a specific error when it did not.

use std::ops::RangeInclusive;
use std::time::Duration;

use thiserror::Error;

use crate::model::{BatchMeta, Cutoff, RedoPosition, SnapshotProgress};
use crate::types::{BatchId, ColumnId, NodeId, Offset, SessionId, ShardId, TableName};

/// Ask the source to open a copy session for one table shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartSessionRequest {
    pub table: TableName,
    pub shard: ShardId,
    pub node: Option<NodeId>,
    pub ttl: Duration,
}

/// The session the source opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartSessionReply {
    pub session: SessionId,
    pub ttl: Duration,
}

/// One keep-alive message; the first binds the stream to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    pub session: Option<SessionId>,
    pub node: Option<NodeId>,
}

/// Who is asking and for what: carried by every session-bound request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub session: Option<SessionId>,
    pub node: Option<NodeId>,
    pub table: TableName,
    pub shard: ShardId,
}

/// Ask for a table shard's metadata. `batches` is the range of batch ids
/// wanted (fact tables); `None` takes the server's default window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataRequest {
    pub session: SessionRef,
    pub batches: Option<RangeInclusive<BatchId>>,
}

/// A batch the source holds, with the columns present on its disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub id: BatchId,
    pub meta: BatchMeta,
    pub columns: Vec<ColumnId>,
}

/// The part of the metadata that depends on the table kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableMetadata {
    Fact {
        cutoff: Cutoff,
        backfill: RedoPosition,
        batches: Vec<BatchMetadata>,
    },
    Dimension {
        snapshot: SnapshotProgress,
        batches: Vec<BatchMetadata>,
    },
}

/// A table shard's metadata as the source reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShardMetadata {
    pub commit_offset: Offset,
    pub checkpoint_offset: Offset,
    pub table: TableMetadata,
}

/// Which vector party to stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VectorPartyRef {
    Fact {
        batch: BatchId,
        version: Cutoff,
        seq: u32,
        column: ColumnId,
    },
    Snapshot {
        redo: RedoPosition,
        batch: BatchId,
        column: ColumnId,
    },
}

/// Ask for the raw bytes of one vector-party file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawDataRequest {
    pub session: SessionRef,
    pub vector_party: VectorPartyRef,
}

/// Largest chunk the source sends when streaming a file.
pub const CHUNK_BYTES: usize = 32 * 1024;

/// Errors the peer-data server answers with. The display strings follow
/// upstream's messages, which tests and traces match on.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PeerError {
    #[error("caller node id not set")]
    CallerNotSet,
    #[error("session id not set")]
    SessionNotSet,
    #[error("invalid session id {0}")]
    InvalidSession(SessionId),
    #[error("table/shard not match")]
    Mismatch,
    #[error("table {0} does not exist")]
    UnknownTable(String),
    #[error("session already running from the same node")]
    SessionAlreadyRunning,
    #[error("file not found")]
    FileNotFound,
    #[error("disk error on source: {0}")]
    Disk(String),
    #[error("peer is not ready to serve")]
    NotReady,
    /// A background job holds the table shard's token (quirk Q9 off): no new
    /// session may start until it is released.
    #[error("table shard is held by a background job")]
    TokenHeld,
}

/// What a client sees when a peer call fails.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RpcError {
    /// The request or reply did not arrive (host down, partition, drop).
    #[error("peer {0} unavailable")]
    Unavailable(NodeId),
    /// An open stream broke before it ended cleanly.
    #[error("stream from {0} broken")]
    StreamBroken(NodeId),
    /// The server answered with an error.
    #[error("{0}")]
    Server(#[from] PeerError),
}
