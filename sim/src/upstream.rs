//! The upstream log of every table shard (like Kafka partitions) and the
//! seeded workload that fills it as virtual time passes.
//!
//! Fact rows carry an event day: mostly today (by the true clock), and a
//! configurable share of late rows from the previous days, which exercise
//! backfill. Dimension rows upsert keys from a small key space. The log is
//! the ground truth the oracle compares replicas against.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardboot::env::{UpstreamError, UpstreamLog};
use shardboot::model::{Record, TableSchema};
use shardboot::types::{Day, Offset, ShardId, TableKind, TableShardId};

use crate::clock::TrueClock;
use crate::executor::{self, yield_now};
use crate::rng::{Ratio, SimRng};

/// What the workload produces. Part of a scenario (`[workload]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Fact rows per second per fact table, over all its shards.
    pub rows_per_second: u32,
    /// Dimension upserts per second per dimension table.
    pub upserts_per_second: u32,
    /// Share of fact rows that arrive late (event day before today).
    pub late: Ratio,
    /// How many days late a late row can be (1..=this).
    pub late_max_days: u32,
    /// Distinct keys of a dimension table.
    pub dimension_keys: u32,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            rows_per_second: 20,
            upserts_per_second: 2,
            late: Ratio::new(1, 20),
            late_max_days: 2,
            dimension_keys: 50,
        }
    }
}

/// Every table shard's log. Cloning shares it.
#[derive(Clone, Default)]
pub struct Upstream {
    logs: Rc<RefCell<BTreeMap<TableShardId, Vec<Record>>>>,
}

impl Upstream {
    /// Records `[from, to)` of a table shard (ground truth for the oracle).
    pub fn records(&self, shard: &TableShardId, from: Offset, to: Offset) -> Vec<Record> {
        self.with_records(shard, from, to, <[Record]>::to_vec)
    }

    /// `f` of records `[from, to)` of a table shard, without copying them
    /// (the oracle reads every replica's whole log at the end of a run).
    pub fn with_records<R>(
        &self,
        shard: &TableShardId,
        from: Offset,
        to: Offset,
        f: impl FnOnce(&[Record]) -> R,
    ) -> R {
        let logs = self.logs.borrow();
        let log = logs.get(shard).map(Vec::as_slice).unwrap_or_default();
        let to = (to.0 as usize).min(log.len());
        let from = (from.0 as usize).min(to);
        f(&log[from..to])
    }

    /// The next offset of a table shard's log.
    pub fn head(&self, shard: &TableShardId) -> Offset {
        Offset(self.logs.borrow().get(shard).map_or(0, |l| l.len() as u64))
    }

    fn append(&self, shard: &TableShardId, day: Day, key: u32) {
        let mut logs = self.logs.borrow_mut();
        // Look up before inserting: the shard's log exists after its first
        // row, and the id (with its table name) would be cloned for nothing.
        let log = match logs.get_mut(shard) {
            Some(log) => log,
            None => logs.entry(shard.clone()).or_default(),
        };
        let offset = Offset(log.len() as u64);
        log.push(Record { offset, day, key });
    }

    /// Produce the workload forever, every 100 ms of virtual time.
    pub fn produce(
        &self,
        workload: Workload,
        tables: Vec<TableSchema>,
        shards: u32,
        clock: TrueClock,
        mut rng: SimRng,
    ) -> impl Future<Output = ()> + 'static {
        let this = self.clone();
        async move {
            const TICK: Duration = Duration::from_millis(100);
            // Per table: its shards' ids (built once), and the rows owed
            // carried over between ticks, in tenths.
            let shard_ids: Vec<Vec<TableShardId>> = tables
                .iter()
                .map(|t| match t.kind {
                    TableKind::Fact => (0..shards.max(1))
                        .map(|s| TableShardId::new(t.name.clone(), ShardId(s)))
                        .collect(),
                    TableKind::Dimension => {
                        vec![TableShardId::new(t.name.clone(), ShardId::DIMENSION)]
                    }
                })
                .collect();
            let mut carry = vec![0u64; tables.len()];
            loop {
                executor::sleep(TICK).await;
                let today = clock.now().day();
                for ((t, ids), acc) in tables.iter().zip(&shard_ids).zip(&mut carry) {
                    let per_sec = match t.kind {
                        TableKind::Fact => workload.rows_per_second,
                        TableKind::Dimension => workload.upserts_per_second,
                    };
                    // Whole rows per tick, carrying the fraction (tenths).
                    *acc += u64::from(per_sec);
                    let n = *acc / 10;
                    *acc %= 10;
                    for _ in 0..n {
                        match t.kind {
                            TableKind::Fact => {
                                let shard = rng.below(ids.len() as u64) as usize;
                                let day = if rng.chance(workload.late) {
                                    let late =
                                        rng.between(1, u64::from(workload.late_max_days.max(1)));
                                    Day(today.0 - late as i32)
                                } else {
                                    today
                                };
                                this.append(&ids[shard], day, 0);
                            }
                            TableKind::Dimension => {
                                let key =
                                    rng.below(u64::from(workload.dimension_keys.max(1))) as u32;
                                this.append(&ids[0], today, key);
                            }
                        }
                    }
                }
            }
        }
    }
}

impl UpstreamLog for Upstream {
    async fn read(
        &self,
        shard: &TableShardId,
        from: Offset,
        max: usize,
    ) -> Result<Vec<Record>, UpstreamError> {
        yield_now().await;
        let to = Offset(from.0.saturating_add(max as u64));
        Ok(self.records(shard, from, to))
    }
}
