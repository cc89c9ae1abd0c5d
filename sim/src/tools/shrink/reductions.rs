//! The reductions the shrinker tries, biggest wins first: each gives
//! candidate scenarios smaller than a failing one.

use std::time::Duration;

use shardboot::types::NodeId;
use toml::Spanned;

use crate::check::oracle::Violation;
use crate::engine::rng::Ratio;
use crate::scenario::format::{Action, OptionsSpec, Scenario, Step};
use crate::scenario::randomise::fault_ratios;
use crate::world::faults::FaultConfig;

/// A reduction: candidates smaller than `s` (which fails with `v`).
pub type Reduction = fn(&Scenario, &Violation) -> Vec<Scenario>;

/// The reductions, biggest wins first (a shorter run makes every later
/// candidate cheaper).
pub const REDUCTIONS: &[(&str, Reduction)] = &[
    ("cut duration", cut_duration),
    ("drop steps", drop_steps),
    ("drop tables", drop_tables),
    ("drop nodes", drop_nodes),
    ("fewer shards", fewer_shards),
    ("fewer replicas", fewer_replicas),
    ("fewer columns", fewer_columns),
    ("drop fault kinds", drop_fault_kinds),
    ("drop quirks", drop_quirks),
    ("default options", default_options),
    ("lower rates", lower_rates),
    ("lower fault rates", lower_fault_rates),
    ("earlier steps", earlier_steps),
];

pub(super) fn step(at: Duration, action: Action) -> Spanned<Step> {
    Spanned::new(0..0, Step { at, action })
}

/// Keep the steps `keep` accepts.
pub(super) fn with_steps(s: &Scenario, keep: impl Fn(usize, &Step) -> bool) -> Scenario {
    let mut out = s.clone();
    out.steps = s
        .steps
        .iter()
        .enumerate()
        .filter(|(i, st)| keep(*i, st.get_ref()))
        .map(|(_, st)| st.clone())
        .collect();
    out
}

/// When the scenario's last step fires (zero without steps).
fn last_step_at(s: &Scenario) -> Duration {
    s.steps
        .iter()
        .map(|st| st.get_ref().at)
        .max()
        .unwrap_or_default()
}

pub(super) fn cut_duration(s: &Scenario, v: &Violation) -> Vec<Scenario> {
    if !v.kind.is_safety() {
        // A liveness failure shows at the end of the run: a shorter run
        // would fail for the trivial reason that nothing had time to
        // finish — unless the run heals earlier and keeps its time to
        // converge.
        return earlier_heal(s).into_iter().collect();
    }
    let mut out = Vec::new();
    // The run stops within a second after a violation seen mid-run: nothing
    // later mattered.
    let just_past = Duration::from_secs(v.at.elapsed().as_secs() + 2);
    if just_past < s.duration {
        let mut c = with_steps(s, |_, st| st.at <= just_past);
        c.duration = just_past;
        out.push(c);
    }
    // A violation seen at the end (end-state checks): halve the time after
    // the last step (whole seconds).
    let last = last_step_at(s);
    let tail = s.duration.saturating_sub(last).as_secs();
    if tail >= 2 {
        let mut c = s.clone();
        c.duration = last + Duration::from_secs(tail / 2);
        out.push(c);
    }
    out
}

/// A run with a liveness phase, healed halfway between its last step and
/// its heal (whole seconds) and ended as much earlier: as long to converge
/// after the heal as before, so a liveness failure there is as real as the
/// one it shrinks.
pub(super) fn earlier_heal(s: &Scenario) -> Option<Scenario> {
    let heal_at = s.liveness.as_ref()?.heal_at;
    let last = last_step_at(s);
    let cut = Duration::from_secs(heal_at.checked_sub(last)?.as_secs() / 2);
    if cut.is_zero() {
        return None;
    }
    let mut c = s.clone();
    c.liveness.as_mut()?.heal_at = heal_at - cut;
    c.duration = s.duration.checked_sub(cut)?;
    Some(c)
}

pub(super) fn drop_steps(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let n = s.steps.len();
    let mut out = Vec::new();
    let mut chunk = n.div_ceil(2);
    while chunk >= 1 {
        for start in (0..n).step_by(chunk) {
            out.push(with_steps(s, |i, _| i < start || i >= start + chunk));
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2).min(chunk - 1).max(1);
    }
    out
}

pub(super) fn drop_tables(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    (0..s.tables.len())
        .map(|i| {
            let name = s.tables[i].name.clone();
            let mut out = with_steps(
                s,
                |_, st| !matches!(&st.action, Action::BootstrapAgain { table, .. } if *table == name),
            );
            out.tables.remove(i);
            out
        })
        .collect()
}

pub(super) fn drop_nodes(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let c = &s.cluster;
    let total = c.nodes + c.spare_nodes;
    (1..=total)
        .rev()
        .filter_map(|gone| {
            let mut out = s.clone();
            if gone <= c.nodes {
                if c.nodes <= 1 || (c.nodes - 1) < c.replicas as u32 {
                    return None;
                }
                out.cluster.nodes -= 1;
            } else {
                out.cluster.spare_nodes -= 1;
            }
            let rename = |n: NodeId| match n.0.cmp(&gone) {
                std::cmp::Ordering::Less => Some(n),
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(NodeId(n.0 - 1)),
            };
            out.steps = s
                .steps
                .iter()
                .filter_map(|st| {
                    let st = st.get_ref();
                    st.action.map_nodes(&rename).map(|a| step(st.at, a))
                })
                .collect();
            Some(out)
        })
        .collect()
}

/// Smaller values to try for a count: 1, half, one less (deduplicated,
/// each below `n` and at least `min`).
pub(super) fn smaller(n: u64, min: u64) -> Vec<u64> {
    let mut v: Vec<u64> = [min, n / 2, n.saturating_sub(1)]
        .into_iter()
        .filter(|x| *x < n && *x >= min)
        .collect();
    v.dedup();
    v
}

pub(super) fn fewer_shards(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    smaller(u64::from(s.cluster.shards), 1)
        .into_iter()
        .map(|n| {
            let n = n as u32;
            let mut out = with_steps(
                s,
                |_, st| !matches!(st.action, Action::BootstrapAgain { shard, .. } if shard >= n),
            );
            out.cluster.shards = n;
            out
        })
        .collect()
}

pub(super) fn fewer_replicas(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    smaller(s.cluster.replicas as u64, 1)
        .into_iter()
        .map(|n| {
            let mut out = s.clone();
            out.cluster.replicas = n as usize;
            out
        })
        .collect()
}

pub(super) fn fewer_columns(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    for (i, t) in s.tables.iter().enumerate() {
        for n in smaller(u64::from(t.columns), 1) {
            let mut c = s.clone();
            c.tables[i].columns = n as u32;
            out.push(c);
        }
    }
    out
}

/// The random fault kinds of `f` with a rate above zero, by name.
pub(super) fn fault_kinds_on(f: &FaultConfig) -> Vec<&'static str> {
    fault_ratios(&mut f.clone())
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, _)| n)
        .collect()
}

pub(super) fn drop_fault_kinds(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    for name in fault_kinds_on(&s.faults) {
        let mut c = s.clone();
        for (n, r) in fault_ratios(&mut c.faults) {
            if n == name {
                *r = Ratio::NEVER;
            }
        }
        out.push(c);
    }
    let clock = &s.faults.clock;
    if !clock.skew_max.is_zero() || clock.drift_max_ppm > 0 {
        let mut c = s.clone();
        c.faults.clock.skew_max = Duration::ZERO;
        c.faults.clock.drift_max_ppm = 0;
        out.push(c);
    }
    out
}

pub(super) fn lower_fault_rates(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut probe = s.faults.clone();
    let names: Vec<&str> = fault_ratios(&mut probe)
        .into_iter()
        .filter(|(_, r)| r.num > 0)
        .map(|(n, _)| n)
        .collect();
    for name in names {
        let mut c = s.clone();
        for (n, r) in fault_ratios(&mut c.faults) {
            if n == name {
                // Half as likely: halve the numerator, else double the
                // denominator.
                *r = if r.num > 1 {
                    Ratio::new(r.num / 2, r.den)
                } else {
                    Ratio::new(1, r.den.saturating_mul(2))
                };
            }
        }
        // Only while it stays a meaningful rate (below one in a million
        // is as good as off, which `drop fault kinds` tries).
        if fault_ratios(&mut c.faults)
            .iter()
            .all(|(_, r)| r.num == 0 || r.den <= 1_000_000)
        {
            out.push(c);
        }
    }
    out
}

/// `s` with every quirk switched off (the fixed code).
pub(super) fn without_quirks(s: &Scenario) -> Scenario {
    let mut out = s.clone();
    out.quirks.clear();
    out
}

pub(super) fn drop_quirks(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    (0..s.quirks.len())
        .map(|i| {
            let mut out = s.clone();
            out.quirks.remove(i);
            out
        })
        .collect()
}

pub(super) fn default_options(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    // Each clears one option the scenario sets (true if it was set).
    let resets: [fn(&mut OptionsSpec) -> bool; 4] = [
        |o| o.max_concurrent_table_shards.take().is_some(),
        |o| o.max_concurrent_streams_per_table_shard.take().is_some(),
        |o| o.session_ttl.take().is_some(),
        |o| o.ingest_interval.take().is_some(),
    ];
    resets
        .iter()
        .filter_map(|reset| {
            let mut c = s.clone();
            reset(&mut c.options).then_some(c)
        })
        .collect()
}

pub(super) fn lower_rates(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    let w = &s.workload;
    for n in smaller(u64::from(w.rows_per_second), 0) {
        let mut c = s.clone();
        c.workload.rows_per_second = n as u32;
        out.push(c);
    }
    for n in smaller(u64::from(w.upserts_per_second), 0) {
        let mut c = s.clone();
        c.workload.upserts_per_second = n as u32;
        out.push(c);
    }
    if w.late.num > 0 {
        let mut c = s.clone();
        c.workload.late = Ratio::NEVER;
        out.push(c);
    }
    for n in smaller(u64::from(w.late_max_days), 1) {
        let mut c = s.clone();
        c.workload.late_max_days = n as u32;
        out.push(c);
    }
    for n in smaller(u64::from(w.dimension_keys), 1) {
        let mut c = s.clone();
        c.workload.dimension_keys = n as u32;
        out.push(c);
    }
    out
}

pub(super) fn earlier_steps(s: &Scenario, _: &Violation) -> Vec<Scenario> {
    let mut out = Vec::new();
    for (i, st) in s.steps.iter().enumerate() {
        let at = st.get_ref().at;
        // Whole seconds, so that the file states exactly what ran.
        for earlier in [Duration::ZERO, Duration::from_secs(at.as_secs() / 2)] {
            if earlier < at {
                let mut c = s.clone();
                c.steps[i] = step(earlier, st.get_ref().action.clone());
                out.push(c);
            }
        }
    }
    out
}
