//! One host's [`Env`] in a fake world: its node id, the shared clock and
//! spawner, a seeded per-host RNG, its disk and metastore, `dial` to the
//! other hosts' servers, and the shared cluster and upstream log. No BUGGIFY
//! point ever fires.

use std::future::Future;
use std::time::Duration;

use crate::env::Env;
use crate::protocol::RpcError;
use crate::types::{NodeId, Timestamp};

use super::clock::Sleep;
use super::cluster::FakeCluster;
use super::disk::FakeDisk;
use super::metastore::FakeMetaStore;
use super::net::FakeEnv;
use super::peers::FakePeer;
use super::task::{FakeJoin, spawn_on};
use super::upstream::FakeUpstream;

/// SplitMix64: a fixed, well-mixed function of (seed, host, counter).
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Env for FakeEnv {
    type Disk = FakeDisk;
    type MetaStore = FakeMetaStore;
    type Peer = FakePeer;
    type Cluster = FakeCluster;
    type Upstream = FakeUpstream;
    type JoinHandle<T: 'static> = FakeJoin<T>;

    fn node(&self) -> NodeId {
        self.node
    }

    fn now(&self) -> Timestamp {
        self.net.now()
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        Sleep {
            net: self.net.clone(),
            d,
            key: None,
        }
    }

    fn spawn<T: 'static>(
        &self,
        name: &'static str,
        fut: impl Future<Output = T> + 'static,
    ) -> FakeJoin<T> {
        spawn_on(&self.net.0.spawner, name, fut)
    }

    fn random_u64(&self) -> u64 {
        let n = self.rng.get();
        self.rng.set(n + 1);
        splitmix64(self.net.0.seed ^ (u64::from(self.node.0) << 40) ^ n)
    }

    /// Unit tests pin exact behaviour: no BUGGIFY point ever fires.
    fn buggify(&self, _point: &'static str) -> bool {
        false
    }

    fn disk(&self) -> &FakeDisk {
        &self.disk
    }

    fn metastore(&self) -> &FakeMetaStore {
        &self.metastore
    }

    fn dial(&self, host: NodeId) -> impl Future<Output = Result<FakePeer, RpcError>> {
        let reachable = self
            .net
            .0
            .hosts
            .borrow()
            .get(&host)
            .is_some_and(|h| h.server.is_some() && !h.dial_fails && !h.down);
        let peer = FakePeer {
            net: self.net.clone(),
            host,
        };
        async move {
            if reachable {
                Ok(peer)
            } else {
                Err(RpcError::Unavailable(host))
            }
        }
    }

    fn cluster(&self) -> &FakeCluster {
        &self.net.0.cluster
    }

    fn upstream(&self) -> &FakeUpstream {
        &self.net.0.upstream
    }
}
