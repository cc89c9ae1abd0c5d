//! Swarm testing's randomised options (one file over 600 lines: every knob
//! is a short function and they share the draw order of [`KNOBS`]):
//! per seed, a scenario's knobs are
//! redrawn from that seed (its own `"swarm/options"` stream, independent of
//! the simulation's streams), some switched off and the rest weighted very
//! differently, so that a swarm explores far more of the option space than
//! the scenario file alone would (Groce et al., "Swarm testing", 2012).
//!
//! Each knob is one entry of [`KNOBS`]: a name and a function that redraws
//! one part of a [`Scenario`] and says what it drew. The result is an
//! ordinary scenario: a failure artifact stores it as it ran, so a replay
//! needs no randomisation at all. The knobs keep a scenario inside the
//! envelope in which it is meant to pass (a replacement still has time to
//! finish its copy before the end), so what a swarm reports is a bug, not a
//! scenario pushed past its own deadline.
//!
//! Faults: the scenario's `[faults]` is the envelope; per seed some kinds
//! are switched off and the rest re-weighted (see `faults`).
//!
//! To add a knob, write a `fn(&mut Scenario,
//! &mut SimRng) -> Option<String>` and list it in [`KNOBS`]; its draws come
//! after the existing ones, so the options of every other knob stay as they
//! were for each seed.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::engine::duration;
use crate::engine::executor::Scheduler;
use crate::engine::rng::{Ratio, SimRng};
use crate::scenario::format::Scenario;
use crate::world::faults::FaultConfig;

/// One drawn option: `knob=value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub knob: &'static str,
    pub value: String,
}

/// What one seed's swarm run uses: the scenario with its drawn options, the
/// scheduler, and the list of what was drawn.
#[derive(Clone, Debug)]
pub struct Randomised {
    pub scenario: Scenario,
    pub scheduler: Scheduler,
    pub choices: Vec<Choice>,
}

/// The drawn option set as one line: `scheduler=random rows_per_second=80 ...`.
pub struct Choices<'a>(pub &'a [Choice]);

impl fmt::Display for Choices<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={}", c.knob, c.value)?;
        }
        Ok(())
    }
}

/// A knob: redraws one part of a scenario; `None` when it does not apply
/// (e.g. no dimension table) and so drew nothing worth printing.
pub struct Knob {
    pub name: &'static str,
    pub draw: fn(&mut Scenario, &mut SimRng) -> Option<String>,
}

/// Every knob, in draw order (append new ones at the end).
pub const KNOBS: &[Knob] = &[
    Knob {
        name: "rows_per_second",
        draw: rows_per_second,
    },
    Knob {
        name: "upserts_per_second",
        draw: upserts_per_second,
    },
    Knob {
        name: "late",
        draw: late,
    },
    Knob {
        name: "dimension_keys",
        draw: dimension_keys,
    },
    Knob {
        name: "latency",
        draw: latency,
    },
    Knob {
        name: "bandwidth",
        draw: bandwidth,
    },
    Knob {
        name: "max_concurrent_table_shards",
        draw: max_concurrent_table_shards,
    },
    Knob {
        name: "max_concurrent_streams_per_table_shard",
        draw: max_concurrent_streams,
    },
    Knob {
        name: "faults",
        draw: faults,
    },
    Knob {
        name: "tables",
        draw: tables,
    },
    Knob {
        name: "retention",
        draw: retention,
    },
    Knob {
        name: "session_ttl",
        draw: session_ttl,
    },
    Knob {
        name: "ingest_interval",
        draw: ingest_interval,
    },
    Knob {
        name: "cluster",
        draw: cluster,
    },
    Knob {
        name: "placement",
        draw: placement,
    },
];

/// Redraw `scenario`'s options from `rng` (a fork of the seed's root made
/// for this purpose: `SimRng::new(seed).fork("swarm/options")`).
pub fn randomise(scenario: &Scenario, rng: &mut SimRng) -> Randomised {
    let mut out = scenario.clone();
    // One scheduler draw first: mostly the seeded random pick, sometimes
    // wake-up order (the same schedule for every seed, different timing),
    // sometimes PCT of depth 1 to 3 (a task held back for long stretches).
    // A scenario that names its scheduler keeps it.
    let drawn = if rng.chance(Ratio::new(1, 8)) {
        Scheduler::Fifo
    } else if rng.chance(Ratio::new(1, 4)) {
        Scheduler::pct(1 + rng.below(3) as u32)
    } else {
        Scheduler::Random
    };
    let scheduler = scenario.scheduler.unwrap_or(drawn);
    let mut choices = vec![Choice {
        knob: "scheduler",
        value: scheduler.to_string(),
    }];
    for knob in KNOBS {
        // Every knob draws from its own stream, so a knob that draws more
        // or less never shifts another knob's draws.
        let mut own = rng.fork(knob.name);
        if let Some(value) = (knob.draw)(&mut out, &mut own) {
            choices.push(Choice {
                knob: knob.name,
                value,
            });
        }
    }
    Randomised {
        scenario: out,
        scheduler,
        choices,
    }
}

/// Pick one of `items` uniformly.
fn pick<T: Copy>(rng: &mut SimRng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

/// A rate scaled by a factor drawn log-uniformly from 1/4..4, or switched
/// off (0) one time in eight.
fn scaled_rate(rng: &mut SimRng, base: u32) -> u32 {
    if rng.chance(Ratio::new(1, 8)) {
        return 0;
    }
    let (num, den) = pick(rng, &[(1, 4), (1, 2), (1, 1), (2, 1), (4, 1)]);
    (u64::from(base) * num / den).clamp(1, u64::from(u32::MAX)) as u32
}

fn has_kind(s: &Scenario, kind: crate::scenario::format::KindSpec) -> bool {
    s.tables.iter().any(|t| t.kind == kind)
}

fn rows_per_second(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if !has_kind(s, crate::scenario::format::KindSpec::Fact) {
        return None;
    }
    s.workload.rows_per_second = scaled_rate(rng, s.workload.rows_per_second.max(1));
    Some(s.workload.rows_per_second.to_string())
}

fn upserts_per_second(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if !has_kind(s, crate::scenario::format::KindSpec::Dimension) {
        return None;
    }
    s.workload.upserts_per_second = scaled_rate(rng, s.workload.upserts_per_second.max(1));
    Some(s.workload.upserts_per_second.to_string())
}

fn late(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if !has_kind(s, crate::scenario::format::KindSpec::Fact) {
        return None;
    }
    let (num, den) = pick(rng, &[(0, 1), (1, 100), (1, 20), (1, 5), (1, 2)]);
    s.workload.late = Ratio::new(num, den);
    s.workload.late_max_days = rng.between(1, 3) as u32;
    Some(format!("{num}/{den} max {}d", s.workload.late_max_days))
}

fn dimension_keys(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if !has_kind(s, crate::scenario::format::KindSpec::Dimension) {
        return None;
    }
    s.workload.dimension_keys = pick(rng, &[1, 5, 50, 500]);
    Some(s.workload.dimension_keys.to_string())
}

fn latency(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    // Whole milliseconds, so that the scenario file a failure writes says
    // exactly what ran.
    let min = pick(rng, &[0u64, 1, 2, 5]);
    let max = min + pick(rng, &[0u64, 1, 4, 20, 50]);
    s.network.latency_min = Duration::from_millis(min);
    s.network.latency_max = Duration::from_millis(max);
    Some(format!(
        "{}..{}",
        duration::format(s.network.latency_min),
        duration::format(s.network.latency_max)
    ))
}

fn bandwidth(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    const MIB: u64 = 1024 * 1024;
    s.network.bandwidth = pick(rng, &[5 * MIB, 20 * MIB, 50 * MIB, 500 * MIB]);
    Some(format!("{}MiB/s", s.network.bandwidth / MIB))
}

fn max_concurrent_table_shards(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    let v = pick(rng, &[None, Some(1), Some(2), Some(16)]);
    s.options.max_concurrent_table_shards = v.or(s.options.max_concurrent_table_shards);
    Some(v.map_or("default".into(), |v| v.to_string()))
}

fn max_concurrent_streams(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    let v = pick(rng, &[None, Some(1), Some(4)]);
    s.options.max_concurrent_streams_per_table_shard =
        v.or(s.options.max_concurrent_streams_per_table_shard);
    Some(v.map_or("default".into(), |v| v.to_string()))
}

/// Names of the tables the `tables` knob adds, fact and dimension.
const FACT_TABLES: [&str; 4] = ["trips", "orders", "payments", "rides"];
const DIMENSION_TABLES: [&str; 3] = ["cities", "drivers", "zones"];

/// More tables: a scenario with fact tables gets 1 to 4 of them (2 or more
/// three times in four), and every scenario 0 to 3 dimension tables; the
/// scenario's own tables are kept (steps name them), added ones take its
/// first table of the kind as their model and draw 1 to 5 columns. Many
/// table shards per shard are what make "Available while only some tables
/// are done" possible, and copies of several tables at once contend for
/// the streams.
fn tables(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    use crate::scenario::format::{KindSpec, TableSpec};
    fn count(s: &Scenario, kind: KindSpec) -> usize {
        s.tables.iter().filter(|t| t.kind == kind).count()
    }
    fn grow(s: &mut Scenario, rng: &mut SimRng, kind: KindSpec, names: &[&str], want: usize) {
        let model = s.tables.iter().find(|t| t.kind == kind).cloned();
        for name in names {
            if count(s, kind) >= want {
                break;
            }
            if s.tables.iter().any(|t| t.name == *name) {
                continue;
            }
            let model = model.clone().unwrap_or(TableSpec {
                name: String::new(),
                kind,
                retention_days: 0,
                preloading_days: 0,
                columns: 2,
            });
            s.tables.push(TableSpec {
                name: (*name).to_string(),
                columns: rng.between(1, 5) as u32,
                ..model
            });
        }
    }
    let facts = if count(s, KindSpec::Fact) > 0 {
        pick(rng, &[1usize, 2, 2, 3, 3, 4, 4, 4])
    } else {
        0
    };
    grow(s, rng, KindSpec::Fact, &FACT_TABLES, facts);
    let dimensions = pick(rng, &[0usize, 1, 1, 2, 3]);
    grow(s, rng, KindSpec::Dimension, &DIMENSION_TABLES, dimensions);
    Some(format!(
        "{} fact + {} dimension",
        count(s, KindSpec::Fact),
        count(s, KindSpec::Dimension)
    ))
}

/// Retention windows short enough that their oldest day holds data (late
/// rows arrive up to three days back), or none, and how many of those
/// days each fact table preloads: the edges of "which batches does a copy
/// ask for, which does a purge drop, which does a preload read".
fn retention(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    use crate::scenario::format::KindSpec;
    let mut drawn = Vec::new();
    for t in s.tables.iter_mut().filter(|t| t.kind == KindSpec::Fact) {
        t.retention_days = pick(rng, &[0u32, 1, 2, 3, 3, 7]);
        let most = if t.retention_days == 0 {
            3
        } else {
            t.retention_days
        };
        t.preloading_days = rng.between(0, u64::from(most)) as u32;
        drawn.push(format!(
            "{}:{}d/{}d",
            t.name, t.retention_days, t.preloading_days
        ));
    }
    (!drawn.is_empty()).then(|| drawn.join(","))
}

/// The session ttl asked for (keep-alives go every ttl/2, but never more
/// often than once a second, so 3 s is the shortest a client can keep):
/// from below one copy's length to the 5-minute default, so that
/// keep-alives, expiry and sweeps happen during copies. A scenario that
/// sets it keeps it.
fn session_ttl(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if s.options.session_ttl.is_some() {
        return None;
    }
    let secs = pick(
        rng,
        &[
            None,
            Some(3u64),
            Some(4),
            Some(6),
            Some(10),
            Some(30),
            Some(120),
        ],
    );
    s.options.session_ttl = secs.map(Duration::from_secs);
    Some(secs.map_or("default".into(), |v| format!("{v}s")))
}

/// How often table shards ingest (the default is 5 s). A scenario that sets
/// it keeps it.
fn ingest_interval(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if s.options.ingest_interval.is_some() {
        return None;
    }
    let secs = pick(rng, &[None, None, Some(1u64), Some(2), Some(10)]);
    s.options.ingest_interval = secs.map(Duration::from_secs);
    Some(secs.map_or("default".into(), |v| format!("{v}s")))
}

/// 3 to 7 hosts in the placement (never fewer than the scenario's: its
/// steps name them; spares are renumbered after the new hosts) and 1 to 3
/// replicas (unless a step raises the replica count: it was written for the
/// scenario's own).
fn cluster(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    use crate::scenario::format::Action;
    let old = s.cluster.nodes;
    let nodes = old.max(pick(rng, &[3u32, 4, 5, 6, 7]));
    let extra = nodes - old;
    if extra > 0 {
        let renumber = |n: shardboot::types::NodeId| {
            Some(if n.0 > old {
                shardboot::types::NodeId(n.0 + extra)
            } else {
                n
            })
        };
        for step in &mut s.steps {
            let renamed = step.get_ref().action.map_nodes(&renumber);
            if let Some(action) = renamed {
                step.get_mut().action = action;
            }
        }
        s.cluster.nodes = nodes;
    }
    let raises = s
        .steps
        .iter()
        .any(|st| matches!(st.get_ref().action, Action::RaiseReplicas { .. }));
    let replicas = rng.between(1, 3) as usize;
    if !raises {
        s.cluster.replicas = replicas.min(nodes as usize);
    }
    Some(format!("{} nodes x{}", s.cluster.nodes, s.cluster.replicas))
}

/// Every random fault kind of a [`FaultConfig`] that is a probability, by
/// its dotted name (`net.drop`), for the swarm and the shrinker.
pub fn fault_ratios(f: &mut FaultConfig) -> [(&'static str, &mut Ratio); 20] {
    [
        ("net.tail_latency", &mut f.net.tail_latency),
        ("net.drop", &mut f.net.drop),
        ("net.duplicate", &mut f.net.duplicate),
        ("net.partition", &mut f.net.partition),
        ("net.stream_cut", &mut f.net.stream_cut),
        ("net.hold", &mut f.net.hold),
        ("net.unhealthy", &mut f.net.unhealthy),
        ("disk.read_eio", &mut f.disk.read_eio),
        ("disk.write_eio", &mut f.disk.write_eio),
        ("disk.sync_fail", &mut f.disk.sync_fail),
        ("disk.enospc", &mut f.disk.enospc),
        ("disk.torn_write", &mut f.disk.torn_write),
        ("disk.corruption", &mut f.disk.corruption),
        ("clock.jump", &mut f.clock.jump),
        (
            "placement.mark_available_fail",
            &mut f.placement.mark_available_fail,
        ),
        (
            "placement.mark_available_delay",
            &mut f.placement.mark_available_delay,
        ),
        ("node.crash", &mut f.node.crash),
        ("node.pause", &mut f.node.pause),
        ("node.restart_empty", &mut f.node.restart_empty),
        (
            "node.restart_with_disk_of",
            &mut f.node.restart_with_disk_of,
        ),
    ]
}

/// Swarm testing over the scenario's `[faults]`: the file says which kinds
/// are in play and at what base rate (the envelope); per seed each kind is
/// switched off one time in three and the rest re-weighted by 1/4..4 (a
/// rate never exceeds 1). A scenario without `[faults]` stays fault-free:
/// only its author knows whether it is meant to converge under faults (it
/// needs a `[liveness]` phase for that).
fn faults(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    if s.faults.is_off() {
        return None;
    }
    let mut drawn = Vec::new();
    for (name, ratio) in fault_ratios(&mut s.faults) {
        if ratio.num == 0 {
            continue;
        }
        // Each kind from its own stream: adding a kind shifts no other.
        let mut own = rng.fork(name);
        if own.chance(Ratio::new(1, 3)) {
            *ratio = Ratio::NEVER;
            drawn.push(format!("{name}=off"));
        } else {
            let (a, b) = pick(&mut own, &[(1u64, 4u64), (1, 2), (1, 1), (2, 1), (4, 1)]);
            let num = u64::from(ratio.num) * a;
            let den = u64::from(ratio.den) * b;
            let g = gcd(num, den).max(1);
            let (num, den) = (
                (num / g).min(u64::from(u32::MAX)),
                (den / g).min(u64::from(u32::MAX)),
            );
            *ratio = Ratio::new(num as u32, den as u32);
            drawn.push(format!("{name}={}/{}", ratio.num, ratio.den));
        }
    }
    let c = &mut s.faults.clock;
    if !c.skew_max.is_zero() || c.drift_max_ppm > 0 {
        let mut own = rng.fork("clock.skew");
        if own.chance(Ratio::new(1, 3)) {
            c.skew_max = Duration::ZERO;
            c.drift_max_ppm = 0;
            drawn.push("clock.skew=off".into());
        } else {
            drawn.push(format!(
                "clock.skew={} drift={}ppm",
                duration::format(c.skew_max),
                c.drift_max_ppm
            ));
        }
    }
    Some(drawn.join(","))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Placement churn: a scenario with spare hosts and no placement step of its
/// own gets 2 to 5 of them, each drawn among those that keep the cluster
/// inside its envelope — add a spare, replace a host by a spare, remove a
/// host (only while more hosts than replicas stay), raise the replica count
/// by one (up to 3, never above the hosts) — at times drawn over the first
/// 10% to 60% of the run (before its liveness heal, when it has one). The
/// orders of joins, leaves and raises are what bring a host to copy from a
/// peer it dialled before another host left (quirk Q11), or a shard to a
/// single source; a scenario that sets its own placement steps keeps them.
fn placement(s: &mut Scenario, rng: &mut SimRng) -> Option<String> {
    use crate::scenario::format::{Action, Step};
    use crate::world::node_name::NodeName;
    use shardboot::types::NodeId;
    let is_placement = |a: &Action| {
        matches!(
            a,
            Action::AddNode { .. }
                | Action::RemoveNode { .. }
                | Action::ReplaceNode { .. }
                | Action::RaiseReplicas { .. }
        )
    };
    if s.cluster.spare_nodes == 0 || s.steps.iter().any(|st| is_placement(&st.get_ref().action)) {
        return None;
    }
    let nodes = s.cluster.nodes;
    let mut placed: Vec<u32> = (1..=nodes).collect();
    let mut spares: Vec<u32> = (nodes + 1..=nodes + s.cluster.spare_nodes).collect();
    let mut replicas = s.cluster.replicas;
    let end = s.liveness.as_ref().map_or(s.duration, |l| l.heal_at);
    let (lo, hi) = (
        s.duration.as_secs() / 10,
        (s.duration.as_secs() * 6 / 10).min(end.as_secs()),
    );
    let mut times: Vec<u64> = (0..rng.between(2, 5))
        .map(|_| rng.between(lo, hi))
        .collect();
    times.sort_unstable();
    let name = |n: u32| NodeName(NodeId(n));
    let mut drawn = Vec::new();
    for at in times {
        let mut choices = Vec::new();
        if !spares.is_empty() {
            choices.extend(["add", "replace"]);
        }
        if placed.len() > replicas.max(1) {
            choices.push("remove");
        }
        if replicas < placed.len().min(3) {
            choices.push("raise");
        }
        if choices.is_empty() {
            break;
        }
        let (action, what) = match pick(rng, &choices) {
            "add" => {
                let node = spares.remove(rng.below(spares.len() as u64) as usize);
                placed.push(node);
                (Action::AddNode { node: name(node) }, format!("add:n{node}"))
            }
            "replace" => {
                let new = spares.remove(rng.below(spares.len() as u64) as usize);
                let old = placed.remove(rng.below(placed.len() as u64) as usize);
                placed.push(new);
                let action = Action::ReplaceNode {
                    old: name(old),
                    new: name(new),
                };
                (action, format!("replace:n{old}:n{new}"))
            }
            "remove" => {
                let node = placed.remove(rng.below(placed.len() as u64) as usize);
                (
                    Action::RemoveNode { node: name(node) },
                    format!("remove:n{node}"),
                )
            }
            _ => {
                replicas += 1;
                (
                    Action::RaiseReplicas { replicas },
                    format!("raise:{replicas}"),
                )
            }
        };
        let step = Step {
            at: std::time::Duration::from_secs(at),
            action,
        };
        drawn.push(format!(
            "{what}@{}",
            crate::engine::duration::format(step.at)
        ));
        s.steps.push(toml::Spanned::new(0..0, step));
    }
    s.steps.sort_by_key(|st| st.get_ref().at);
    Some(drawn.join(","))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const TEXT: &str = r#"
name = "t"
duration = "1h"
[cluster]
nodes = 3
replicas = 2
shards = 2
[[table]]
name = "trips"
kind = "fact"
[[table]]
name = "cities"
kind = "dimension"
"#;

    fn scenario() -> Scenario {
        Scenario::parse(Path::new("t.toml"), TEXT).unwrap()
    }

    #[test]
    fn the_same_seed_draws_the_same_options() {
        let s = scenario();
        let a = randomise(&s, &mut SimRng::new(9).fork("swarm/options"));
        let b = randomise(&s, &mut SimRng::new(9).fork("swarm/options"));
        assert_eq!(a.choices, b.choices);
        assert_eq!(a.scheduler, b.scheduler);
    }

    #[test]
    fn seeds_draw_different_option_sets() {
        let s = scenario();
        let sets: std::collections::BTreeSet<String> = (0..20)
            .map(|seed| {
                let r = randomise(&s, &mut SimRng::new(seed).fork("swarm/options"));
                Choices(&r.choices).to_string()
            })
            .collect();
        assert!(sets.len() > 15, "{sets:?}");
    }

    #[test]
    fn fault_kinds_in_the_envelope_are_switched_off_or_reweighted_and_no_others_appear() {
        let mut s = scenario();
        s.faults.net.drop = Ratio::new(1, 100);
        s.faults.disk.read_eio = Ratio::new(1, 1000);
        let mut off = 0;
        for seed in 0..30 {
            let r = randomise(&s, &mut SimRng::new(seed).fork("swarm/options"));
            let f = &r.scenario.faults;
            assert_eq!(f.net.partition, Ratio::NEVER);
            assert!(
                f.net.drop.num * 1000 <= f.net.drop.den * 40,
                "{:?}",
                f.net.drop
            );
            off += usize::from(f.net.drop == Ratio::NEVER);
        }
        assert!((3..=20).contains(&off), "{off}");
        let quiet = randomise(&scenario(), &mut SimRng::new(1).fork("swarm/options"));
        assert!(quiet.scenario.faults.is_off());
        assert!(quiet.choices.iter().all(|c| c.knob != "faults"));
    }

    #[test]
    fn the_scheduler_is_drawn_per_seed_unless_the_scenario_names_one() {
        let s = scenario();
        let drawn: std::collections::BTreeSet<String> = (0..60)
            .map(|seed| {
                let r = randomise(&s, &mut SimRng::new(seed).fork("swarm/options"));
                assert_eq!(r.choices[0].value, r.scheduler.to_string());
                match r.scheduler {
                    Scheduler::Pct(_) => "pct".to_string(),
                    other => other.to_string(),
                }
            })
            .collect();
        assert_eq!(drawn, ["fifo", "pct", "random"].map(String::from).into());
        let mut fixed = scenario();
        fixed.scheduler = Some(Scheduler::pct(5));
        for seed in 0..20 {
            let r = randomise(&fixed, &mut SimRng::new(seed).fork("swarm/options"));
            assert_eq!(r.scheduler, Scheduler::pct(5));
        }
    }

    #[test]
    fn knobs_that_do_not_apply_draw_nothing() {
        let mut s = scenario();
        s.tables.retain(|t| t.name == "trips");
        let r = randomise(&s, &mut SimRng::new(1).fork("swarm/options"));
        assert!(r.choices.iter().all(|c| c.knob != "upserts_per_second"));
        assert!(r.choices.iter().any(|c| c.knob == "rows_per_second"));
    }

    #[test]
    fn placement_steps_are_drawn_only_with_spares_and_none_of_the_files_own() {
        use crate::scenario::format::Action;
        let placement_steps = |s: &Scenario| {
            s.steps
                .iter()
                .filter(|st| !matches!(st.get_ref().action, Action::Fault(_)))
                .map(|st| st.get_ref().clone())
                .collect::<Vec<_>>()
        };
        // No spares: nothing to draw.
        let r = randomise(&scenario(), &mut SimRng::new(3).fork("swarm/options"));
        assert!(placement_steps(&r.scenario).is_empty());
        let mut churn = scenario();
        churn.cluster.spare_nodes = 2;
        for seed in 0..40 {
            let r = randomise(&churn, &mut SimRng::new(seed).fork("swarm/options"));
            let steps = placement_steps(&r.scenario);
            assert!((2..=5).contains(&steps.len()), "seed {seed}: {steps:?}");
            let c = &r.scenario.cluster;
            let (mut hosts, mut replicas) = (c.nodes as usize, c.replicas);
            let mut last = Duration::ZERO;
            for st in &steps {
                assert!(
                    st.at >= last && st.at <= r.scenario.duration * 6 / 10,
                    "{st:?}"
                );
                last = st.at;
                match &st.action {
                    Action::AddNode { .. } => hosts += 1,
                    Action::RemoveNode { .. } => hosts -= 1,
                    Action::RaiseReplicas { replicas: n } => replicas = *n,
                    _ => {}
                }
                assert!(
                    hosts >= replicas.max(1) && replicas <= 3,
                    "seed {seed}: {steps:?}"
                );
            }
        }
        // A file with a placement step of its own keeps exactly that one.
        let mut own = churn.clone();
        own.steps.push(toml::Spanned::new(
            0..0,
            crate::scenario::format::Step {
                at: Duration::from_secs(600),
                action: Action::RaiseReplicas { replicas: 3 },
            },
        ));
        let r = randomise(&own, &mut SimRng::new(5).fork("swarm/options"));
        assert_eq!(placement_steps(&r.scenario).len(), 1);
    }
}
