//! Random node faults (`[faults.node]`, [`NodeFaults`]): every
//! `check_every`, each running host may crash, pause, or restart on an empty
//! disk or on a copy of another host's disk, each kind drawn from its own
//! stream. The mechanism is the world's [`Lifecycle`]; this driver decides
//! *when* and *which*, and asks the [`atlas`] before any disk loss.

use std::time::Duration;

use shardboot::types::NodeId;

use super::atlas;
use crate::engine::executor::sleep;
use crate::engine::rng::{Ratio, SimRng};
use crate::world::faults::NodeFaults;
use crate::world::lifecycle::{Lifecycle, NodeStatus, Source};

/// While a peer copy runs anywhere, hosts are considered this many times
/// per `check_every` instead of once: a copy lasts seconds and a check
/// comes once a minute, so without this a node fault almost never meets a
/// copy in flight, the moment most bootstrap bugs need.
pub const CHECKS_DURING_COPIES: u32 = 10;

/// Random node faults until healed: every `check_every` each running host
/// in turn may get one fault, and, while a peer copy runs somewhere,
/// [`CHECKS_DURING_COPIES`] times as often. Each kind draws from its own
/// stream `root.fork("fault/node_<kind>")`, and a kind that is off draws
/// nothing.
pub async fn drive(lifecycle: Lifecycle, config: NodeFaults, root: SimRng) {
    let mut draws = NodeDraws::new(&root);
    let tick = config.check_every / CHECKS_DURING_COPIES;
    let mut ticks: u32 = 0;
    loop {
        sleep(tick).await;
        if lifecycle.is_healed() {
            return;
        }
        ticks = (ticks + 1) % CHECKS_DURING_COPIES;
        if ticks != 0 && !lifecycle.copy_in_progress() {
            continue;
        }
        let hosts: Vec<NodeId> = lifecycle.world().hosts.keys().copied().collect();
        for node in hosts {
            if lifecycle.status(node) == NodeStatus::Up {
                maybe_fault(&lifecycle, node, &config, &mut draws);
            }
        }
    }
}

fn maybe_fault(lifecycle: &Lifecycle, node: NodeId, c: &NodeFaults, draws: &mut NodeDraws) {
    let Some(kind) = draws.kind(c) else {
        return;
    };
    if lifecycle.down_count() >= c.max_down as usize {
        lifecycle.refuse(kind.name(), node, "max_down hosts are already down");
        return;
    }
    if matches!(
        kind,
        RandomKind::RestartEmpty | RandomKind::RestartWithDiskOf
    ) {
        let world = lifecycle.world();
        let verdict = atlas::disk_loss_allowed(&world.placement.view(), node, |n, id| {
            world.hosts[&n].disk.commit_offset(id).0 > 0
        });
        if let Err(r) = verdict {
            tracing::info!(target: "sim::fault", kind = kind.name(), node = %node,
                reason = %r, "fault_refused");
            return;
        }
    }
    match kind {
        RandomKind::Crash => {
            let d = duration(&mut draws.crash, c.restart_after_min, c.restart_after_max);
            lifecycle.crash(node, d, Source::Random);
        }
        RandomKind::Pause => {
            let d = duration(&mut draws.pause, c.pause_min, c.pause_max);
            lifecycle.pause(node, d, Source::Random);
        }
        RandomKind::RestartEmpty => lifecycle.restart_empty(node, Source::Random),
        RandomKind::RestartWithDiskOf => {
            let others: Vec<NodeId> = lifecycle
                .world()
                .hosts
                .keys()
                .copied()
                .filter(|n| *n != node)
                .collect();
            if others.is_empty() {
                lifecycle.refuse(kind.name(), node, "no other host");
                return;
            }
            // Half the time, a source gets the disk of a host copying from
            // it: the mix-up that leaves a copy's half-written state on a
            // replica that believes it is whole.
            let clients = lifecycle.copy_clients(node);
            let from = if !clients.is_empty() && draws.disk_of.chance(Ratio::new(1, 2)) {
                clients[draws.disk_of.below(clients.len() as u64) as usize]
            } else {
                others[draws.disk_of.below(others.len() as u64) as usize]
            };
            lifecycle.restart_with_disk_of(node, from, Source::Random);
        }
    }
}

/// The kinds of random node fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RandomKind {
    Crash,
    Pause,
    RestartEmpty,
    RestartWithDiskOf,
}

impl RandomKind {
    fn name(self) -> &'static str {
        match self {
            RandomKind::Crash => "crash",
            RandomKind::Pause => "pause",
            RandomKind::RestartEmpty => "restart_empty",
            RandomKind::RestartWithDiskOf => "restart_with_disk_of",
        }
    }
}

/// One stream per kind of random node fault.
struct NodeDraws {
    crash: SimRng,
    pause: SimRng,
    empty: SimRng,
    disk_of: SimRng,
}

impl NodeDraws {
    fn new(root: &SimRng) -> NodeDraws {
        NodeDraws {
            crash: root.fork("fault/node_crash"),
            pause: root.fork("fault/node_pause"),
            empty: root.fork("fault/node_restart_empty"),
            disk_of: root.fork("fault/node_restart_with_disk_of"),
        }
    }

    /// The first kind, in a fixed order, whose draw fires for this host.
    fn kind(&mut self, c: &NodeFaults) -> Option<RandomKind> {
        let fires = |rng: &mut SimRng, r: Ratio| r.num > 0 && rng.chance(r);
        if fires(&mut self.crash, c.crash) {
            Some(RandomKind::Crash)
        } else if fires(&mut self.pause, c.pause) {
            Some(RandomKind::Pause)
        } else if fires(&mut self.empty, c.restart_empty) {
            Some(RandomKind::RestartEmpty)
        } else if fires(&mut self.disk_of, c.restart_with_disk_of) {
            Some(RandomKind::RestartWithDiskOf)
        } else {
            None
        }
    }
}

/// A duration in `lo..=hi` (whole milliseconds).
fn duration(rng: &mut SimRng, lo: Duration, hi: Duration) -> Duration {
    Duration::from_millis(rng.between(lo.as_millis() as u64, hi.as_millis() as u64))
}
