//! Tunables of the bootstrap, with upstream's defaults.

use std::time::Duration;

use crate::quirks::Quirks;
use crate::store::StoreConfig;

/// Options shared by every table shard of a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Table shards bootstrapped at once by the node-wide bootstrap (8).
    pub max_concurrent_table_shards: usize,
    /// Vector-party copy workers per table shard (2).
    pub max_concurrent_streams_per_table_shard: usize,
    /// Peer-copy session ttl asked for (5 min); keep-alives go every ttl/2.
    pub session_ttl: Duration,
    /// Attempts per vector-party copy (upstream: 3 retries).
    pub copy_retries: u32,
    /// Period of the availability check of `Initializing` shards (5 s).
    pub availability_check_interval: Duration,
    /// Period of the readiness check (10 s).
    pub readiness_check_interval: Duration,
    /// First and largest delay of the automatic retry of a failed bootstrap
    /// (only with quirk Q14 off).
    pub retry_backoff_min: Duration,
    pub retry_backoff_max: Duration,
    /// Period of ingestion from the upstream log into every `Bootstrapped`
    /// table shard. Upstream, the ingesting client chooses its batch size;
    /// 5 s batches keep a 2 h run at about 1,400 ingestions per table shard
    /// replica (each one a lock, a log read, a redo append and a metastore
    /// write, all scheduling points); at 1 s a default run cost 1.8 times
    /// as much.
    /// Scenarios set it with `[options] ingest_interval`.
    pub ingest_interval: Duration,
    /// Period of archiving per fact table shard (20 min: a 2 h run archives
    /// about six times). Background jobs run only on a ready node.
    pub archiving_interval: Duration,
    /// Period of backfill per fact table shard (10 min).
    pub backfill_interval: Duration,
    /// Period of the retention purge per fact table shard (30 min).
    pub purge_interval: Duration,
    /// Period of the snapshot per dimension table shard (20 min).
    pub snapshot_interval: Duration,
    /// Tunables of every table shard's store (file sizes, read sizes).
    pub store: StoreConfig,
    /// Upstream behaviours switched on (default: none).
    pub quirks: Quirks,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_concurrent_table_shards: 8,
            max_concurrent_streams_per_table_shard: 2,
            session_ttl: Duration::from_secs(5 * 60),
            copy_retries: 3,
            availability_check_interval: Duration::from_secs(5),
            readiness_check_interval: Duration::from_secs(10),
            retry_backoff_min: Duration::from_secs(1),
            retry_backoff_max: Duration::from_secs(60),
            ingest_interval: Duration::from_secs(5),
            archiving_interval: Duration::from_secs(20 * 60),
            backfill_interval: Duration::from_secs(10 * 60),
            purge_interval: Duration::from_secs(30 * 60),
            snapshot_interval: Duration::from_secs(20 * 60),
            store: StoreConfig::default(),
            quirks: Quirks::default(),
        }
    }
}
