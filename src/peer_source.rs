//! The peer source: connections to the data servers of the hosts in the
//! current placement, and `borrow_connection`, which runs a copy on the first
//! candidate host that can be reached and is healthy (docs/MODEL.md §2 step
//! 4.3, upstream `datanode/peer_source.go`).
//!
//! Connections are dialled lazily on first borrow and kept; a host that
//! leaves the placement is forgotten and its connection closed. Quirk Q11
//! reproduces upstream's loop-variable capture: the close hits whichever
//! peer the loop variable holds when the close runs — the last one iterated
//! — which then stays closed for as long as it stays in the placement.
//!
//! Deliberately not modelled: waiting for in-flight borrows before closing
//! (a borrow in progress keeps its connection handle and finishes; only
//! later borrows see the peer closed), and connection-level keep-alive.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use thiserror::Error;

use crate::env::{Env, PeerClient};
use crate::options::Options;
use crate::placement::Placement;
use crate::protocol::RpcError;
use crate::quirks::Quirk;
use crate::types::NodeId;

/// Why one candidate host could not be borrowed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PeerUnavailable {
    /// Not in the placement the peer source knows.
    #[error("peer does not exist")]
    Unknown,
    /// Its connection was closed (with Q11 on, possibly by mistake).
    #[error("peer closed")]
    Closed,
    #[error("dial failed: {0}")]
    Dial(RpcError),
    #[error("health check failed: {0}")]
    HealthCheck(RpcError),
    /// The health check answered "not serving" (the peer is not ready).
    #[error("unhealthy peer: not serving")]
    NotServing,
}

/// No candidate host could be borrowed; every host's reason, in the order
/// tried.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("no peer could be borrowed: {}", Reasons(.reasons))]
pub struct NoPeerAvailable {
    pub reasons: Vec<(NodeId, PeerUnavailable)>,
}

/// Display helper: `n1: peer closed; n3: peer does not exist`.
struct Reasons<'a>(&'a [(NodeId, PeerUnavailable)]);

impl fmt::Display for Reasons<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no candidate hosts");
        }
        for (i, (host, reason)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{host}: {reason}")?;
        }
        Ok(())
    }
}

/// One known host: its connection once dialled, and whether it was closed.
struct Peer<E: Env> {
    conn: Option<Rc<E::Peer>>,
    closed: bool,
}

impl<E: Env> Peer<E> {
    fn new() -> Self {
        Peer {
            conn: None,
            closed: false,
        }
    }

    /// Close the connection. Like upstream, a peer that was never dialled
    /// has nothing to close and stays usable.
    fn close(&mut self) -> bool {
        if self.conn.take().is_some() {
            self.closed = true;
            true
        } else {
            false
        }
    }
}

/// Connections of one host to its peers' data servers.
pub struct PeerSource<E: Env> {
    env: E,
    options: Rc<Options>,
    peers: RefCell<BTreeMap<NodeId, Peer<E>>>,
}

impl<E: Env> PeerSource<E> {
    /// A peer source knowing the hosts of `placement` (none dialled yet).
    pub fn new(env: E, options: Rc<Options>, placement: &Placement) -> Self {
        let source = PeerSource {
            env,
            options,
            peers: RefCell::new(BTreeMap::new()),
        };
        source.on_placement_change(placement);
        source
    }

    /// Follow a new placement: learn new hosts, forget those that left and
    /// close their connections (Q11 on: close the last iterated peer's
    /// connection instead, once per leaving host).
    pub fn on_placement_change(&self, placement: &Placement) {
        let hosts = placement.hosts();
        let mut peers = self.peers.borrow_mut();
        for host in &hosts {
            peers.entry(*host).or_insert_with(|| {
                tracing::debug!(host = %host, "peer_added");
                Peer::new()
            });
        }
        // Upstream iterates every peer, deleting the leaving ones and
        // starting a close for each; the closes run after the loop.
        let last_iterated = peers.keys().next_back().copied();
        let leaving: Vec<NodeId> = peers
            .keys()
            .filter(|h| !hosts.contains(h))
            .copied()
            .collect();
        for host in leaving {
            let Some(mut removed) = peers.remove(&host) else {
                continue;
            };
            tracing::info!(host = %host, "peer_removed");
            let (target, closed) = match last_iterated {
                Some(last) if self.options.quirks.on(Quirk::Q11) && last != host => {
                    let closed = peers.get_mut(&last).is_some_and(Peer::close);
                    (last, closed)
                }
                _ => (host, removed.close()),
            };
            if closed {
                tracing::info!(host = %target, leaving = %host, "peer_connection_closed");
            }
        }
    }

    /// The hosts known from the placement, in id order.
    pub fn known_hosts(&self) -> Vec<NodeId> {
        self.peers.borrow().keys().copied().collect()
    }

    /// Whether `host`'s connection was closed while it stayed known.
    pub fn is_closed(&self, host: NodeId) -> bool {
        self.peers.borrow().get(&host).is_some_and(|p| p.closed)
    }

    /// Try `hosts` in order; skip a host only if it is unknown, closed,
    /// cannot be dialled, or is unhealthy. On the first that answers, run
    /// `f(host, connection)` once and return its result, whatever it is (a
    /// failed copy does not move on to the next host: that is the caller's
    /// choice, quirk Q2). If no host could be borrowed, fail with every
    /// host's reason. The connection is shared (`Rc`) so the copy can hand
    /// it to the worker tasks it spawns.
    pub async fn borrow_connection<R>(
        &self,
        hosts: &[NodeId],
        f: impl AsyncFnOnce(NodeId, &Rc<E::Peer>) -> R,
    ) -> Result<R, NoPeerAvailable> {
        let mut reasons = Vec::new();
        for &host in hosts {
            match self.connect(host).await {
                Ok(conn) => {
                    tracing::debug!(host = %host, "peer_connection_borrowed");
                    return Ok(f(host, &conn).await);
                }
                Err(reason) => {
                    tracing::info!(host = %host, reason = %reason, "peer_skipped");
                    reasons.push((host, reason));
                }
            }
        }
        Err(NoPeerAvailable { reasons })
    }

    /// A healthy connection to `host`, dialling it if needed.
    async fn connect(&self, host: NodeId) -> Result<Rc<E::Peer>, PeerUnavailable> {
        let existing = {
            let peers = self.peers.borrow();
            let peer = peers.get(&host).ok_or(PeerUnavailable::Unknown)?;
            if peer.closed {
                return Err(PeerUnavailable::Closed);
            }
            peer.conn.clone()
        };
        let conn = match existing {
            Some(conn) => conn,
            None => {
                let conn = Rc::new(self.env.dial(host).await.map_err(PeerUnavailable::Dial)?);
                // Keep it unless the host left or was closed meanwhile.
                if let Some(peer) = self.peers.borrow_mut().get_mut(&host)
                    && !peer.closed
                    && peer.conn.is_none()
                {
                    peer.conn = Some(Rc::clone(&conn));
                }
                conn
            }
        };
        match conn.health().await {
            Ok(true) => Ok(conn),
            Ok(false) => Err(PeerUnavailable::NotServing),
            Err(e) => Err(PeerUnavailable::HealthCheck(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use super::*;
    use crate::fake::{FakeEnv, FakeWorld};
    use crate::types::{ShardId, ShardState};

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);
    const C: NodeId = NodeId(3);
    const ORIGIN: NodeId = NodeId(0);

    fn placement(hosts: &[NodeId]) -> Placement {
        let replicas: BTreeMap<NodeId, ShardState> =
            hosts.iter().map(|h| (*h, ShardState::Available)).collect();
        Placement {
            shards: [(ShardId(0), replicas)].into_iter().collect(),
        }
    }

    fn setup(quirks: &[Quirk], hosts: &[NodeId]) -> (FakeWorld, PeerSource<FakeEnv>) {
        let w = FakeWorld::new(3);
        let options = Options {
            quirks: quirks.iter().copied().collect(),
            ..Options::default()
        };
        for h in hosts {
            w.serve(*h, options.clone());
        }
        let source = PeerSource::new(w.host(ORIGIN), Rc::new(options), &placement(hosts));
        (w, source)
    }

    /// Borrow over `hosts`; which host the callback ran on and how often.
    fn borrow(
        w: &mut FakeWorld,
        source: &PeerSource<FakeEnv>,
        hosts: &[NodeId],
    ) -> (Result<NodeId, NoPeerAvailable>, u32) {
        let calls = Cell::new(0);
        let r = w.run(source.borrow_connection(hosts, async |host, peer: &_| {
            calls.set(calls.get() + 1);
            assert_eq!(peer.health().await, Ok(true));
            host
        }));
        (r, calls.get())
    }

    #[test]
    fn borrow_skips_unhealthy_and_unknown_hosts_and_runs_once_on_the_first_healthy_one() {
        let (mut w, source) = setup(&[], &[A, B]);
        w.net().set_unhealthy(A, true);
        assert_eq!(borrow(&mut w, &source, &[A, B, C]), (Ok(B), 1));
        let (r, calls) = borrow(&mut w, &source, &[A, C]);
        assert_eq!(calls, 0);
        let err = r.expect_err("nothing to borrow");
        assert_eq!(
            err.reasons,
            vec![
                (A, PeerUnavailable::NotServing),
                (C, PeerUnavailable::Unknown)
            ]
        );
        assert_eq!(
            err.to_string(),
            "no peer could be borrowed: n1: unhealthy peer: not serving; n3: peer does not exist"
        );
    }

    #[test]
    fn borrow_skips_a_host_that_cannot_be_dialled_or_fails_its_health_check() {
        let (mut w, source) = setup(&[], &[A, B, C]);
        w.net().set_dial_fails(A, true);
        assert_eq!(borrow(&mut w, &source, &[B]).0, Ok(B));
        w.net().set_down(B, true);
        let (r, calls) = borrow(&mut w, &source, &[A, B]);
        assert_eq!(calls, 0);
        assert_eq!(
            r.expect_err("none").reasons,
            vec![
                (A, PeerUnavailable::Dial(RpcError::Unavailable(A))),
                (B, PeerUnavailable::HealthCheck(RpcError::Unavailable(B))),
            ]
        );
        w.net().set_dial_fails(A, false);
        assert_eq!(borrow(&mut w, &source, &[A, B]), (Ok(A), 1));
    }

    #[test]
    fn borrow_returns_the_callbacks_result_even_when_it_is_a_failure() {
        let (mut w, source) = setup(&[], &[A, B]);
        let calls = Cell::new(0);
        let r = w.run(source.borrow_connection(&[A, B], async |host, _peer: &_| {
            calls.set(calls.get() + 1);
            Err::<(), _>(host)
        }));
        assert_eq!(r, Ok(Err(A)));
        assert_eq!(calls.get(), 1, "no fall-over to B inside borrow_connection");
    }

    #[test]
    fn borrow_over_no_hosts_fails() {
        let (mut w, source) = setup(&[], &[A]);
        let (r, calls) = borrow(&mut w, &source, &[]);
        assert_eq!((r.map_err(|e| e.reasons), calls), (Err(vec![]), 0));
    }

    /// Dial B and C, then A leaves the placement.
    fn a_leaves(quirks: &[Quirk]) -> (FakeWorld, PeerSource<FakeEnv>) {
        let (mut w, source) = setup(quirks, &[A, B, C]);
        assert_eq!(borrow(&mut w, &source, &[A]).0, Ok(A));
        assert_eq!(borrow(&mut w, &source, &[B]).0, Ok(B));
        assert_eq!(borrow(&mut w, &source, &[C]).0, Ok(C));
        source.on_placement_change(&placement(&[B, C]));
        (w, source)
    }

    #[test]
    fn host_that_leaves_is_forgotten_and_the_others_stay_usable_without_q11() {
        let (mut w, source) = a_leaves(&[]);
        assert_eq!(source.known_hosts(), vec![B, C]);
        let (r, _) = borrow(&mut w, &source, &[A]);
        assert_eq!(
            r.expect_err("A left").reasons,
            vec![(A, PeerUnavailable::Unknown)]
        );
        assert_eq!(borrow(&mut w, &source, &[C]).0, Ok(C));
        assert_eq!(borrow(&mut w, &source, &[B]).0, Ok(B));
        assert!(!source.is_closed(C));
    }

    #[test]
    fn q11_host_leaving_closes_the_last_iterated_peer_which_stays_closed() {
        let (mut w, source) = a_leaves(&[Quirk::Q11]);
        assert_eq!(source.known_hosts(), vec![B, C]);
        assert!(source.is_closed(C));
        for _ in 0..2 {
            let (r, calls) = borrow(&mut w, &source, &[C]);
            assert_eq!(calls, 0);
            assert_eq!(
                r.expect_err("C closed").reasons,
                vec![(C, PeerUnavailable::Closed)]
            );
        }
        assert_eq!(borrow(&mut w, &source, &[C, B]).0, Ok(B));
        // A later placement change keeps C known, so C stays closed.
        source.on_placement_change(&placement(&[B, C]));
        assert!(source.is_closed(C));
    }

    #[test]
    fn q11_close_of_a_peer_never_dialled_has_no_effect() {
        let (mut w, source) = setup(&[Quirk::Q11], &[A, B, C]);
        source.on_placement_change(&placement(&[B, C]));
        assert!(!source.is_closed(C));
        assert_eq!(borrow(&mut w, &source, &[C]).0, Ok(C));
    }

    #[test]
    fn host_that_rejoins_gets_a_fresh_peer() {
        let (mut w, source) = a_leaves(&[Quirk::Q11]);
        source.on_placement_change(&placement(&[A, B]));
        assert_eq!(source.known_hosts(), vec![A, B]);
        assert_eq!(borrow(&mut w, &source, &[A]).0, Ok(A));
    }
}
