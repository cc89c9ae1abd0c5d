//! The peer-data server's state: [`PeerServer`] (a cheap, shared handle),
//! its open sessions ([`SessionInfo`]) and granted tokens behind one
//! `RefCell`, its readiness, and the checks every request shares (quirk
//! switches, the table's schema). The request handlers in the sibling files
//! add methods to [`PeerServer`] and read this state.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;

use crate::env::{Cluster, Env};
use crate::model::TableSchema;
use crate::options::Options;
use crate::protocol::PeerError;
use crate::quirks::Quirk;
use crate::types::{NodeId, SessionId, TableShardId, Timestamp};

/// The `tracing` target of every event of the peer-data server:
/// `shardboot::peer_server`, the module they were written in before it was
/// split. The simulator's trace hash covers event targets, so moving code
/// must not change them.
pub(super) const TARGET: &str = "shardboot::peer_server";

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
    /// Whether a keep-alive stream bound it: only then did its client
    /// surely learn of it (a lost start reply leaves a session no client
    /// knows, which only expiry ends).
    pub bound: bool,
}

/// A session and, once a keep-alive stream is bound to it, the switch that
/// ends that stream from the server side when the session is swept.
pub(super) struct Session {
    pub(super) info: SessionInfo,
    pub(super) stop: Option<oneshot::Sender<()>>,
}

/// Everything mutable, behind one `RefCell`; never borrowed across an await.
#[derive(Default)]
pub(super) struct State {
    pub(super) ready: bool,
    /// Last session id handed out; ids start at 1.
    pub(super) last_id: u64,
    pub(super) sessions: BTreeMap<SessionId, Session>,
    /// Tokens granted and not yet released, per table shard (Q9 off only).
    pub(super) tokens: BTreeMap<TableShardId, u32>,
}

/// The peer-data server of one host. Cloning is cheap and shares the state,
/// so every request handler (and the keep-alive task) can hold one.
pub struct PeerServer<E: Env> {
    pub(super) inner: Rc<Inner<E>>,
}

pub(super) struct Inner<E: Env> {
    pub(super) env: E,
    pub(super) options: Rc<Options>,
    pub(super) state: RefCell<State>,
}

impl<E: Env> Clone for PeerServer<E> {
    fn clone(&self) -> Self {
        PeerServer {
            inner: Rc::clone(&self.inner),
        }
    }
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

    pub(super) fn quirk(&self, q: Quirk) -> bool {
        self.inner.options.quirks.on(q)
    }

    /// Mark the host ready (or not) to serve peer copies.
    pub fn set_ready(&self, ready: bool) {
        self.inner.state.borrow_mut().ready = ready;
        tracing::info!(target: TARGET, ready, "peer_server_readiness_set");
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

    pub(super) fn schema(&self, table: &str) -> Result<TableSchema, PeerError> {
        self.inner
            .env
            .cluster()
            .view()
            .tables
            .get(table)
            .cloned()
            .ok_or_else(|| PeerError::UnknownTable(table.to_string()))
    }
}

/// A caller id for traces (`-` when unset).
pub(super) fn show(node: Option<NodeId>) -> String {
    node.map_or_else(|| "-".to_string(), |n| n.to_string())
}
