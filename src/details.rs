//! Bootstrap progress details of one table shard (docs/MODEL.md §2 step 2):
//! the stage, the source peer, and per batch which vector parties still have
//! to be copied and which are done. Operators read it to follow a bootstrap;
//! the simulator's oracle reads it to check that a copy finished before the
//! needs-peer-copy flag was cleared.
//!
//! Plain data with no interior mutability: the table shard owns it (behind
//! its own `RefCell`) and stamps stage changes with its env's clock.

use std::collections::BTreeMap;
use std::fmt;

use crate::types::{BatchId, ColumnId, NodeId, Timestamp};

/// Where a bootstrap stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Not started, or reset.
    #[default]
    Waiting,
    /// Copying data from a peer.
    PeerCopy,
    /// Loading archive batches or the snapshot into memory.
    Preload,
    /// Replaying the redo log.
    Recovery,
    /// Done.
    Finished,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Waiting => "waiting",
            Stage::PeerCopy => "peercopy",
            Stage::Preload => "preload",
            Stage::Recovery => "recovery",
            Stage::Finished => "finished",
        })
    }
}

/// The copy status of one vector party (one column of one batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CopyStatus {
    /// Not part of this copy (the source has no such column).
    #[default]
    NotApplicable,
    CopyNeeded,
    CopyFinished,
}

impl fmt::Display for CopyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CopyStatus::NotApplicable => "not applicable",
            CopyStatus::CopyNeeded => "copy needed",
            CopyStatus::CopyFinished => "copy finished",
        })
    }
}

/// Progress of one table shard's bootstrap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootstrapDetails {
    stage: Stage,
    source: Option<NodeId>,
    num_columns: u32,
    /// When the stage last changed, on the host's clock.
    stage_time: Option<Timestamp>,
    /// Per batch, one status per column `0..num_columns`.
    batches: BTreeMap<BatchId, Vec<CopyStatus>>,
}

impl BootstrapDetails {
    /// Stage `waiting`, no source, no columns, no batches.
    pub fn new() -> Self {
        BootstrapDetails::default()
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Enter `stage` at `now`.
    pub fn set_stage(&mut self, stage: Stage, now: Timestamp) {
        self.stage = stage;
        self.stage_time = Some(now);
    }

    /// When the current stage began (`None` before any stage change).
    pub fn stage_time(&self) -> Option<Timestamp> {
        self.stage_time
    }

    /// The peer being copied from.
    pub fn source(&self) -> Option<NodeId> {
        self.source
    }

    /// A copy from `source` begins: it plans its own vector parties, so
    /// those of a copy from an earlier source (one this bootstrap fell over
    /// from) are forgotten rather than left "copy needed" for ever.
    pub fn set_source(&mut self, source: NodeId) {
        self.source = Some(source);
        self.batches.clear();
    }

    pub fn num_columns(&self) -> u32 {
        self.num_columns
    }

    /// The table's column count; column ids at or above it are ignored.
    /// Batches already recorded keep their length (upstream sets the count
    /// before adding any vector party).
    pub fn set_num_columns(&mut self, n: u32) {
        self.num_columns = n;
    }

    fn slot(&mut self, batch: BatchId, column: ColumnId) -> Option<&mut CopyStatus> {
        let n = self.num_columns as usize;
        let statuses = self
            .batches
            .entry(batch)
            .or_insert_with(|| vec![CopyStatus::NotApplicable; n]);
        statuses.get_mut(column.0 as usize)
    }

    /// Record a vector party to copy ("copy needed").
    pub fn add_vector_party_to_copy(&mut self, batch: BatchId, column: ColumnId) {
        if let Some(s) = self.slot(batch, column) {
            *s = CopyStatus::CopyNeeded;
        }
    }

    /// Record a vector party as copied ("copy finished").
    pub fn mark_vector_party_finished(&mut self, batch: BatchId, column: ColumnId) {
        if let Some(s) = self.slot(batch, column) {
            *s = CopyStatus::CopyFinished;
        }
    }

    /// The status of one vector party (`NotApplicable` if never recorded).
    pub fn status(&self, batch: BatchId, column: ColumnId) -> CopyStatus {
        self.batches
            .get(&batch)
            .and_then(|s| s.get(column.0 as usize))
            .copied()
            .unwrap_or_default()
    }

    /// Every batch with its per-column statuses, in batch order.
    pub fn batches(&self) -> &BTreeMap<BatchId, Vec<CopyStatus>> {
        &self.batches
    }

    /// Whether every vector party recorded for copy has finished.
    pub fn copy_complete(&self) -> bool {
        self.batches
            .values()
            .flatten()
            .all(|s| *s != CopyStatus::CopyNeeded)
    }

    /// Start over for a new bootstrap: stage `waiting`, no columns, no
    /// batches. The source and the stage time are kept (upstream does too),
    /// so the last attempt's source stays visible.
    pub fn clear(&mut self) {
        self.stage = Stage::Waiting;
        self.num_columns = 0;
        self.batches.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_track_stage_source_and_every_vector_party_copy() {
        let mut d = BootstrapDetails::new();
        d.set_num_columns(10);
        assert_eq!(d.stage().to_string(), "waiting");
        assert_eq!(d.source(), None);
        assert!(d.batches().is_empty());

        let now = Timestamp::from_secs(1234);
        d.set_stage(Stage::PeerCopy, now);
        d.set_source(NodeId(7));
        for c in 0..10 {
            d.add_vector_party_to_copy(BatchId(0), ColumnId(c));
        }
        assert_eq!(d.stage().to_string(), "peercopy");
        assert_eq!(d.stage_time(), Some(now));
        assert_eq!(d.source(), Some(NodeId(7)));
        for c in 0..10 {
            assert_eq!(d.status(BatchId(0), ColumnId(c)).to_string(), "copy needed");
        }
        assert!(!d.copy_complete());

        for c in 0..10 {
            d.mark_vector_party_finished(BatchId(0), ColumnId(c));
        }
        let later = Timestamp::from_secs(2000);
        d.set_stage(Stage::Finished, later);
        assert_eq!(d.stage().to_string(), "finished");
        for c in 0..10 {
            assert_eq!(
                d.status(BatchId(0), ColumnId(c)).to_string(),
                "copy finished"
            );
        }
        assert!(d.copy_complete());

        // A copy from another source (a fall-over) starts a new plan.
        let mut fell_over = d.clone();
        fell_over.add_vector_party_to_copy(BatchId(1), ColumnId(0));
        fell_over.set_source(NodeId(8));
        assert!(fell_over.batches().is_empty() && fell_over.copy_complete());
        assert_eq!(fell_over.source(), Some(NodeId(8)));

        d.clear();
        assert_eq!(d.stage(), Stage::Waiting);
        assert_eq!(d.num_columns(), 0);
        assert!(d.batches().is_empty());
        assert_eq!(d.source(), Some(NodeId(7)));
        assert_eq!(d.stage_time(), Some(later));
    }

    #[test]
    fn column_ids_outside_the_column_count_are_ignored() {
        let mut d = BootstrapDetails::new();
        d.set_num_columns(2);
        d.add_vector_party_to_copy(BatchId(5), ColumnId(2));
        d.mark_vector_party_finished(BatchId(5), ColumnId(9));
        assert_eq!(
            d.batches().get(&BatchId(5)),
            Some(&vec![CopyStatus::NotApplicable; 2])
        );
        assert_eq!(d.status(BatchId(5), ColumnId(2)), CopyStatus::NotApplicable);
    }

    #[test]
    fn stages_display_in_lowercase() {
        let names: Vec<String> = [
            Stage::Waiting,
            Stage::PeerCopy,
            Stage::Preload,
            Stage::Recovery,
            Stage::Finished,
        ]
        .iter()
        .map(Stage::to_string)
        .collect();
        assert_eq!(
            names,
            ["waiting", "peercopy", "preload", "recovery", "finished"]
        );
    }
}
