//! `[faults]`: the random faults a seed draws from, as plain data. Every
//! knob defaults to off; `scenarios/README.md` documents each one for users.
//!
//! Probabilities are integer [`Ratio`]s. "Per tick" knobs are drawn once
//! every [`FaultConfig::tick`] and start an *episode* (a partition, a held
//! link, ...) that ends by itself after a duration drawn from its range;
//! "per message / per operation" knobs are drawn at each message or disk
//! operation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::duration;
use crate::engine::rng::Ratio;

/// Every random fault of a run. Default: none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// How often per-tick episodes are considered. Default 1 s.
    #[serde(with = "duration")]
    pub tick: Duration,
    /// `[faults.net]`: partitions, holds, loss, slowness, duplicates, cut streams.
    pub net: NetFaults,
    /// `[faults.disk]`: I/O errors, full disk, torn writes, corruption.
    pub disk: DiskFaultConfig,
    /// `[faults.clock]`: skew, drift, jumps.
    pub clock: ClockFaults,
    /// `[faults.placement]`: `mark_available` failures and delays.
    pub placement: PlacementFaults,
    /// `[faults.node]`: crashes, pauses, disk loss.
    pub node: NodeFaults,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            tick: Duration::from_secs(1),
            net: NetFaults::default(),
            disk: DiskFaultConfig::default(),
            clock: ClockFaults::default(),
            placement: PlacementFaults::default(),
            node: NodeFaults::default(),
        }
    }
}

/// Network faults on the peer-data protocol (unary calls, keep-alive and
/// raw-data streams). The placement service and the upstream log are not
/// behind this network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetFaults {
    /// How long a caller waits before a lost request or reply surfaces as
    /// "peer unavailable". Default 5 s.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Per hop: the message is slow by an extra `tail_latency_min..=max`.
    pub tail_latency: Ratio,
    #[serde(with = "duration")]
    pub tail_latency_min: Duration,
    #[serde(with = "duration")]
    pub tail_latency_max: Duration,
    /// Per unary request and per reply: the message is lost.
    pub drop: Ratio,
    /// Per unary request: it reaches the server twice (both executed, the
    /// second reply discarded); per keep-alive message: delivered twice.
    pub duplicate: Ratio,
    /// Per tick: a random partition starts (a minority of hosts against
    /// the rest), lasting `partition_min..=max`.
    pub partition: Ratio,
    /// Share of random partitions that are one-way (only messages *to* the
    /// minority are lost).
    pub partition_oneway: Ratio,
    #[serde(with = "duration")]
    pub partition_min: Duration,
    #[serde(with = "duration")]
    pub partition_max: Duration,
    /// At most this many random partitions at once (fault atlas).
    pub max_partitions: u32,
    /// Per keep-alive message and per raw-data chunk: the stream is cut.
    pub stream_cut: Ratio,
    /// Per tick: one directed link is held (messages wait, none is lost)
    /// for `hold_min..=max`.
    pub hold: Ratio,
    #[serde(with = "duration")]
    pub hold_min: Duration,
    #[serde(with = "duration")]
    pub hold_max: Duration,
    /// At most this many held links at once (fault atlas).
    pub max_holds: u32,
    /// Per tick: a random host's health check answers "not serving" for
    /// `unhealthy_min..=max`.
    pub unhealthy: Ratio,
    #[serde(with = "duration")]
    pub unhealthy_min: Duration,
    #[serde(with = "duration")]
    pub unhealthy_max: Duration,
}

impl Default for NetFaults {
    fn default() -> Self {
        NetFaults {
            timeout: Duration::from_secs(5),
            tail_latency: Ratio::NEVER,
            tail_latency_min: Duration::from_millis(100),
            tail_latency_max: Duration::from_secs(2),
            drop: Ratio::NEVER,
            duplicate: Ratio::NEVER,
            partition: Ratio::NEVER,
            partition_oneway: Ratio::new(1, 2),
            partition_min: Duration::from_secs(5),
            partition_max: Duration::from_secs(60),
            max_partitions: 1,
            stream_cut: Ratio::NEVER,
            hold: Ratio::NEVER,
            hold_min: Duration::from_secs(1),
            hold_max: Duration::from_secs(30),
            max_holds: 1,
            unhealthy: Ratio::NEVER,
            unhealthy_min: Duration::from_secs(5),
            unhealthy_max: Duration::from_secs(60),
        }
    }
}

/// Faults of every host's local disk (files only; the metastore is
/// reliable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskFaultConfig {
    /// Files carry checksums: a read of a corrupted file fails with
    /// "checksum mismatch" instead of returning the damaged bytes.
    pub checksums: bool,
    /// Per file read: input/output error.
    pub read_eio: Ratio,
    /// Per write: input/output error (nothing written).
    pub write_eio: Ratio,
    /// Per sync: the sync fails and the data stays not durable.
    pub sync_fail: Ratio,
    /// Per write: no space left on device (nothing written).
    pub enospc: Ratio,
    /// Per crash: unsynced data is torn (each file keeps a random prefix of
    /// what was written since its last sync) instead of lost whole.
    pub torn_write: Ratio,
    /// Per tick: flip a byte of a random stored data file (fault atlas:
    /// only where it can be repaired, and only with `checksums` on).
    pub corruption: Ratio,
}

impl Default for DiskFaultConfig {
    fn default() -> Self {
        DiskFaultConfig {
            checksums: false,
            read_eio: Ratio::NEVER,
            write_eio: Ratio::NEVER,
            sync_fail: Ratio::NEVER,
            enospc: Ratio::NEVER,
            torn_write: Ratio::NEVER,
            corruption: Ratio::NEVER,
        }
    }
}

/// Node clocks: true time plus a per-node offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockFaults {
    /// Each host's clock starts off by a uniform `-skew_max..=skew_max`.
    #[serde(with = "duration")]
    pub skew_max: Duration,
    /// Each host's clock runs fast or slow by a uniform
    /// `-drift_max_ppm..=drift_max_ppm` parts per million.
    pub drift_max_ppm: u32,
    /// Per tick: a random host's clock jumps forward or back by up to
    /// `jump_max`.
    pub jump: Ratio,
    #[serde(with = "duration")]
    pub jump_max: Duration,
    /// A random jump may not leave a clock further than this from true
    /// time (fault atlas).
    #[serde(with = "duration")]
    pub max_offset: Duration,
}

impl Default for ClockFaults {
    fn default() -> Self {
        ClockFaults {
            skew_max: Duration::ZERO,
            drift_max_ppm: 0,
            jump: Ratio::NEVER,
            jump_max: Duration::from_secs(600),
            max_offset: Duration::from_secs(3600),
        }
    }
}

/// Faults of the placement service's `mark_available` call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementFaults {
    /// Per call: it fails ("placement service unavailable"), changing
    /// nothing.
    pub mark_available_fail: Ratio,
    /// Per call: it is slow by `delay_min..=delay_max`.
    pub mark_available_delay: Ratio,
    #[serde(with = "duration")]
    pub delay_min: Duration,
    #[serde(with = "duration")]
    pub delay_max: Duration,
}

impl Default for PlacementFaults {
    fn default() -> Self {
        PlacementFaults {
            mark_available_fail: Ratio::NEVER,
            mark_available_delay: Ratio::NEVER,
            delay_min: Duration::from_secs(1),
            delay_max: Duration::from_secs(30),
        }
    }
}

/// Node lifecycle faults ([`crate::world::lifecycle`]), drawn for every running
/// host every `check_every`: at most one fault per host per check, and none
/// while `max_down` hosts are already crashed or paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeFaults {
    /// How often each running host is considered. Default 1 m.
    #[serde(with = "duration")]
    pub check_every: Duration,
    /// Per check: the host crashes, and restarts on the same disk after
    /// `restart_after_min..=max`.
    pub crash: Ratio,
    #[serde(with = "duration")]
    pub restart_after_min: Duration,
    #[serde(with = "duration")]
    pub restart_after_max: Duration,
    /// Per check: the host's process stalls (a GC pause) for
    /// `pause_min..=max`; peers see it slow, not down.
    pub pause: Ratio,
    #[serde(with = "duration")]
    pub pause_min: Duration,
    #[serde(with = "duration")]
    pub pause_max: Duration,
    /// Per check: the host restarts at once with an empty disk.
    pub restart_empty: Ratio,
    /// Per check: the host restarts at once with a copy of another host's
    /// disk (an operator mix-up).
    pub restart_with_disk_of: Ratio,
    /// At most this many hosts crashed or paused at once (fault atlas).
    pub max_down: u32,
}

impl Default for NodeFaults {
    fn default() -> Self {
        NodeFaults {
            check_every: Duration::from_secs(60),
            crash: Ratio::NEVER,
            restart_after_min: Duration::from_secs(1),
            restart_after_max: Duration::from_secs(120),
            pause: Ratio::NEVER,
            pause_min: Duration::from_millis(100),
            pause_max: Duration::from_secs(30),
            restart_empty: Ratio::NEVER,
            restart_with_disk_of: Ratio::NEVER,
            max_down: 1,
        }
    }
}

impl NodeFaults {
    /// Whether any random node fault can happen (then its driver runs).
    pub fn any(&self) -> bool {
        [
            self.crash,
            self.pause,
            self.restart_empty,
            self.restart_with_disk_of,
        ]
        .iter()
        .any(|r| r.num > 0)
    }
}

/// A knob with a value a run cannot use: its dotted name and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadKnob {
    /// Section, e.g. `faults.net`.
    pub section: &'static str,
    /// Field within it, e.g. `drop`.
    pub field: &'static str,
    pub message: String,
}

impl FaultConfig {
    /// Whether every fault is off (a scenario without `[faults]`).
    pub fn is_off(&self) -> bool {
        *self == FaultConfig::default()
    }

    /// Whether any per-tick episode can start (then the fault driver runs).
    pub fn has_episodes(&self) -> bool {
        [
            self.net.partition,
            self.net.hold,
            self.net.unhealthy,
            self.disk.corruption,
            self.clock.jump,
        ]
        .iter()
        .any(|r| r.num > 0)
    }

    /// Check every probability and range; the first bad knob.
    pub fn validate(&self) -> Result<(), BadKnob> {
        let n = &self.net;
        let d = &self.disk;
        let c = &self.clock;
        let p = &self.placement;
        let nd = &self.node;
        let ratios: [(&'static str, &'static str, Ratio); 21] = [
            ("faults.net", "tail_latency", n.tail_latency),
            ("faults.net", "drop", n.drop),
            ("faults.net", "duplicate", n.duplicate),
            ("faults.net", "partition", n.partition),
            ("faults.net", "partition_oneway", n.partition_oneway),
            ("faults.net", "stream_cut", n.stream_cut),
            ("faults.net", "hold", n.hold),
            ("faults.net", "unhealthy", n.unhealthy),
            ("faults.disk", "read_eio", d.read_eio),
            ("faults.disk", "write_eio", d.write_eio),
            ("faults.disk", "sync_fail", d.sync_fail),
            ("faults.disk", "enospc", d.enospc),
            ("faults.disk", "torn_write", d.torn_write),
            ("faults.disk", "corruption", d.corruption),
            ("faults.clock", "jump", c.jump),
            (
                "faults.placement",
                "mark_available_fail",
                p.mark_available_fail,
            ),
            (
                "faults.placement",
                "mark_available_delay",
                p.mark_available_delay,
            ),
            ("faults.node", "crash", nd.crash),
            ("faults.node", "pause", nd.pause),
            ("faults.node", "restart_empty", nd.restart_empty),
            (
                "faults.node",
                "restart_with_disk_of",
                nd.restart_with_disk_of,
            ),
        ];
        for (section, field, r) in ratios {
            if r.den == 0 || r.num > r.den {
                return Err(BadKnob {
                    section,
                    field,
                    message: format!(
                        "{}/{} is not a probability (need den > 0 and num <= den)",
                        r.num, r.den
                    ),
                });
            }
        }
        let ranges = [
            (
                "faults.net",
                "tail_latency_max",
                n.tail_latency_min,
                n.tail_latency_max,
            ),
            (
                "faults.net",
                "partition_max",
                n.partition_min,
                n.partition_max,
            ),
            ("faults.net", "hold_max", n.hold_min, n.hold_max),
            (
                "faults.net",
                "unhealthy_max",
                n.unhealthy_min,
                n.unhealthy_max,
            ),
            ("faults.placement", "delay_max", p.delay_min, p.delay_max),
            (
                "faults.node",
                "restart_after_max",
                nd.restart_after_min,
                nd.restart_after_max,
            ),
            ("faults.node", "pause_max", nd.pause_min, nd.pause_max),
        ];
        for (section, field, lo, hi) in ranges {
            if hi < lo {
                return Err(BadKnob {
                    section,
                    field,
                    message: format!(
                        "{} is below the minimum {}",
                        duration::format(hi),
                        duration::format(lo)
                    ),
                });
            }
        }
        if self.tick.is_zero() {
            return Err(BadKnob {
                section: "faults",
                field: "tick",
                message: "the tick must be longer than zero".into(),
            });
        }
        if n.timeout.is_zero() {
            return Err(BadKnob {
                section: "faults.net",
                field: "timeout",
                message: "the timeout must be longer than zero".into(),
            });
        }
        if nd.check_every.is_zero() {
            return Err(BadKnob {
                section: "faults.node",
                field: "check_every",
                message: "the check interval must be longer than zero".into(),
            });
        }
        Ok(())
    }
}
