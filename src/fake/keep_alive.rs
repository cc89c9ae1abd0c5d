//! Fake keep-alive streams: a pair of channels, the client end
//! ([`FakeKeepAliveClient`]) and the server end ([`FakeKeepAliveServer`]);
//! dropping either end without closing it breaks the stream, and a host that
//! is down breaks every call.

use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;

use crate::env::{Incoming, KeepAliveClient, KeepAliveServer};
use crate::protocol::{KeepAlive, RpcError};
use crate::types::NodeId;

use super::net::FakeNet;

pub(super) enum Up {
    Message(KeepAlive),
    Closed,
}

pub(super) enum Down {
    Ttl(Duration),
    End,
}

/// Client end of a fake keep-alive stream. Dropping it without
/// [`KeepAliveClient::close`] breaks the stream.
pub(crate) struct FakeKeepAliveClient {
    pub(super) net: FakeNet,
    pub(super) host: NodeId,
    pub(super) tx: mpsc::UnboundedSender<Up>,
    pub(super) rx: mpsc::UnboundedReceiver<Down>,
}

impl KeepAliveClient for FakeKeepAliveClient {
    async fn send(&mut self, msg: KeepAlive) -> Result<(), RpcError> {
        if self.net.is_down(self.host) {
            return Err(RpcError::Unavailable(self.host));
        }
        self.tx
            .unbounded_send(Up::Message(msg))
            .map_err(|_| RpcError::StreamBroken(self.host))
    }

    async fn recv(&mut self) -> Result<Option<Duration>, RpcError> {
        if self.net.is_down(self.host) {
            return Err(RpcError::StreamBroken(self.host));
        }
        match self.rx.next().await {
            Some(Down::Ttl(ttl)) => Ok(Some(ttl)),
            Some(Down::End) => Ok(None),
            None => Err(RpcError::StreamBroken(self.host)),
        }
    }

    fn close(self) {
        let _ = self.tx.unbounded_send(Up::Closed);
    }
}

/// Server end of a fake keep-alive stream. Dropping it without
/// [`KeepAliveServer::end`] breaks the stream for the client.
pub(crate) struct FakeKeepAliveServer {
    pub(super) rx: mpsc::UnboundedReceiver<Up>,
    pub(super) tx: mpsc::UnboundedSender<Down>,
}

impl FakeKeepAliveServer {
    /// A connected pair, for tests that drive `serve_keep_alive` by hand.
    pub(crate) fn pair(net: &FakeNet, host: NodeId) -> (FakeKeepAliveClient, FakeKeepAliveServer) {
        let (up_tx, up_rx) = mpsc::unbounded();
        let (down_tx, down_rx) = mpsc::unbounded();
        (
            FakeKeepAliveClient {
                net: net.clone(),
                host,
                tx: up_tx,
                rx: down_rx,
            },
            FakeKeepAliveServer {
                rx: up_rx,
                tx: down_tx,
            },
        )
    }
}

impl KeepAliveServer for FakeKeepAliveServer {
    async fn recv(&mut self) -> Incoming<KeepAlive> {
        match self.rx.next().await {
            Some(Up::Message(m)) => Incoming::Message(m),
            Some(Up::Closed) => Incoming::Closed,
            None => Incoming::Broken,
        }
    }

    fn reply(&mut self, ttl: Duration) {
        let _ = self.tx.unbounded_send(Down::Ttl(ttl));
    }

    fn end(self) {
        let _ = self.tx.unbounded_send(Down::End);
    }
}
