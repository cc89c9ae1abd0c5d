//! The periodic loops of a data node (docs/MODEL.md §5): the availability
//! check, the readiness check, and per table shard ingestion and background
//! jobs.
//!
//! Every loop sleeps first and checks the node's (or the table shard's)
//! stop switch after each wake-up. Table-shard loops start after a random
//! part of their period (from the host's seeded RNG), so the shards of a
//! host do not all work in the same instant.

use std::rc::Rc;
use std::time::Duration;

use crate::buggify;
use crate::env::{Cluster, Env};
use crate::probe::Probe;
use crate::store::{JobReport, StoreError};
use crate::table_shard::TableShard;
use crate::types::{ShardId, ShardState, TableKind, TableShardId};

use super::{DataNode, Work};

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
    /// Every `availability_check_interval`: mark the ready `Initializing`
    /// shards `Available`. A failed call is simply made again next tick.
    pub(super) async fn availability_loop(self: Rc<Self>) {
        loop {
            self.env
                .sleep(self.options.availability_check_interval)
                .await;
            if self.stopped() {
                return;
            }
            self.check_availability().await;
        }
    }

    /// The shards this host holds `Initializing` (as assigned and in the
    /// current view) whose table shards are ready, marked `Available`.
    pub(super) async fn check_availability(&self) {
        let node = self.env.node();
        let ready: Vec<ShardId> = {
            let _guard = self.lock.lock().await;
            let view = self.env.cluster().view();
            let assigned = self.state.borrow().shards.clone();
            assigned
                .iter()
                .filter(|(shard, state)| {
                    **state == ShardState::Initializing
                        && view.placement.state(**shard, node) == Some(ShardState::Initializing)
                        && self.memstore.shard_ready(**shard, self.options.quirks)
                })
                .map(|(shard, _)| *shard)
                .collect()
        };
        if ready.is_empty() {
            return;
        }
        let result = self.env.cluster().mark_available(node, ready.clone()).await;
        let retried = std::mem::replace(
            &mut self.state.borrow_mut().mark_available_failed,
            result.is_err(),
        );
        match result {
            Ok(()) => {
                if retried {
                    Probe::MarkAvailableRetried.hit();
                }
                for shard in ready {
                    tracing::info!(node = %node, shard = %shard, "shard_marked_available");
                }
            }
            Err(error) => tracing::info!(
                node = %node, shards = ?ready, error = %error,
                "mark_available_failed"
            ),
        }
    }

    /// Every `readiness_check_interval` until the check passes once; then
    /// the peer server serves copies and background jobs may run.
    pub(super) async fn readiness_loop(self: Rc<Self>) {
        loop {
            self.env.sleep(self.options.readiness_check_interval).await;
            if self.stopped() {
                return;
            }
            if self.check_readiness().await {
                self.state.borrow_mut().ready = true;
                self.peer_server.set_ready(true);
                tracing::info!(node = %self.env.node(), "node_ready");
                return;
            }
        }
    }

    /// Ready when the host is not in the placement, or when every fact
    /// table shard of its non-`Initializing` shards and every dimension
    /// table is `Bootstrapped` (a shard set must have been assigned).
    pub(super) async fn check_readiness(&self) -> bool {
        let _guard = self.lock.lock().await;
        if self.state.borrow().assigned_version.is_none() {
            return false;
        }
        let node = self.env.node();
        let view = self.env.cluster().view();
        if !view.placement.contains_host(node) {
            return true;
        }
        let bootstrapped = |table: &str, shard: ShardId| {
            self.memstore
                .get(&TableShardId::new(table, shard))
                .is_some_and(|ts| ts.is_bootstrapped())
        };
        let facts_ok = view
            .placement
            .shards_of(node)
            .into_iter()
            .filter(|(_, state)| *state != ShardState::Initializing)
            .all(|(shard, _)| {
                view.tables
                    .values()
                    .filter(|t| t.kind == TableKind::Fact)
                    .all(|t| bootstrapped(&t.name, shard))
            });
        facts_ok
            && view
                .tables
                .values()
                .filter(|t| t.kind == TableKind::Dimension)
                .all(|t| bootstrapped(&t.name, ShardId::DIMENSION))
    }

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
                    tracing::info!(
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
                    Ok(report) => tracing::debug!(
                        table = %id.table, shard = %id.shard, job = job.name(),
                        batches = report.batches, token = ?report.token, deleted = report.deleted,
                        "background_job_ran"
                    ),
                    Err(error) => tracing::info!(
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
