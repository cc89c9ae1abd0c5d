//! Fake peer connections: `dial` returns a [`FakePeer`] that calls straight
//! into the registered [`PeerServer`] of the other host; raw-data streams
//! ([`FakeChunks`]) can be told to break, and keep-alive streams are served
//! by a spawned `serve_keep_alive` task.

use std::collections::VecDeque;

use futures::channel::mpsc;

use crate::env::{ChunkStream, Env, PeerClient};
use crate::peer_server::PeerServer;
use crate::protocol::{
    MetadataRequest, RawDataRequest, RpcError, StartSessionReply, StartSessionRequest,
    TableShardMetadata,
};
use crate::types::NodeId;

use super::keep_alive::{FakeKeepAliveClient, FakeKeepAliveServer};
use super::net::{FakeEnv, FakeNet, Host};

/// A client connection to another host's [`PeerServer`] in the same world.
pub(crate) struct FakePeer {
    pub(super) net: FakeNet,
    pub(super) host: NodeId,
}

impl FakePeer {
    fn server(&self) -> Result<PeerServer<FakeEnv>, RpcError> {
        let hosts = self.net.0.hosts.borrow();
        match hosts.get(&self.host) {
            Some(Host {
                server: Some(s),
                down: false,
                ..
            }) => Ok(s.clone()),
            _ => Err(RpcError::Unavailable(self.host)),
        }
    }
}

impl PeerClient for FakePeer {
    type KeepAliveStream = FakeKeepAliveClient;
    type RawStream = FakeChunks;

    async fn health(&self) -> Result<bool, RpcError> {
        let server = self.server()?;
        let unhealthy = self
            .net
            .0
            .hosts
            .borrow()
            .get(&self.host)
            .is_some_and(|h| h.unhealthy);
        Ok(!unhealthy && server.health())
    }

    async fn start_session(&self, req: StartSessionRequest) -> Result<StartSessionReply, RpcError> {
        Ok(self.server()?.start_session(req).await?)
    }

    async fn keep_alive(&self) -> Result<FakeKeepAliveClient, RpcError> {
        let server = self.server()?;
        let (up_tx, up_rx) = mpsc::unbounded();
        let (down_tx, down_rx) = mpsc::unbounded();
        let end = FakeKeepAliveServer {
            rx: up_rx,
            tx: down_tx,
        };
        // Detached: the stream's task runs until the stream ends.
        let _task = self
            .net
            .host(self.host)
            .spawn("keep_alive_server", async move {
                let _ = server.serve_keep_alive(end).await;
            });
        Ok(FakeKeepAliveClient {
            net: self.net.clone(),
            host: self.host,
            tx: up_tx,
            rx: down_rx,
        })
    }

    async fn fetch_metadata(&self, req: MetadataRequest) -> Result<TableShardMetadata, RpcError> {
        Ok(self.server()?.fetch_metadata(req).await?)
    }

    async fn fetch_raw_data(&self, req: RawDataRequest) -> Result<FakeChunks, RpcError> {
        let mut chunks: VecDeque<Vec<u8>> = self.server()?.fetch_raw_data(req).await?.into();
        let breaks = self.net.with_host(self.host, |h| {
            let b = h.break_raw > 0;
            h.break_raw = h.break_raw.saturating_sub(1);
            b
        });
        if breaks {
            chunks.truncate(1);
        }
        Ok(FakeChunks {
            net: self.net.clone(),
            host: self.host,
            chunks,
            breaks,
        })
    }
}

/// A raw-data stream: the server's chunks, then the end (or a break).
pub(crate) struct FakeChunks {
    pub(super) net: FakeNet,
    pub(super) host: NodeId,
    pub(super) chunks: VecDeque<Vec<u8>>,
    pub(super) breaks: bool,
}

impl ChunkStream for FakeChunks {
    async fn next(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        if self.net.is_down(self.host) {
            return Err(RpcError::StreamBroken(self.host));
        }
        match self.chunks.pop_front() {
            Some(c) => Ok(Some(c)),
            None if self.breaks => Err(RpcError::StreamBroken(self.host)),
            None => Ok(None),
        }
    }
}
