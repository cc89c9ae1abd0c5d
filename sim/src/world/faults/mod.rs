//! Fault injection: network, disk, clock and placement-service faults, both
//! random (drawn from the seed, configured by a scenario's `[faults]`) and
//! scripted (fault steps of a scenario's timeline).
//!
//! Every kind of fault draws from its own stream, `root.fork("fault/<kind>")`
//! (see [`FaultKind::label`]), so switching one kind on or off never
//! reshuffles the draws of another; a kind that is off draws nothing, so a
//! run without `[faults]` is the very same run as before faults existed.
//! Every fault is traced when it fires (`target: "sim::fault"`,
//! `fault_injected` with its `kind`), and when the [`atlas`] refuses one
//! (`fault_refused` with the reason).
//!
//! Where each kind acts: the network's messages and streams in
//! [`crate::world::net`] (through the methods in `links`), the disk's operations
//! in [`crate::world::disk`] (through [`DiskFaults`]), each node's clock in
//! [`Faults::node_now`], the placement service in
//! [`Faults::mark_available_fault`]; per-tick episodes (partitions, held
//! links, unhealthy peers, corruption, clock jumps) in `random`; scripted
//! steps in [`steps`]. [`Faults::heal_all`] ends every fault at once, for
//! the runner's liveness phase.
//!
//! Not modelled: faults of the upstream log and of the metastore, and
//! crashes (the node lifecycle does those; it calls
//! [`Faults::crash_disk`] so that crashes tear unsynced writes when
//! `torn_write` says so).

mod config;
mod corruption;
mod disk;
mod links;

use std::cell::{Cell, RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use shardboot::env::ClusterError;
use shardboot::types::{NodeId, ShardId, Timestamp};

pub use config::{DiskFaultConfig, FaultConfig, NodeFaults};
pub use disk::DiskFaults;
pub use links::{Partition, StreamCut};

use crate::engine::executor::{self, sleep};
use crate::engine::rng::{Ratio, SimRng};
use crate::engine::time::VirtualTime;
use crate::world::clock::{NodeClock, TrueClock};
use crate::world::disk::NodeDisk;
use links::Links;

/// The kinds of fault, each with its own random stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    NetLatency,
    NetDrop,
    NetDuplicate,
    Partition,
    StreamCut,
    HoldLink,
    Unhealthy,
    DiskReadEio,
    DiskWriteEio,
    DiskSyncFail,
    DiskEnospc,
    TornWrite,
    Corruption,
    ClockSkew,
    ClockDrift,
    ClockJump,
    MarkAvailableFail,
    MarkAvailableDelay,
}

impl FaultKind {
    pub const ALL: [FaultKind; 18] = [
        FaultKind::NetLatency,
        FaultKind::NetDrop,
        FaultKind::NetDuplicate,
        FaultKind::Partition,
        FaultKind::StreamCut,
        FaultKind::HoldLink,
        FaultKind::Unhealthy,
        FaultKind::DiskReadEio,
        FaultKind::DiskWriteEio,
        FaultKind::DiskSyncFail,
        FaultKind::DiskEnospc,
        FaultKind::TornWrite,
        FaultKind::Corruption,
        FaultKind::ClockSkew,
        FaultKind::ClockDrift,
        FaultKind::ClockJump,
        FaultKind::MarkAvailableFail,
        FaultKind::MarkAvailableDelay,
    ];

    /// The name traces use (`kind = "net_drop"`); the stream is
    /// `fault/<label>`.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::NetLatency => "net_latency",
            FaultKind::NetDrop => "net_drop",
            FaultKind::NetDuplicate => "net_duplicate",
            FaultKind::Partition => "partition",
            FaultKind::StreamCut => "stream_cut",
            FaultKind::HoldLink => "hold_link",
            FaultKind::Unhealthy => "unhealthy",
            FaultKind::DiskReadEio => "disk_read_eio",
            FaultKind::DiskWriteEio => "disk_write_eio",
            FaultKind::DiskSyncFail => "disk_sync_fail",
            FaultKind::DiskEnospc => "disk_enospc",
            FaultKind::TornWrite => "torn_write",
            FaultKind::Corruption => "corruption",
            FaultKind::ClockSkew => "clock_skew",
            FaultKind::ClockDrift => "clock_drift",
            FaultKind::ClockJump => "clock_jump",
            FaultKind::MarkAvailableFail => "mark_available_fail",
            FaultKind::MarkAvailableDelay => "mark_available_delay",
        }
    }
}

/// The per-kind streams and the switch that [`Faults::heal_all`] turns off.
/// Cloning shares them (the disks hold a clone).
#[derive(Clone, Debug)]
pub(crate) struct Draws {
    active: Rc<Cell<bool>>,
    streams: Rc<[RefCell<SimRng>]>,
}

impl Draws {
    fn new(root: &SimRng) -> Draws {
        Draws {
            active: Rc::new(Cell::new(true)),
            streams: FaultKind::ALL
                .iter()
                .map(|k| RefCell::new(root.fork(&format!("fault/{}", k.label()))))
                .collect(),
        }
    }

    /// Whether a random fault of `kind` fires now: never once healed, and
    /// without a draw when `ratio` is zero.
    pub(crate) fn fires(&self, kind: FaultKind, ratio: Ratio) -> bool {
        ratio.num > 0 && self.active.get() && self.rng(kind).chance(ratio)
    }

    pub(crate) fn rng(&self, kind: FaultKind) -> RefMut<'_, SimRng> {
        self.streams[kind as usize].borrow_mut()
    }

    /// A duration in `lo..=hi` from `kind`'s stream.
    pub(crate) fn duration(&self, kind: FaultKind, lo: Duration, hi: Duration) -> Duration {
        let ms = self
            .rng(kind)
            .between(lo.as_millis() as u64, hi.as_millis() as u64);
        Duration::from_millis(ms)
    }
}

/// The fault state of one world (a field of [`crate::world::state::WorldState`]).
pub struct Faults {
    pub(crate) config: FaultConfig,
    pub(crate) draws: Draws,
    /// One-way latency range of the network (duplicates arrive within it).
    latency: (Duration, Duration),
    pub(crate) links: RefCell<Links>,
    /// Clocks that differ from true time; a node not listed is exact.
    clocks: RefCell<BTreeMap<NodeId, NodeClock>>,
    pub(crate) disk: DiskFaults,
    /// `mark_available` fails until then (a scripted outage).
    outage_until: Cell<Option<VirtualTime>>,
    /// Replicas (host, shard) that hold a corrupted file.
    pub(crate) corrupted: RefCell<BTreeSet<(NodeId, ShardId)>>,
}

impl Faults {
    /// The faults of a world of `nodes`, with node clocks skewed and
    /// drifting as `config` says (drawn in node order).
    /// `latency` is the network's one-way latency range (duplicated
    /// messages arrive within it).
    pub fn new(
        root: &SimRng,
        config: &FaultConfig,
        latency: (Duration, Duration),
        nodes: &[NodeId],
    ) -> Faults {
        let draws = Draws::new(root);
        let c = &config.clock;
        let mut clocks = BTreeMap::new();
        if !c.skew_max.is_zero() || c.drift_max_ppm > 0 {
            let skew_ms = i64::try_from(c.skew_max.as_millis()).unwrap_or(i64::MAX);
            let ppm = i64::from(c.drift_max_ppm);
            for node in nodes {
                let skew = signed(&mut draws.rng(FaultKind::ClockSkew), skew_ms);
                let drift = signed(&mut draws.rng(FaultKind::ClockDrift), ppm);
                tracing::info!(target: "sim::fault", kind = "clock_skew", node = %node,
                    skew_ms = skew, drift_ppm = drift, "fault_injected");
                clocks.insert(*node, NodeClock::new(skew, drift));
            }
        }
        Faults {
            disk: DiskFaults::new(config.disk.clone(), draws.clone()),
            config: config.clone(),
            draws,
            latency,
            links: RefCell::default(),
            clocks: RefCell::new(clocks),
            outage_until: Cell::new(None),
            corrupted: RefCell::default(),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Whether random faults are still being injected (until
    /// [`Faults::heal_all`]).
    pub fn active(&self) -> bool {
        self.draws.active.get()
    }

    /// Whether messages from `from` to `to` are held now (they wait, in
    /// order, for the release).
    pub fn link_held(&self, from: NodeId, to: NodeId) -> bool {
        self.links.borrow().held(from, to)
    }

    /// The disk-fault handle every [`NodeDisk`] of the world holds.
    pub fn disk(&self) -> DiskFaults {
        self.disk.clone()
    }

    /// `node`'s wall clock: true time through its [`NodeClock`].
    pub fn node_now(&self, node: NodeId, truth: &TrueClock) -> Timestamp {
        match self.clocks.borrow().get(&node) {
            Some(c) => c.read(truth),
            None => truth.now(),
        }
    }

    /// How far `node`'s clock is ahead of true time (negative: behind), ms.
    pub fn clock_offset_ms(&self, node: NodeId) -> i64 {
        self.clocks
            .borrow()
            .get(&node)
            .map_or(0, |c| c.offset_ms(executor::now()))
    }

    /// Move `node`'s clock by `by` (traced by the caller).
    pub(crate) fn jump_clock(&self, node: NodeId, forward: bool, by: Duration) {
        self.clocks
            .borrow_mut()
            .entry(node)
            .or_default()
            .jump(forward, by);
    }

    /// A crash of the host whose disk is `disk`: unsynced data is torn
    /// (with probability `disk.torn_write`) or lost whole.
    pub fn crash_disk(&self, disk: &NodeDisk) {
        if self
            .draws
            .fires(FaultKind::TornWrite, self.config.disk.torn_write)
        {
            disk.crash_torn(&mut self.draws.rng(FaultKind::TornWrite));
        } else {
            disk.crash();
        }
    }

    /// The placement-service fault a `mark_available` call meets, if any: a
    /// scripted outage or a random failure; a random delay is waited out
    /// here.
    pub async fn mark_available_fault(&self) -> Option<ClusterError> {
        if self
            .outage_until
            .get()
            .is_some_and(|until| executor::now() < until)
        {
            tracing::info!(target: "sim::fault", kind = "mark_available_fail", source = "step",
                "fault_injected");
            return Some(ClusterError::Unavailable);
        }
        let p = &self.config.placement;
        if self
            .draws
            .fires(FaultKind::MarkAvailableFail, p.mark_available_fail)
        {
            tracing::info!(target: "sim::fault", kind = "mark_available_fail", source = "random",
                "fault_injected");
            return Some(ClusterError::Unavailable);
        }
        if self
            .draws
            .fires(FaultKind::MarkAvailableDelay, p.mark_available_delay)
        {
            let d = self
                .draws
                .duration(FaultKind::MarkAvailableDelay, p.delay_min, p.delay_max);
            tracing::info!(target: "sim::fault", kind = "mark_available_delay",
                delay_ms = d.as_millis() as u64, "fault_injected");
            sleep(d).await;
        }
        None
    }

    /// Every `mark_available` call fails for `d` from now.
    pub(crate) fn placement_outage(&self, d: Duration) {
        self.outage_until.set(Some(executor::now() + d));
    }

    /// End every fault: no more random faults; partitions healed, held
    /// links released, every peer healthy, clock drift stopped (the offset
    /// reached stays, as skew), `mark_available` outages over. Files
    /// already corrupted stay corrupted. The runner's liveness phase calls
    /// this at the heal time.
    pub fn heal_all(&self) {
        self.draws.active.set(false);
        let now = executor::now();
        for clock in self.clocks.borrow_mut().values_mut() {
            clock.stop_drift(now);
        }
        self.outage_until.set(None);
        let (partitions, holds, unhealthy) = self.links.borrow_mut().heal_all();
        tracing::info!(target: "sim::fault", partitions, holds, unhealthy, "faults_healed");
    }
}

/// A uniform draw in `-max..=max`.
fn signed(rng: &mut SimRng, max: i64) -> i64 {
    let max = max.max(0);
    let span = u64::try_from(max).unwrap_or(0).saturating_mul(2);
    i64::try_from(rng.between(0, span)).unwrap_or(0) - max
}

#[cfg(test)]
mod tests {
    use shardboot::env::{Disk, OpenMode, WriteFile};
    use shardboot::model::FileKey;
    use shardboot::types::TableShardId;

    use super::*;
    use crate::world::net::NetConfig;

    const N1: NodeId = NodeId(1);
    const N2: NodeId = NodeId(2);

    fn faults(config: &FaultConfig) -> Faults {
        let net = NetConfig::default();
        Faults::new(
            &SimRng::new(9),
            config,
            (net.latency_min, net.latency_max),
            &[N1, N2],
        )
    }

    #[test]
    fn switching_duplicates_on_does_not_change_which_messages_are_dropped() {
        let mut drops = FaultConfig::default();
        drops.net.drop = Ratio::new(1, 2);
        let mut both = drops.clone();
        both.net.duplicate = Ratio::new(1, 2);
        let (a, b) = (faults(&drops), faults(&both));
        for _ in 0..200 {
            b.duplicate_request(N1, N2, "health");
            assert_eq!(a.message_lost(N1, N2), b.message_lost(N1, N2));
        }
    }

    #[test]
    fn a_torn_crash_keeps_the_synced_part_and_a_prefix_of_the_rest() {
        let mut config = FaultConfig::default();
        config.disk.torn_write = Ratio::new(1, 1);
        let f = faults(&config);
        let disk = NodeDisk::with_faults(f.disk());
        let key = FileKey::RedoLog {
            shard: TableShardId::new("trips", ShardId(0)),
            file: 0,
        };
        futures::executor::block_on(async {
            let mut file = disk.open(&key, OpenMode::Truncate).await.unwrap();
            file.write(&[1; 100]).await.unwrap();
            file.sync().await.unwrap();
            file.write(&[2; 100]).await.unwrap();
        });
        let ((), trace) =
            crate::engine::trace::record(crate::engine::trace::Keep::All, || f.crash_disk(&disk));
        let torn: Vec<_> = trace
            .events()
            .filter(|e| e.field("kind") == Some("torn_write"))
            .collect();
        assert_eq!(torn.len(), 1);
        let kept: usize = torn[0].field("kept").unwrap().parse().unwrap();
        let content = disk.contents(&key).unwrap();
        assert_eq!(content.len(), kept.max(100));
        assert!(content[..100].iter().all(|b| *b == 1));
        assert!(content[100..].iter().all(|b| *b == 2));
    }
}
