//! The simulated network carrying the peer-data protocol: unary calls with a
//! seeded latency each way, and ordered streams (keep-alive, raw data).
//!
//! A call reaches the target host's [`PeerServer`] only if that host is
//! running; otherwise the caller sees [`RpcError::Unavailable`]. Streams are
//! *delay lines*: each message is stamped with its delivery time (never
//! before the previous one: the stream is ordered, like TCP) and the
//! receiver waits until then. A stream whose other end is dropped without a
//! clean end reads as broken. A paused host ([`crate::world::lifecycle`]) answers
//! late: its server-side work is parked with its other tasks, and its
//! raw-data streams send nothing until it resumes.
//!
//! Network faults ([`crate::world::faults`]) act here: every hop and stream
//! message may be slow (tail latency) or held on its link; a unary request
//! or reply may be lost (a partition, a drop: the caller sees "unavailable"
//! after the fault plan's timeout) or duplicated (the server executes the
//! request twice; the second reply is discarded); a keep-alive message may
//! be delivered twice; a stream may be cut mid-transfer (both ends read it
//! as broken). A health check may answer "not serving" while the peer is
//! unhealthy. Not modelled: loss or reordering *within* a stream (TCP).

use std::any::Any;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use shardboot::env::{
    ChunkStream, Disk, Env, Incoming, KeepAliveClient, KeepAliveServer, PeerClient,
};
use shardboot::peer_server::PeerServer;
use shardboot::protocol::{
    KeepAlive, MetadataRequest, RawDataRequest, RpcError, StartSessionReply, StartSessionRequest,
    TableShardMetadata, VectorPartyRef,
};
use shardboot::types::{NodeId, TableShardId};

use crate::engine::executor::{self, sleep, sleep_until};
use crate::engine::sync::{Receiver, Sender, mailbox};
use crate::engine::time::VirtualTime;
use crate::world::defect::Defect;
use crate::world::disk::NodeDisk;
use crate::world::faults::Faults;
use crate::world::faults::StreamCut;
use crate::world::listings::Listings;
use crate::world::listings::listed_files;

/// Network timing. Part of a scenario (`[network]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// One-way latency, drawn uniformly from `latency_min..=latency_max`.
    #[serde(with = "crate::engine::duration")]
    pub latency_min: Duration,
    /// Longest one-way latency.
    #[serde(with = "crate::engine::duration")]
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

/// What the network needs of the world it carries messages in: link
/// timing, the fault state, what sessions were told, the planted defects
/// of the peer protocol and the hosts' disks. The world's state implements
/// it; the network names only this trait, so it sits below the world that
/// owns it.
pub trait NetWorld {
    /// The fault state every hop, message and chunk consults.
    fn faults(&self) -> &Faults;
    /// One network hop's latency (a draw of the `"net"` stream).
    fn latency(&self) -> Duration;
    /// Time to move `bytes` over a stream.
    fn transfer_time(&self, bytes: usize) -> Duration;
    /// Where metadata replies are recorded for the oracle.
    fn listings(&self) -> &Listings;
    /// Whether the planted `defect` fires now (once).
    fn defect_fires(&self, defect: Defect) -> bool;
    /// Whether this raw-data request must fail (a planted defect).
    fn breaks_vector_party(&self, req: &RawDataRequest) -> bool;
    /// The disk of `node`.
    fn disk(&self, node: NodeId) -> &NodeDisk;
    /// Keep `stream` open until the world ends ([`Defect::LoseFirstSessionEnd`]).
    fn strand(&self, stream: Box<dyn Any>);
}

/// The running peer servers of a world whose hosts run on `E`.
pub trait Servers<E: Env>: NetWorld {
    /// The running peer server of `node`, if its process is up.
    fn server(&self, node: NodeId) -> Option<Rc<PeerServer<E>>>;
}

/// A connection from one host (`from`) to another host's data server.
pub struct SimPeer<E: Env> {
    from: NodeId,
    to: NodeId,
    world: Rc<dyn Servers<E>>,
}

impl<E: Env> Clone for SimPeer<E> {
    fn clone(&self) -> Self {
        SimPeer {
            from: self.from,
            to: self.to,
            world: Rc::clone(&self.world),
        }
    }
}

impl<E: Env> SimPeer<E> {
    pub(crate) fn new(from: NodeId, to: NodeId, world: Rc<dyn Servers<E>>) -> SimPeer<E> {
        SimPeer { from, to, world }
    }

    /// One message from `from` to `to`: its latency (and any tail), a held
    /// link waited out; if it is lost (partition, drop) the caller learns
    /// it only after the timeout, as "peer unavailable".
    async fn hop(&self, from: NodeId, to: NodeId) -> Result<(), RpcError> {
        let faults = self.world.faults();
        sleep(self.world.latency() + faults.tail_latency()).await;
        faults.wait_released(from, to, None).await;
        if faults.message_lost(from, to) {
            sleep(faults.timeout()).await;
            return Err(RpcError::Unavailable(self.to));
        }
        Ok(())
    }

    /// The duplicate of a request (`net.duplicate`): it reaches the server
    /// `delay` after it was sent, unless lost on the way, and the server
    /// executes it again; its reply goes nowhere.
    fn duplicate<T: 'static, F: Future<Output = T> + 'static>(
        &self,
        delay: Duration,
        f: Rc<impl Fn(Rc<PeerServer<E>>) -> F + 'static>,
    ) {
        let peer = self.clone();
        let _dup = executor::spawn_on("duplicate_request", Some(self.to), async move {
            let faults = peer.world.faults();
            sleep(delay).await;
            faults.wait_released(peer.from, peer.to, None).await;
            if faults.message_lost(peer.from, peer.to) {
                return;
            }
            if let Ok(server) = peer.server() {
                f(server).await;
            }
        });
    }

    fn server(&self) -> Result<Rc<PeerServer<E>>, RpcError> {
        self.world
            .server(self.to)
            .ok_or(RpcError::Unavailable(self.to))
    }

    /// One request/reply exchange: latency there, the server's work as a
    /// task *of the server host* (so it dies with it and its trace events
    /// carry its node), latency back. Fails if the target is down when the
    /// request arrives or dies before it answers.
    async fn call<T: 'static, F: Future<Output = T> + 'static>(
        &self,
        name: &'static str,
        f: impl Fn(Rc<PeerServer<E>>) -> F + 'static,
    ) -> Result<T, RpcError> {
        let f = Rc::new(f);
        let faults = self.world.faults();
        if let Some(delay) = faults.duplicate_request(self.from, self.to, name) {
            self.duplicate(delay, Rc::clone(&f));
        }
        self.hop(self.from, self.to).await?;
        let work = f(self.server()?);
        let (reply, answer) = oneshot::channel();
        executor::spawn_on("peer_rpc", Some(self.to), async move {
            let _ = reply.send(work.await);
        });
        let out = answer.await.map_err(|_| RpcError::Unavailable(self.to))?;
        self.hop(self.to, self.from).await?;
        Ok(out)
    }
}

impl<E: Env> PeerClient for SimPeer<E> {
    type KeepAliveStream = SimKeepAliveClient;
    type RawStream = SimChunkStream<E>;

    async fn health(&self) -> Result<bool, RpcError> {
        let serving = self.call("health", |s| async move { s.health() }).await?;
        Ok(serving && !self.world.faults().is_unhealthy(self.to))
    }

    async fn start_session(&self, req: StartSessionRequest) -> Result<StartSessionReply, RpcError> {
        let call = move |s: Rc<PeerServer<E>>| {
            let req = req.clone();
            async move { s.start_session(req).await }
        };
        Ok(self.call("start_session", call).await??)
    }

    async fn keep_alive(&self) -> Result<SimKeepAliveClient, RpcError> {
        self.hop(self.from, self.to).await?;
        let server = self.server()?;
        let cut = self.world.faults().register_stream(self.from, self.to);
        let (to_server, from_client) = link(
            &(Rc::clone(&self.world) as Rc<dyn NetWorld>),
            self.from,
            self.to,
            &cut,
        );
        let (to_client, from_server) = link(
            &(Rc::clone(&self.world) as Rc<dyn NetWorld>),
            self.to,
            self.from,
            &cut,
        );
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
        let session = req.session.clone();
        let call = move |s: Rc<PeerServer<E>>| {
            let req = req.clone();
            async move { s.fetch_metadata(req).await }
        };
        let metadata = self.call("fetch_metadata", call).await??;
        self.world.listings().record(self.to, &session, &metadata);
        let shard = TableShardId::new(session.table.clone(), session.shard);
        if let Some(first) = listed_files(&shard, &metadata).into_iter().next()
            && self.world.defect_fires(Defect::DeleteFirstListedFile)
        {
            let disk = self.world.disk(self.to).clone();
            executor::spawn_on("rogue_cleanup", Some(self.to), async move {
                let _ = Disk::delete(&disk, &first).await;
            });
        }
        Ok(metadata)
    }

    async fn fetch_raw_data(&self, req: RawDataRequest) -> Result<SimChunkStream<E>, RpcError> {
        let fact = matches!(req.vector_party, VectorPartyRef::Fact { .. });
        if fact && self.world.breaks_vector_party(&req) {
            sleep(self.world.latency()).await;
            return Err(RpcError::StreamBroken(self.to));
        }
        let call = move |s: Rc<PeerServer<E>>| {
            let req = req.clone();
            async move { s.fetch_raw_data(req).await }
        };
        let mut chunks = self.call("fetch_raw_data", call).await??;
        if fact && self.world.defect_fires(Defect::EmptyFirstFactRawDataStream) {
            chunks.clear();
        }
        // Flip a bit of the first row's value (bytes 8..16 of a row).
        if fact
            && chunks.first().is_some_and(|c| c.len() >= 16)
            && self
                .world
                .defect_fires(Defect::AlteredFirstFactRawDataStream)
        {
            chunks[0][8] ^= 1;
        }
        Ok(SimChunkStream {
            peer: self.to,
            server: self
                .world
                .server(self.to)
                .as_ref()
                .map_or_else(Weak::new, Rc::downgrade),
            client: self.from,
            chunks: chunks.into(),
            cut: self.world.faults().register_stream(self.from, self.to),
            world: self.world.clone(),
        })
    }
}

/// The ends of one direction of a stream: its hosts, the world, and the
/// stream's shared cut switch.
struct LinkEnds {
    from: NodeId,
    to: NodeId,
    world: Rc<dyn NetWorld>,
    cut: Rc<StreamCut>,
}

/// Sending end of a delay line.
pub(crate) struct LinkSender<T> {
    tx: Sender<(VirtualTime, T)>,
    last: VirtualTime,
    ends: LinkEnds,
}

/// Receiving end of a delay line: `None` when the sender is gone or the
/// stream was cut.
pub(crate) struct LinkReceiver<T> {
    rx: Receiver<(VirtualTime, T)>,
    ends: LinkEnds,
}

/// A delay line from `from` to `to`, part of the stream whose switch is
/// `cut`.
fn link<T>(
    world: &Rc<dyn NetWorld>,
    from: NodeId,
    to: NodeId,
    cut: &Rc<StreamCut>,
) -> (LinkSender<T>, LinkReceiver<T>) {
    let (tx, rx) = mailbox();
    let ends = || LinkEnds {
        from,
        to,
        world: Rc::clone(world),
        cut: Rc::clone(cut),
    };
    (
        LinkSender {
            tx,
            last: VirtualTime::ZERO,
            ends: ends(),
        },
        LinkReceiver { rx, ends: ends() },
    )
}

impl<T: Clone> LinkSender<T> {
    /// Queue a message (twice if `duplicable` and the fault plan says so);
    /// false if the receiver is gone or the stream is cut.
    fn send(&mut self, msg: T, duplicable: bool) -> bool {
        let LinkEnds {
            from,
            to,
            world,
            cut,
        } = &self.ends;
        let faults = world.faults();
        if faults.stream_broken(*from, *to, cut, "keep_alive") {
            return false;
        }
        let at = (executor::now() + world.latency() + faults.tail_latency()).max(self.last);
        self.last = at;
        if duplicable && faults.duplicate_message(*from, *to) {
            let _ = self.tx.send((at, msg.clone()));
        }
        self.tx.send((at, msg)).is_ok()
    }
}

impl<T> LinkReceiver<T> {
    async fn recv(&mut self) -> Option<T> {
        let cut = &*self.ends.cut;
        let (at, msg) = until_cut(cut, self.rx.recv()).await?;
        sleep_until(at).await;
        let (from, to) = (self.ends.from, self.ends.to);
        self.ends
            .world
            .faults()
            .wait_released(from, to, Some(cut))
            .await;
        (!cut.is_cut()).then_some(msg)
    }
}

/// `fut`'s output, or `None` as soon as the stream is cut.
async fn until_cut<T>(cut: &StreamCut, fut: impl Future<Output = Option<T>>) -> Option<T> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if cut.is_cut() {
            return Poll::Ready(None);
        }
        let out = fut.as_mut().poll(cx);
        if out.is_pending() {
            cut.wake_on_cut(cx.waker());
        }
        out
    })
    .await
}

#[derive(Clone)]
enum ClientMsg {
    KeepAlive(KeepAlive),
    End,
}

#[derive(Clone)]
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
        if self.to_server.send(ClientMsg::KeepAlive(msg), true) {
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
        let world = Rc::clone(&self.to_server.ends.world);
        if world.defect_fires(Defect::LoseFirstSessionEnd) {
            world.strand(Box::new(self));
            return;
        }
        self.to_server.send(ClientMsg::End, false);
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
        self.to_client.send(ServerMsg::Ttl(ttl), true);
    }

    fn end(mut self) {
        self.to_client.send(ServerMsg::End, false);
    }
}

/// A raw-data stream from `peer` to `client`: the file's chunks, each
/// arriving after its transfer time, while the process that serves it runs
/// (it breaks if the source crashes, even if it restarted since).
pub struct SimChunkStream<E: Env> {
    peer: NodeId,
    /// The serving process (compared by address, never upgraded).
    server: Weak<PeerServer<E>>,
    client: NodeId,
    chunks: VecDeque<Vec<u8>>,
    cut: Rc<StreamCut>,
    world: Rc<dyn Servers<E>>,
}

impl<E: Env> ChunkStream for SimChunkStream<E> {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        let broken = Err(RpcError::StreamBroken(self.peer));
        if self.cut.is_cut() {
            return broken;
        }
        let Some(chunk) = self.chunks.pop_front() else {
            return Ok(None);
        };
        // A paused source sends nothing; a restarted one is another process.
        executor::until_running(self.peer).await;
        let faults = self.world.faults();
        sleep(self.world.transfer_time(chunk.len()) + faults.tail_latency()).await;
        let same_process = self
            .world
            .server(self.peer)
            .is_some_and(|s| Rc::as_ptr(&s) == self.server.as_ptr());
        if !same_process {
            return broken;
        }
        faults
            .wait_released(self.peer, self.client, Some(&self.cut))
            .await;
        if faults.stream_broken(self.peer, self.client, &self.cut, "raw_data") {
            return broken;
        }
        Ok(Some(chunk))
    }
}
