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
use shardboot::types::{ColumnId, Day, Offset, ShardId, TableKind, TableShardId};

use crate::engine::executor::{self, yield_now};
use crate::engine::rng::{Ratio, SimRng};
use crate::world::clock::TrueClock;

/// The value the upstream's row at `offset` holds in `column` (a fixed mix
/// of the two, so content is checked without being stored twice). This is
/// the upstream's own statement, which the oracle checks every replica's
/// files against; the port derives the values it writes with its own
/// `Record::value`, so a port that derives them wrongly disagrees with it.
pub fn row_value(offset: Offset, column: ColumnId) -> u64 {
    let mut x = offset
        .0
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(u64::from(column.0).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 29)
}

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
    logs: Rc<RefCell<Logs>>,
}

/// The logs, each found by its table shard id or, for the producer that
/// appends ~150k rows per run, by its position.
#[derive(Default)]
struct Logs {
    position: BTreeMap<TableShardId, usize>,
    logs: Vec<Vec<Record>>,
}

impl Logs {
    fn get(&self, shard: &TableShardId) -> &[Record] {
        self.position
            .get(shard)
            .map_or(&[], |&i| self.logs[i].as_slice())
    }

    /// The position of `shard`'s log, which is created empty if need be.
    fn position(&mut self, shard: &TableShardId) -> usize {
        let next = self.logs.len();
        let i = *self.position.entry(shard.clone()).or_insert(next);
        if i == next {
            self.logs.push(Vec::new());
        }
        i
    }

    /// Append a row to the log at `position`, at its next offset.
    fn append(&mut self, position: usize, day: Day, key: u32) {
        let log = &mut self.logs[position];
        let offset = Offset(log.len() as u64);
        log.push(Record { offset, day, key });
    }
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
        let log = logs.get(shard);
        let to = (to.0 as usize).min(log.len());
        let from = (from.0 as usize).min(to);
        f(&log[from..to])
    }

    /// The next offset of a table shard's log.
    pub fn head(&self, shard: &TableShardId) -> Offset {
        Offset(self.logs.borrow().get(shard).len() as u64)
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
            // Per table: the positions of its shards' logs (found once),
            // and the rows owed carried over between ticks, in tenths.
            let positions: Vec<Vec<usize>> = {
                let mut logs = this.logs.borrow_mut();
                tables
                    .iter()
                    .map(|t| match t.kind {
                        TableKind::Fact => (0..shards.max(1))
                            .map(|s| logs.position(&TableShardId::new(t.name.clone(), ShardId(s))))
                            .collect(),
                        TableKind::Dimension => vec![
                            logs.position(&TableShardId::new(t.name.clone(), ShardId::DIMENSION)),
                        ],
                    })
                    .collect()
            };
            let mut carry = vec![0u64; tables.len()];
            loop {
                executor::sleep(TICK).await;
                let today = clock.now().day();
                let mut logs = this.logs.borrow_mut();
                for ((t, at), acc) in tables.iter().zip(&positions).zip(&mut carry) {
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
                                let shard = rng.below(at.len() as u64) as usize;
                                let day = if rng.chance(workload.late) {
                                    let late =
                                        rng.between(1, u64::from(workload.late_max_days.max(1)));
                                    Day(today.0 - late as i32)
                                } else {
                                    today
                                };
                                logs.append(at[shard], day, 0);
                            }
                            TableKind::Dimension => {
                                let key =
                                    rng.below(u64::from(workload.dimension_keys.max(1))) as u32;
                                logs.append(at[0], today, key);
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
