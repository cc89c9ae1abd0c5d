//! The loops of every table shard of a data node (docs/MODEL.md §5):
//! ingestion, and the store's background jobs (archiving, backfill, purge
//! for fact tables; snapshot for dimension tables), each on its period.
//!
//! Every loop sleeps first and checks the node's and the table shard's stop
//! switch after each wake-up. Table-shard loops start after a random part of
//! their period (from the host's seeded RNG), so the shards of a host do not
//! all work in the same instant.

use std::rc::Rc;
use std::time::Duration;

use crate::buggify;
use crate::env::Env;
use crate::store::{JobReport, StoreError};
use crate::table_shard::TableShard;
use crate::types::TableKind;

use super::node::{DataNode, Work};

/// The `tracing` target of this file's events: `shardboot::datanode::loops`,
/// the module they were written in before it was split. The simulator's trace
/// hash covers event targets, so moving code must not change them.
const TARGET: &str = "shardboot::datanode::loops";

/// A background job of a table shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Archiving,
    Backfill,
    Purge,
    Snapshot,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Archiving => "archiving",
            Job::Backfill => "backfill",
            Job::Purge => "purge",
            Job::Snapshot => "snapshot",
        }
    }
}

impl<E: Env> DataNode<E> {
    /// Spawn the loops of a new table shard: ingestion, and its kind's jobs.
    pub(super) fn start_table_shard_loops(
        self: &Rc<Self>,
        ts: &Rc<TableShard<E>>,
        work: &Rc<Work>,
    ) {
        let o = &self.options;
        let ingest = Rc::clone(self).ingest_loop(Rc::clone(ts), Rc::clone(work));
        let _ingestion = self.env.spawn("ingestion", ingest);
        let jobs: &[(Job, Duration)] = match ts.schema().kind {
            TableKind::Fact => &[
                (Job::Archiving, o.archiving_interval),
                (Job::Backfill, o.backfill_interval),
                (Job::Purge, o.purge_interval),
            ],
            TableKind::Dimension => &[(Job::Snapshot, o.snapshot_interval)],
        };
        for (job, period) in jobs {
            let task = Rc::clone(self).job_loop(Rc::clone(ts), Rc::clone(work), *job, *period);
            let _job = self.env.spawn("background_job", task);
        }
    }

    /// A random first delay in `[0, period)`.
    fn jitter(&self, period: Duration) -> Duration {
        let ms = period.as_millis().max(1) as u64;
        Duration::from_millis(self.env.random_u64() % ms)
    }

    fn running(&self, work: &Work) -> bool {
        !work.stopped.get() && !self.stopped()
    }

    /// Ingest from the upstream log every `ingest_interval`, once the table
    /// shard is `Bootstrapped` (recovery hands over at the commit offset).
    async fn ingest_loop(self: Rc<Self>, ts: Rc<TableShard<E>>, work: Rc<Work>) {
        let period = self.options.ingest_interval;
        self.env.sleep(self.jitter(period)).await;
        loop {
            if !self.running(&work) {
                return;
            }
            if ts.is_bootstrapped() {
                let _busy = work.busy.lock().await;
                if !self.running(&work) {
                    return;
                }
                let max = self.options.store.upstream_read_max;
                if let Err(error) = ts.store().ingest(max).await {
                    let id = ts.id();
                    tracing::info!(target: TARGET,
                        table = %id.table, shard = %id.shard, error = %error,
                        "ingestion_failed"
                    );
                }
            }
            self.env.sleep(period).await;
        }
    }

    /// Run `job` every `period` while the table shard is `Bootstrapped` and
    /// the node is ready, with the peer server as the token source.
    async fn job_loop(
        self: Rc<Self>,
        ts: Rc<TableShard<E>>,
        work: Rc<Work>,
        job: Job,
        period: Duration,
    ) {
        self.env.sleep(self.jitter(period)).await;
        loop {
            if !self.running(&work) {
                return;
            }
            if ts.is_bootstrapped() && self.is_ready() {
                let _busy = work.busy.lock().await;
                if !self.running(&work) {
                    return;
                }
                let result = self.run_job(&ts, job).await;
                let id = ts.id();
                match result {
                    Ok(report) => tracing::debug!(target: TARGET,
                        table = %id.table, shard = %id.shard, job = job.name(),
                        batches = report.batches, token = ?report.token, deleted = report.deleted,
                        "background_job_ran"
                    ),
                    Err(error) => tracing::info!(target: TARGET,
                        table = %id.table, shard = %id.shard, job = job.name(), error = %error,
                        "background_job_failed"
                    ),
                }
            }
            if self.env.buggify(buggify::JOB_RUNS_EARLY) {
                self.env.sleep(self.jitter(period)).await;
            } else {
                self.env.sleep(period).await;
            }
        }
    }

    async fn run_job(&self, ts: &TableShard<E>, job: Job) -> Result<JobReport, StoreError> {
        let store = ts.store();
        let tokens = &*self.peer_server;
        match job {
            Job::Archiving => store.archive(tokens).await,
            Job::Backfill => store.backfill(tokens).await,
            Job::Purge => store.purge(tokens).await,
            Job::Snapshot => store.snapshot(tokens).await,
        }
    }
}
