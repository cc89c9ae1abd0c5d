//! The bootstrap of one table shard (docs/MODEL.md §2, upstream
//! `memstore/bootstrap.go`, `TableShard.Bootstrap`).
//!
//! [`TableShard::bootstrap`] runs the eight steps of docs/MODEL.md §2: refuse
//! a second concurrent bootstrap, reset the progress details, copy the data
//! from a peer when the replica needs it (choose and shuffle the sources,
//! borrow a connection, [`TableShard::fetch_data_from_peer`]), load the
//! metadata, preload, recover, finish.
//!
//! Upstream quirks reproduced here behind switches: Q1 (shuffle seeded by
//! the clock), Q2 (no fall-over after a copy failure), Q12 (no source taken
//! as a brand-new placement). What is deliberately not modelled: the
//! bootstrap lock as a real lock (one thread: the check-and-set below has no
//! await inside, so it is atomic), and table incarnations.

use std::cell::Cell;

use thiserror::Error;

use crate::details::Stage;
use crate::env::Env;
use crate::options::Options;
use crate::peer_source::{NoPeerAvailable, PeerSource};
use crate::placement::ClusterView;
use crate::probe::Probe;
use crate::quirks::Quirk;
use crate::store::StoreError;
use crate::types::{NodeId, ShardId, ShardState};

use super::copy::CopyError;
use super::shard::{BootstrapState, TableShard};

/// The `tracing` target of this file's events: `shardboot::table_shard`, the
/// module they were written in before it was split. The simulator's trace
/// hash covers event targets, so moving code must not change them.
const TARGET: &str = "shardboot::table_shard";

/// Every way [`TableShard::bootstrap`] can fail. Each exit leaves the state
/// `NotStarted` (so the bootstrap can be retried) except
/// [`BootstrapError::AlreadyBootstrapping`], which changes nothing.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BootstrapError {
    /// Another bootstrap of this table shard is running.
    #[error("table shard is bootstrapping")]
    AlreadyBootstrapping,
    /// The placement snapshot has no replicas of the shard.
    #[error("shard {0} does not exist in topology")]
    ShardNotInTopology(ShardId),
    /// No other replica can be copied from, and not every replica is
    /// `Initializing` (quirk Q12 off), so this is not a brand-new placement.
    #[error("no available or leaving replica of shard {shard} to copy from ({replicas})")]
    NoSource { shard: ShardId, replicas: String },
    /// No source host could be borrowed (unknown, undialable, unhealthy).
    #[error(transparent)]
    NoPeerBorrowed(#[from] NoPeerAvailable),
    /// The copy from `host` failed (the last one tried, with Q2 off).
    #[error("peer copy from {host} failed: {source}")]
    CopyFailed { host: NodeId, source: CopyError },
    /// Reading the shard's metadata (step 5) failed.
    #[error("load metadata: {0}")]
    LoadMetadata(StoreError),
    /// Preloading (step 6) failed.
    #[error("preload: {0}")]
    Preload(StoreError),
    /// Replaying the redo log (step 7) failed.
    #[error("recovery: {0}")]
    Recovery(StoreError),
}

/// Sets the state to `NotStarted` if a bootstrap is dropped half-way (its
/// task died with the host), so the state machine never sticks.
struct StateGuard<'a> {
    state: &'a Cell<BootstrapState>,
    armed: bool,
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.state.set(BootstrapState::NotStarted);
        }
    }
}

impl<E: Env> TableShard<E> {
    /// Bootstrap the table shard (docs/MODEL.md §2). `view` is the cluster
    /// snapshot taken when the node-wide bootstrap began; `origin` is this
    /// host.
    pub async fn bootstrap(
        &self,
        source: &PeerSource<E>,
        origin: NodeId,
        view: &ClusterView,
        options: &Options,
    ) -> Result<(), BootstrapError> {
        // Step 1, under the bootstrap lock: no await between check and set.
        if self.state.get() == BootstrapState::Bootstrapping {
            tracing::info!(target: TARGET, table = %self.id.table, shard = %self.id.shard, "bootstrap_refused");
            Probe::BootstrapRefusedAlreadyRunning.hit();
            return Err(BootstrapError::AlreadyBootstrapping);
        }
        self.state.set(BootstrapState::Bootstrapping);
        if self.failed.get() {
            Probe::BootstrapRetriedAfterFailure.hit();
        }
        let mut guard = StateGuard {
            state: &self.state,
            armed: true,
        };
        // Step 2.
        self.details.borrow_mut().clear();
        tracing::info!(target: TARGET,
            table = %self.id.table,
            shard = %self.id.shard,
            needs_peer_copy = self.needs_peer_copy.get(),
            "bootstrap_started"
        );
        // Step 3: the state follows the outcome.
        let result = self.run_bootstrap(source, origin, view, options).await;
        guard.armed = false;
        self.failed.set(result.is_err());
        match &result {
            Ok(()) => {
                self.state.set(BootstrapState::Bootstrapped);
                tracing::info!(target: TARGET, table = %self.id.table, shard = %self.id.shard, "bootstrap_finished");
            }
            Err(error) => {
                self.state.set(BootstrapState::NotStarted);
                tracing::info!(target: TARGET,
                    table = %self.id.table,
                    shard = %self.id.shard,
                    error = %error,
                    "bootstrap_failed"
                );
            }
        }
        result
    }

    async fn run_bootstrap(
        &self,
        source: &PeerSource<E>,
        origin: NodeId,
        view: &ClusterView,
        options: &Options,
    ) -> Result<(), BootstrapError> {
        // Step 4.
        if self.needs_peer_copy.get() {
            self.enter_stage(Stage::PeerCopy);
            if self.peer_copy(source, origin, view, options).await? {
                self.replay_from_upstream.set(true);
            }
            self.needs_peer_copy.set(false);
            tracing::info!(target: TARGET, table = %self.id.table, shard = %self.id.shard, "peer_copy_flag_cleared");
        }
        // Step 5.
        self.store
            .load_metadata()
            .await
            .map_err(BootstrapError::LoadMetadata)?;
        // Step 6.
        self.enter_stage(Stage::Preload);
        self.store
            .preload()
            .await
            .map_err(BootstrapError::Preload)?;
        // Step 7: a copied shard has no local redo log for what it copied;
        // the replay appends it there, so later recoveries are local.
        self.enter_stage(Stage::Recovery);
        self.store
            .recover(self.replay_from_upstream.get())
            .await
            .map_err(BootstrapError::Recovery)?;
        self.replay_from_upstream.set(false);
        // Step 8.
        self.enter_stage(Stage::Finished);
        Ok(())
    }

    /// Step 4: choose the sources and copy from the first that can be
    /// borrowed. Whether data was copied (false: skipped, no source).
    async fn peer_copy(
        &self,
        source: &PeerSource<E>,
        origin: NodeId,
        view: &ClusterView,
        options: &Options,
    ) -> Result<bool, BootstrapError> {
        let sources = self.copy_sources(origin, view)?;
        if sources.is_empty() {
            let all_initializing = view
                .placement
                .shards
                .get(&self.id.shard)
                .is_some_and(|r| r.values().all(|s| *s == ShardState::Initializing));
            let reason = if all_initializing {
                Probe::CopySkippedNewPlacement.hit();
                "all_replicas_initializing"
            } else if options.quirks.on(Quirk::Q12) {
                "no_source_taken_as_new_placement"
            } else {
                return Err(BootstrapError::NoSource {
                    shard: self.id.shard,
                    replicas: self.describe_replicas(view),
                });
            };
            tracing::info!(target: TARGET,
                table = %self.id.table,
                shard = %self.id.shard,
                reason,
                "peer_copy_skipped"
            );
            return Ok(false);
        }
        let seed = if options.quirks.on(Quirk::Q1) {
            self.env.now().secs()
        } else {
            self.env.random_u64()
        };
        let hosts = shuffle_sources(sources, seed);
        tracing::info!(target: TARGET,
            table = %self.id.table,
            shard = %self.id.shard,
            sources = ?hosts,
            view = view.version,
            "copy_sources_chosen"
        );
        let mut remaining: &[NodeId] = &hosts;
        let mut last_failure: Option<(NodeId, CopyError)> = None;
        loop {
            let used = Cell::new(None);
            let fell_over = last_failure.is_some();
            let borrowed = source
                .borrow_connection(remaining, async |host, client| {
                    used.set(Some(host));
                    if fell_over {
                        Probe::CopyFellOver.hit();
                    }
                    self.fetch_data_from_peer(host, client, origin, options)
                        .await
                })
                .await;
            match borrowed {
                Ok(Ok(())) => return Ok(true),
                Ok(Err(error)) => {
                    let host = used.get().unwrap_or(origin);
                    if options.quirks.on(Quirk::Q2) {
                        return Err(BootstrapError::CopyFailed {
                            host,
                            source: error,
                        });
                    }
                    let next = remaining
                        .iter()
                        .position(|h| *h == host)
                        .map_or(remaining.len(), |i| i + 1);
                    remaining = &remaining[next..];
                    tracing::info!(target: TARGET,
                        table = %self.id.table,
                        shard = %self.id.shard,
                        failed = %host,
                        left = remaining.len(),
                        "copy_source_abandoned"
                    );
                    last_failure = Some((host, error));
                    if remaining.is_empty() {
                        break;
                    }
                }
                Err(no_peer) => {
                    if last_failure.is_none() {
                        return Err(BootstrapError::NoPeerBorrowed(no_peer));
                    }
                    break;
                }
            }
        }
        match last_failure {
            Some((host, source)) => Err(BootstrapError::CopyFailed { host, source }),
            None => Err(BootstrapError::NoPeerBorrowed(NoPeerAvailable {
                reasons: Vec::new(),
            })),
        }
    }

    /// The hosts a copy may come from: other hosts whose replica of the
    /// shard is `Available` or `Leaving` in the snapshot, in id order.
    fn copy_sources(
        &self,
        origin: NodeId,
        view: &ClusterView,
    ) -> Result<Vec<NodeId>, BootstrapError> {
        let replicas = view
            .placement
            .shards
            .get(&self.id.shard)
            .ok_or(BootstrapError::ShardNotInTopology(self.id.shard))?;
        Ok(replicas
            .iter()
            .filter(|(host, state)| {
                **host != origin && matches!(state, ShardState::Available | ShardState::Leaving)
            })
            .map(|(host, _)| *host)
            .collect())
    }

    fn describe_replicas(&self, view: &ClusterView) -> String {
        view.placement
            .shards
            .get(&self.id.shard)
            .map(|r| {
                r.iter()
                    .map(|(h, s)| format!("{h}={s}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    }

    fn enter_stage(&self, stage: Stage) {
        self.details.borrow_mut().set_stage(stage, self.env.now());
        tracing::debug!(target: TARGET,
            table = %self.id.table,
            shard = %self.id.shard,
            stage = %stage,
            "bootstrap_stage_entered"
        );
    }
}

/// Shuffle the candidate sources with a SplitMix64 stream from `seed`
/// (Fisher–Yates), so the order is a pure function of the seed.
pub(crate) fn shuffle_sources(mut hosts: Vec<NodeId>, seed: u64) -> Vec<NodeId> {
    let mut state = seed;
    for i in (1..hosts.len()).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let j = (z % (i as u64 + 1)) as usize;
        hosts.swap(i, j);
    }
    hosts
}
