//! The fault driver: every `tick`, each per-tick kind draws from its own
//! stream whether an episode starts — a partition, a held link, an
//! unhealthy peer, a corrupted file, a clock jump — picks its target and
//! length from the same stream, asks the [`atlas`] and either injects it
//! (ending it after its length) or traces the refusal. It stops at
//! [`Faults::heal_all`].

use std::rc::Rc;
use std::time::Duration;

use shardboot::model::FileKey;
use shardboot::types::NodeId;

use super::atlas;
use crate::engine::executor::{self, sleep};
use crate::engine::rng::Ratio;
use crate::world::faults::{FaultKind, Faults, Partition};
use crate::world::state::WorldRef;

/// The fault driver task of a world (spawn it when
/// [`crate::world::faults::FaultConfig::has_episodes`]).
pub async fn drive(world: WorldRef) {
    let tick = world.faults.config.tick;
    loop {
        sleep(tick).await;
        let f = &world.faults;
        if !f.active() {
            return;
        }
        let (net, disk, clock) = (&f.config.net, &f.config.disk, &f.config.clock);
        if f.draws.fires(FaultKind::Partition, net.partition) {
            start_partition(&world);
        }
        if f.draws.fires(FaultKind::HoldLink, net.hold) {
            start_hold(&world);
        }
        if f.draws.fires(FaultKind::Unhealthy, net.unhealthy) {
            start_unhealthy(&world);
        }
        if f.draws.fires(FaultKind::Corruption, disk.corruption) {
            corrupt_a_file(&world);
        }
        if f.draws.fires(FaultKind::ClockJump, clock.jump) {
            jump_a_clock(&world);
        }
    }
}

fn refused(kind: FaultKind, reason: &atlas::Refusal) {
    tracing::info!(target: "sim::fault", kind = kind.label(), reason = %reason, "fault_refused");
}

/// One host, uniformly, from `kind`'s stream.
fn pick_node(world: &WorldRef, kind: FaultKind) -> NodeId {
    let nodes: Vec<NodeId> = world.hosts.keys().copied().collect();
    let i = world.faults.draws.rng(kind).below(nodes.len() as u64) as usize;
    nodes[i]
}

/// Run `end` on the world after `d` (the end of an episode).
fn after(world: &WorldRef, d: Duration, end: impl FnOnce(&Faults) + 'static) {
    let world = Rc::clone(world);
    let _timer = executor::spawn_on("fault_timer", None, async move {
        sleep(d).await;
        end(&world.faults);
    });
}

fn start_partition(world: &WorldRef) {
    let f = &world.faults;
    let net = &f.config.net;
    let mut nodes: Vec<NodeId> = world.hosts.keys().copied().collect();
    if nodes.len() < 2 {
        return;
    }
    let p = {
        let mut rng = f.draws.rng(FaultKind::Partition);
        let minority = rng.between(1, nodes.len() as u64 / 2) as usize;
        rng.shuffle(&mut nodes);
        let oneway = rng.chance(net.partition_oneway);
        let other = nodes.split_off(minority);
        Partition {
            nodes: nodes.into_iter().collect(),
            other: other.into_iter().collect(),
            oneway,
        }
    };
    let lasting = f
        .draws
        .duration(FaultKind::Partition, net.partition_min, net.partition_max);
    let view = world.placement.view();
    let verdict = {
        let links = f.links.borrow();
        let active: Vec<&Partition> = links.partitions.values().collect();
        let unhealthy = links.unhealthy_at(executor::now());
        atlas::partition_allowed(&view.placement, &active, &p, &unhealthy, net.max_partitions)
    };
    if let Err(r) = verdict {
        return refused(FaultKind::Partition, &r);
    }
    let (nodes, oneway) = (p.nodes.clone(), p.oneway);
    let (id, cut) = f.links.borrow_mut().partition(p);
    tracing::info!(target: "sim::fault", kind = "partition", source = "random", nodes = ?nodes,
        oneway, for_ms = lasting.as_millis() as u64, cut_streams = cut, "fault_injected");
    after(world, lasting, move |f| {
        if f.links.borrow_mut().partitions.remove(&id).is_some() {
            tracing::info!(target: "sim::fault", kind = "partition", nodes = ?nodes, "fault_healed");
        }
    });
}

fn start_hold(world: &WorldRef) {
    let f = &world.faults;
    let net = &f.config.net;
    if world.hosts.len() < 2 {
        return;
    }
    let from = pick_node(world, FaultKind::HoldLink);
    let to = loop {
        let to = pick_node(world, FaultKind::HoldLink);
        if to != from {
            break to;
        }
    };
    let lasting = f
        .draws
        .duration(FaultKind::HoldLink, net.hold_min, net.hold_max);
    let active = f.links.borrow().holds();
    if let Err(r) = atlas::hold_allowed(active, net.max_holds) {
        return refused(FaultKind::HoldLink, &r);
    }
    let id = f.links.borrow_mut().hold(from, to);
    tracing::info!(target: "sim::fault", kind = "hold_link", source = "random", from = %from,
        to = %to, for_ms = lasting.as_millis() as u64, "fault_injected");
    after(world, lasting, move |f| {
        if f.links.borrow_mut().release(from, to, Some(id)) {
            tracing::info!(target: "sim::fault", kind = "hold_link", from = %from, to = %to,
                "fault_healed");
        }
    });
}

fn start_unhealthy(world: &WorldRef) {
    let f = &world.faults;
    let net = &f.config.net;
    let node = pick_node(world, FaultKind::Unhealthy);
    let lasting = f
        .draws
        .duration(FaultKind::Unhealthy, net.unhealthy_min, net.unhealthy_max);
    let view = world.placement.view();
    let verdict = {
        let links = f.links.borrow();
        let active: Vec<&Partition> = links.partitions.values().collect();
        let mut unhealthy = links.unhealthy_at(executor::now());
        unhealthy.insert(node);
        atlas::copies_keep_a_source(&view.placement, &active, &unhealthy)
    };
    if let Err(r) = verdict {
        return refused(FaultKind::Unhealthy, &r);
    }
    f.set_unhealthy(node, executor::now() + lasting);
    tracing::info!(target: "sim::fault", kind = "unhealthy", source = "random", node = %node,
        for_ms = lasting.as_millis() as u64, "fault_injected");
}

fn corrupt_a_file(world: &WorldRef) {
    let f = &world.faults;
    let files: Vec<(NodeId, FileKey)> = world
        .hosts
        .iter()
        .flat_map(|(node, host)| {
            host.disk
                .file_names()
                .into_iter()
                .filter(|k| matches!(k, FileKey::VectorParty { .. }))
                .map(move |k| (*node, k))
        })
        .collect();
    if files.is_empty() {
        return refused(FaultKind::Corruption, &atlas::Refusal::NothingToCorrupt);
    }
    let i = f.draws.rng(FaultKind::Corruption).below(files.len() as u64) as usize;
    let (node, key) = &files[i];
    let view = world.placement.view();
    let verdict = atlas::corruption_allowed(
        &view.placement,
        &f.corrupted.borrow(),
        f.disk.checksums(),
        *node,
        key.shard().shard,
    );
    if let Err(r) = verdict {
        return refused(FaultKind::Corruption, &r);
    }
    if !f.corrupt(*node, &world.hosts[node].disk, key, "random") {
        refused(FaultKind::Corruption, &atlas::Refusal::NothingToCorrupt);
    }
}

fn jump_a_clock(world: &WorldRef) {
    let f = &world.faults;
    let max = f.config.clock.jump_max;
    let node = pick_node(world, FaultKind::ClockJump);
    let (forward, by) = {
        let mut rng = f.draws.rng(FaultKind::ClockJump);
        let forward = rng.chance(Ratio::new(1, 2));
        let ms = rng.between(1, (max.as_millis() as u64).max(1));
        (forward, Duration::from_millis(ms))
    };
    let signed = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    let after = f
        .clock_offset_ms(node)
        .saturating_add(if forward { signed } else { -signed });
    if let Err(r) = atlas::clock_jump_allowed(node, after, f.config.clock.max_offset) {
        return refused(FaultKind::ClockJump, &r);
    }
    f.jump_clock(node, forward, by);
    tracing::info!(target: "sim::fault", kind = "clock_jump", source = "random", node = %node,
        forward, by_ms = by.as_millis() as u64, offset_ms = after, "fault_injected");
}
