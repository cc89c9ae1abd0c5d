//! The end-state check: every replica's rows against the upstream log up
//! to its commit offset (no data loss, no phantom data).

use std::collections::{BTreeMap, BTreeSet};

use shardboot::details::{BootstrapDetails, Stage};
use shardboot::model::{Record, ShardMeta, TableSchema};
use shardboot::placement::Placement;
use shardboot::store::{DamageKind, HeldRows};
use shardboot::types::{Day, NodeId, Offset, TableKind, TableShardId};

use crate::engine::time::VirtualTime;
use crate::world::upstream::Upstream;

use super::{Violation, ViolationKind};

/// One replica at the end of a run.
#[derive(Clone, Debug)]
pub struct ReplicaState {
    pub node: NodeId,
    pub shard: TableShardId,
    pub schema: TableSchema,
    pub bootstrapped: bool,
    pub today: Day,
    pub rows: HeldRows,
    /// The metadata on the host's durable image (what a restart reads).
    pub meta: ShardMeta,
    /// The progress the node reports for the table shard.
    pub details: BootstrapDetails,
}

/// What the end-state check looks at.
pub struct EndState<'a> {
    pub at: VirtualTime,
    pub placement: &'a Placement,
    pub upstream: &'a Upstream,
    pub replicas: Vec<ReplicaState>,
    /// Every running host's process (one that has finished assigning the
    /// final placement is judged on what it holds; an assignment in
    /// progress may still hold a removed table shard).
    pub hosts: Vec<super::HostState>,
}

/// The first table shard a host that assigned the final placement still
/// holds though the placement does not place it there: a fact table shard
/// of a shard not placed on the host, or a dimension table on a host with
/// no shard at all. Its files and memory would never be given back.
pub(super) fn stray_table_shard(
    placement: &Placement,
    assigned: &BTreeSet<NodeId>,
    replicas: &[ReplicaState],
    at: VirtualTime,
) -> Option<Violation> {
    replicas
        .iter()
        .filter(|r| assigned.contains(&r.node))
        .find(|r| match r.schema.kind {
            TableKind::Fact => placement.state(r.shard.shard, r.node).is_none(),
            TableKind::Dimension => !placement.contains_host(r.node),
        })
        .map(|r| Violation {
            kind: ViolationKind::Liveness,
            node: Some(r.node),
            shard: Some(r.shard.clone()),
            at,
            trace_index: None,
            detail: "the host still holds this table shard, which the final placement does not place on it".into(),
        })
}

/// Compare a replica's rows with the upstream log up to its commit offset.
pub(super) fn check_rows(
    r: &ReplicaState,
    upstream: &Upstream,
    at: VirtualTime,
) -> Option<Violation> {
    let violation = |kind, detail: String| Violation {
        kind,
        node: Some(r.node),
        shard: Some(r.shard.clone()),
        at,
        trace_index: None,
        detail,
    };
    if !r.bootstrapped {
        return Some(violation(
            ViolationKind::Liveness,
            "table shard is not bootstrapped at the end of the run".into(),
        ));
    }
    if let Some(detail) = misreported(r) {
        return Some(violation(ViolationKind::BootstrapDetails, detail));
    }
    // The layout is read from the metadata alone: a misdated batch also
    // points at files of a day that has none, which is the lesser news.
    if let Some(detail) = misplaced_batch(r) {
        return Some(violation(ViolationKind::ArchiveLayout, detail));
    }
    if let Some(d) = r.rows.damaged.first() {
        // Rows that are gone (or missing from a column) are lost; rows that
        // hold other values than the upstream's are phantom data.
        let kind = match d.kind {
            DamageKind::WrongValue => ViolationKind::PhantomData,
            DamageKind::Missing
            | DamageKind::Unreadable
            | DamageKind::Torn
            | DamageKind::RowsDiffer => ViolationKind::DataLoss,
        };
        return Some(violation(
            kind,
            format!("batch {} column {}: {:?}", d.batch, d.column, d.kind),
        ));
    }
    upstream.with_records(&r.shard, Offset(0), r.rows.commit_offset, |records| {
        compare_rows(r, records, violation)
    })
}

/// What a bootstrapped replica's reported details get wrong, if anything:
/// operators follow a bootstrap by them (docs/MODEL.md §2 step 2), so a
/// finished one must say finished, when (on its host's clock, within the
/// run: a day either side of `today` leaves room for clock faults), and
/// that nothing is left to copy.
pub(super) fn misreported(r: &ReplicaState) -> Option<String> {
    let d = &r.details;
    if d.stage() != Stage::Finished {
        return Some(format!(
            "bootstrapped, but the details say stage {}",
            d.stage()
        ));
    }
    let day = d
        .stage_time()
        .map(|t| i64::try_from(t.0 / 86_400_000).unwrap_or(i64::MAX));
    let today = i64::from(r.today.0);
    if !day.is_some_and(|day| (today - 1..=today + 1).contains(&day)) {
        return Some(format!(
            "the details stamp the stage at {:?}, not on day {} of the host's clock",
            d.stage_time(),
            r.today.0
        ));
    }
    if !d.copy_complete() {
        return Some("bootstrapped, but the details still list vector parties to copy".into());
    }
    None
}

/// The first archive batch of a fact replica's durable metadata whose day
/// the cutoff it was written at (its version) had not passed: archiving
/// moves only rows of days before the new cutoff, backfill only late rows,
/// so such a batch holds rows that still belonged in memory.
fn misplaced_batch(r: &ReplicaState) -> Option<String> {
    if r.schema.kind != TableKind::Fact {
        return None;
    }
    r.meta
        .batches
        .iter()
        .find(|(batch, m)| day_start_secs(Day(batch.0)) >= u64::from(m.version.0))
        .map(|(batch, m)| {
            format!(
                "batch {batch} written at cutoff {} (its day starts at {})",
                m.version.0,
                day_start_secs(Day(batch.0))
            )
        })
}

/// What a fact table shard's background jobs still owe, read from its
/// durable metadata on `today` (`lag`: the store's archive lag in days): the
/// archiving cutoff must have reached the start of `today − lag` and purge
/// must have dropped every batch beyond retention. The caller takes `today`
/// a little behind the virtual clock, for host clocks a little behind it.
pub fn jobs_behind(schema: &TableSchema, meta: &ShardMeta, today: Day, lag: u32) -> Option<String> {
    if schema.kind != TableKind::Fact {
        return None;
    }
    let due = Day(today
        .0
        .saturating_sub(i32::try_from(lag).unwrap_or(i32::MAX)));
    if u64::from(meta.cutoff.0) < day_start_secs(due) {
        return Some(format!(
            "archiving cutoff {} is before the start of day {} (today {}, lag {lag})",
            meta.cutoff.0, due.0, today.0
        ));
    }
    meta.batches
        .keys()
        .find(|b| !within_retention(schema.retention_days, Day(b.0), today))
        .map(|b| {
            format!(
                "batch {b} is beyond the {}-day retention on day {} and still archived",
                schema.retention_days, today.0
            )
        })
}

/// The oracle's own statements of the two calendar rules (docs/MODEL.md
/// §1), never the port's functions: a port whose rule is wrong must
/// disagree with them.
///
/// Seconds since the epoch at which `day` starts (days before the epoch
/// start at 0, as event times do).
fn day_start_secs(day: Day) -> u64 {
    u64::try_from(day.0).unwrap_or(0) * 86_400
}

/// Whether a fact row of `day` is within `retention_days` on `today` (0
/// keeps every day): the last `retention_days` days, today included.
fn within_retention(retention_days: u32, day: Day, today: Day) -> bool {
    retention_days == 0 || i64::from(day.0) > i64::from(today.0) - i64::from(retention_days)
}

/// [`check_rows`] once the replica is bootstrapped and undamaged: against
/// the upstream `records` below its commit offset.
pub(super) fn compare_rows(
    r: &ReplicaState,
    records: &[Record],
    violation: impl Fn(ViolationKind, String) -> Violation,
) -> Option<Violation> {
    // Every archived row must sit in the batch of its event day.
    for (batch, offsets) in &r.rows.batches {
        if let Some(o) = offsets.iter().find(|o| {
            records
                .get(o.0 as usize)
                .is_some_and(|rec| rec.day.batch() != *batch)
        }) {
            return Some(violation(
                ViolationKind::PhantomData,
                format!("row at offset {o} archived in batch {batch}, not its event day's"),
            ));
        }
    }
    let retained = || {
        records
            .iter()
            .filter(|rec| within_retention(r.schema.retention_days, rec.day, r.today))
            .map(|rec| rec.offset)
    };
    // The usual end: a fact replica holds exactly the retained rows (one
    // pass, nothing collected).
    if r.schema.kind == TableKind::Fact && retained().eq(r.rows.offsets.iter().copied()) {
        return None;
    }
    let expected: Vec<Offset> = match r.schema.kind {
        TableKind::Fact => retained().collect(),
        TableKind::Dimension => {
            let latest: BTreeMap<u32, Offset> =
                records.iter().map(|rec| (rec.key, rec.offset)).collect();
            let mut v: Vec<Offset> = latest.into_values().collect();
            v.sort();
            v
        }
    };
    if expected == r.rows.offsets {
        return None;
    }
    if let Some(missing) = expected
        .iter()
        .find(|o| r.rows.offsets.binary_search(o).is_err())
    {
        let count = expected
            .iter()
            .filter(|o| r.rows.offsets.binary_search(o).is_err())
            .count();
        return Some(violation(
            ViolationKind::DataLoss,
            format!(
                "{count} upstream rows below commit offset {} missing, first offset {missing}",
                r.rows.commit_offset
            ),
        ));
    }
    if let Some(extra) = r
        .rows
        .offsets
        .iter()
        .find(|o| expected.binary_search(o).is_err())
    {
        return Some(violation(
            ViolationKind::PhantomData,
            format!("row at offset {extra} is not an upstream row within retention"),
        ));
    }
    None
}
