//! Tunables of the bootstrap, with upstream's defaults.

use std::time::Duration;

use crate::quirks::Quirks;

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
            quirks: Quirks::default(),
        }
    }
}
