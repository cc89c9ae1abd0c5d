//! Random faults made explicit: a failing run's random fault episodes
//! become scripted steps, so the shrinker can drop them one by one and a
//! regression file no longer depends on the seed's draws.

use std::time::Duration;

use shardboot::types::NodeId;

use crate::engine::executor::Scheduler;
use crate::engine::rng::Ratio;
use crate::engine::trace::Keep;
use crate::harness::artifact::to_toml;
use crate::harness::run::{RunOptions, run};
use crate::scenario::format::{Action, Scenario};
use crate::scenario::randomise::fault_ratios;
use crate::world::node_name::NodeName;

use super::reductions::step;

/// The random fault kinds that are episodes with a scripted equivalent
/// (a fault step), and those without one.
const EPISODES: [&str; 4] = ["net.partition", "net.hold", "net.unhealthy", "clock.jump"];

/// `s` with its random fault *episodes* (partitions, held links, unhealthy
/// hosts, clock jumps) replaced by the explicit fault steps of what fired in
/// the run of `seed`/`scheduler`, and those kinds switched off; `None` when
/// there is nothing to convert or a random kind without a scripted
/// equivalent (drops, stream cuts, disk errors, ...) is still on. The caller
/// checks that the result still fails: removing the random fault driver
/// changes the schedule.
pub fn explicit_faults(s: &Scenario, seed: u64, scheduler: Scheduler) -> Option<Scenario> {
    use crate::faults::steps::{ClockShift, FaultAction};
    let mut probe = s.faults.clone();
    let on: Vec<&str> = fault_ratios(&mut probe)
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, _)| n)
        .collect();
    let clock = &s.faults.clock;
    if on.is_empty()
        || on.iter().any(|n| !EPISODES.contains(n))
        || !clock.skew_max.is_zero()
        || clock.drift_max_ppm > 0
    {
        return None;
    }
    let report = run(
        s,
        RunOptions {
            scheduler,
            keep: Keep::All,
            ..RunOptions::seed(seed)
        },
    );
    let node = |v: Option<&str>| -> Option<NodeName> {
        Some(NodeName(NodeId(v?.strip_prefix('n')?.parse().ok()?)))
    };
    let mut steps: Vec<(Duration, Action)> = Vec::new();
    for e in report.trace.events() {
        if e.name() != "fault_injected" || e.field("source") != Some("random") {
            continue;
        }
        let at = Duration::from_millis(e.time.elapsed().as_millis() as u64);
        let lasting = || Some(Duration::from_millis(e.field("for_ms")?.parse().ok()?));
        let fault = |a| Action::Fault(a);
        match e.field("kind")? {
            "partition" => {
                // `{NodeId(1), NodeId(3)}`
                let nodes: Vec<NodeName> = e
                    .field("nodes")?
                    .split("NodeId(")
                    .skip(1)
                    .filter_map(|p| p.split(')').next()?.parse().ok())
                    .map(|n| NodeName(NodeId(n)))
                    .collect();
                let oneway = e.field("oneway") == Some("true");
                steps.push((
                    at,
                    fault(FaultAction::Partition {
                        nodes,
                        from: Vec::new(),
                        oneway,
                    }),
                ));
                steps.push((at + lasting()?, fault(FaultAction::Heal {})));
            }
            "hold_link" => {
                let (from, to) = (node(e.field("from"))?, node(e.field("to"))?);
                steps.push((at, fault(FaultAction::HoldLink { from, to })));
                steps.push((
                    at + lasting()?,
                    fault(FaultAction::ReleaseLink { from, to }),
                ));
            }
            "unhealthy" => {
                let node = node(e.field("node"))?;
                steps.push((
                    at,
                    fault(FaultAction::Unhealthy {
                        node,
                        lasting: lasting()?,
                    }),
                ));
            }
            "clock_jump" => {
                let node = node(e.field("node"))?;
                let by = ClockShift {
                    forward: e.field("forward") == Some("true"),
                    by: Duration::from_millis(e.field("by_ms")?.parse().ok()?),
                };
                steps.push((at, fault(FaultAction::ClockJump { node, by })));
            }
            _ => return None,
        }
    }
    let mut out = s.clone();
    for (name, r) in fault_ratios(&mut out.faults) {
        if EPISODES.contains(&name) {
            *r = Ratio::NEVER;
        }
    }
    out.steps.extend(
        steps
            .into_iter()
            .filter(|(at, _)| *at <= s.duration)
            .map(|(at, a)| step(at, a)),
    );
    out.steps.sort_by_key(|st| st.get_ref().at);
    Scenario::parse(std::path::Path::new("explicit.toml"), &to_toml(&out)).ok()
}
