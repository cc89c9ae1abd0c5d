//! The simulated network carrying the peer-data protocol: unary calls with a
//! seeded latency each way, and ordered streams (keep-alive, raw data).
//!
//! A call reaches the target host's [`PeerServer`] only if that host is
//! running; otherwise the caller sees [`RpcError::Unavailable`]. Streams are
//! *delay lines*: each message is stamped with its delivery time (never
//! before the previous one: the stream is ordered, like TCP) and the
//! receiver waits until then. A stream whose other end is dropped without a
//! clean end reads as broken.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardboot::env::{ChunkStream, Incoming, KeepAliveClient, KeepAliveServer, PeerClient};
use shardboot::peer_server::PeerServer;
use shardboot::protocol::{
    KeepAlive, MetadataRequest, RawDataRequest, RpcError, StartSessionReply, StartSessionRequest,
    TableShardMetadata, VectorPartyRef,
};
use shardboot::types::NodeId;

use crate::executor::{self, sleep, sleep_until};
use crate::sync::{Receiver, Sender, mailbox};
use crate::time::VirtualTime;
use crate::world::{Defect, SimEnv, WorldRef};

/// Network timing. Part of a scenario (`[network]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// One-way latency, drawn uniformly from `latency_min..=latency_max`.
    #[serde(with = "crate::scenario::duration")]
    pub latency_min: Duration,
    #[serde(with = "crate::scenario::duration")]
    pub latency_max: Duration,
    /// Transfer rate of raw-data streams, bytes per second.
    pub bandwidth: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(5),
            bandwidth: 50 * 1024 * 1024,
        }
    }
}

/// A connection from one host to another host's data server.
#[derive(Clone)]
pub struct SimPeer {
    to: NodeId,
    world: WorldRef,
}

impl SimPeer {
    pub(crate) fn new(to: NodeId, world: WorldRef) -> SimPeer {
        SimPeer { to, world }
    }

    fn server(&self) -> Result<Rc<PeerServer<SimEnv>>, RpcError> {
        self.world
            .server(self.to)
            .ok_or(RpcError::Unavailable(self.to))
    }

    /// One request/reply exchange: latency there, the server's work,
    /// latency back. Fails if the target is down when the request arrives.
    async fn call<T>(
        &self,
        f: impl AsyncFnOnce(Rc<PeerServer<SimEnv>>) -> T,
    ) -> Result<T, RpcError> {
        sleep(self.world.latency()).await;
        let out = f(self.server()?).await;
        sleep(self.world.latency()).await;
        Ok(out)
    }
}

impl PeerClient for SimPeer {
    type KeepAliveStream = SimKeepAliveClient;
    type RawStream = SimChunkStream;

    async fn health(&self) -> Result<bool, RpcError> {
        self.call(async |s| s.health()).await
    }

    async fn start_session(&self, req: StartSessionRequest) -> Result<StartSessionReply, RpcError> {
        Ok(self.call(async |s| s.start_session(req).await).await??)
    }

    async fn keep_alive(&self) -> Result<SimKeepAliveClient, RpcError> {
        sleep(self.world.latency()).await;
        let server = self.server()?;
        let (to_server, from_client) = link(self.world.clone());
        let (to_client, from_server) = link(self.world.clone());
        executor::spawn_on("keep_alive_server", Some(self.to), async move {
            let stream = SimKeepAliveServer {
                from_client,
                to_client,
            };
            if let Err(e) = server.serve_keep_alive(stream).await {
                tracing::debug!(target: "sim::net", error = %e, "keep_alive_stream_rejected");
            }
        });
        Ok(SimKeepAliveClient {
            peer: self.to,
            to_server,
            from_server,
        })
    }

    async fn fetch_metadata(&self, req: MetadataRequest) -> Result<TableShardMetadata, RpcError> {
        Ok(self.call(async |s| s.fetch_metadata(req).await).await??)
    }

    async fn fetch_raw_data(&self, req: RawDataRequest) -> Result<SimChunkStream, RpcError> {
        let fact = matches!(req.vector_party, VectorPartyRef::Fact { .. });
        let mut chunks = self.call(async |s| s.fetch_raw_data(req).await).await??;
        if fact && self.world.defect_fires(Defect::EmptyFirstFactRawDataStream) {
            chunks.clear();
        }
        Ok(SimChunkStream {
            peer: self.to,
            chunks: chunks.into(),
            world: self.world.clone(),
        })
    }
}

/// Sending end of a delay line.
pub(crate) struct LinkSender<T> {
    tx: Sender<(VirtualTime, T)>,
    last: VirtualTime,
    world: WorldRef,
}

/// Receiving end of a delay line: `None` when the sender is gone.
pub(crate) struct LinkReceiver<T> {
    rx: Receiver<(VirtualTime, T)>,
}

fn link<T>(world: WorldRef) -> (LinkSender<T>, LinkReceiver<T>) {
    let (tx, rx) = mailbox();
    (
        LinkSender {
            tx,
            last: VirtualTime::ZERO,
            world,
        },
        LinkReceiver { rx },
    )
}

impl<T> LinkSender<T> {
    /// Queue a message; false if the receiver is gone.
    fn send(&mut self, msg: T) -> bool {
        let at = (executor::now() + self.world.latency()).max(self.last);
        self.last = at;
        self.tx.send((at, msg)).is_ok()
    }
}

impl<T> LinkReceiver<T> {
    async fn recv(&mut self) -> Option<T> {
        let (at, msg) = self.rx.recv().await?;
        sleep_until(at).await;
        Some(msg)
    }
}

enum ClientMsg {
    KeepAlive(KeepAlive),
    End,
}

enum ServerMsg {
    Ttl(Duration),
    End,
}

/// Client end of a keep-alive stream.
pub struct SimKeepAliveClient {
    peer: NodeId,
    to_server: LinkSender<ClientMsg>,
    from_server: LinkReceiver<ServerMsg>,
}

impl KeepAliveClient for SimKeepAliveClient {
    async fn send(&mut self, msg: KeepAlive) -> Result<(), RpcError> {
        if self.to_server.send(ClientMsg::KeepAlive(msg)) {
            Ok(())
        } else {
            Err(RpcError::StreamBroken(self.peer))
        }
    }

    async fn recv(&mut self) -> Result<Option<Duration>, RpcError> {
        match self.from_server.recv().await {
            Some(ServerMsg::Ttl(ttl)) => Ok(Some(ttl)),
            Some(ServerMsg::End) => Ok(None),
            None => Err(RpcError::StreamBroken(self.peer)),
        }
    }

    fn close(mut self) {
        self.to_server.send(ClientMsg::End);
    }
}

/// Server end of a keep-alive stream.
pub struct SimKeepAliveServer {
    from_client: LinkReceiver<ClientMsg>,
    to_client: LinkSender<ServerMsg>,
}

impl KeepAliveServer for SimKeepAliveServer {
    async fn recv(&mut self) -> Incoming<KeepAlive> {
        match self.from_client.recv().await {
            Some(ClientMsg::KeepAlive(m)) => Incoming::Message(m),
            Some(ClientMsg::End) => Incoming::Closed,
            None => Incoming::Broken,
        }
    }

    fn reply(&mut self, ttl: Duration) {
        self.to_client.send(ServerMsg::Ttl(ttl));
    }

    fn end(mut self) {
        self.to_client.send(ServerMsg::End);
    }
}

/// A raw-data stream: the file's chunks, each arriving after its transfer
/// time.
pub struct SimChunkStream {
    peer: NodeId,
    chunks: VecDeque<Vec<u8>>,
    world: WorldRef,
}

impl ChunkStream for SimChunkStream {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        let Some(chunk) = self.chunks.pop_front() else {
            return Ok(None);
        };
        sleep(self.world.transfer_time(chunk.len())).await;
        if self.world.server(self.peer).is_none() {
            return Err(RpcError::StreamBroken(self.peer));
        }
        Ok(Some(chunk))
    }
}
