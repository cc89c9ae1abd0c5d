//! The BUGGIFY points of the bootstrap (see [`Env::buggify`]): named places
//! where a real deployment occasionally behaves in a legal but unlucky way,
//! made common in simulation. Each point keeps the code correct — it delays,
//! shortens or fails something the code must cope with anyway — and never
//! corrupts state.
//!
//! | point | where | what it does |
//! | --- | --- | --- |
//! | [`COPY_METADATA_WRITE_DELAY`] | peer copy, local metadata writes | waits before each metastore write (a slow metastore) |
//! | [`KEEP_ALIVE_LATE`] | peer copy, keep-alive loop | sends the next keep-alive at 9/10 of the ttl instead of 1/2 (a stalled client) |
//! | [`VECTOR_PARTY_ATTEMPT_FAILS`] | copy workers | one copy attempt fails after its first chunk was written (a local I/O error); the retry must cope with the partial file |
//! | [`INGEST_SHORT_READ`] | ingestion | the upstream read returns only the first half of the records (a short fetch) |
//! | [`JOB_RUNS_EARLY`] | background job loops | the next run comes after a random part of the period instead of a whole one (a job at an unlucky moment) |
//! | [`METADATA_READS_SLOW`] | peer server, separate metadata reads (quirk Q8 on) | waits between the reads, widening the window in which jobs can run |

use std::time::Duration;

use crate::env::Env;

pub const COPY_METADATA_WRITE_DELAY: &str = "copy_metadata_write_delay";
pub const KEEP_ALIVE_LATE: &str = "keep_alive_late";
pub const VECTOR_PARTY_ATTEMPT_FAILS: &str = "vector_party_attempt_fails";
pub const INGEST_SHORT_READ: &str = "ingest_short_read";
pub const JOB_RUNS_EARLY: &str = "job_runs_early";
pub const METADATA_READS_SLOW: &str = "metadata_reads_slow";

/// Every point, for tools that list or count them.
pub const ALL: [&str; 6] = [
    COPY_METADATA_WRITE_DELAY,
    KEEP_ALIVE_LATE,
    VECTOR_PARTY_ATTEMPT_FAILS,
    INGEST_SHORT_READ,
    JOB_RUNS_EARLY,
    METADATA_READS_SLOW,
];

/// A delay in `[0, max)` from the host's RNG, for points that wait.
pub fn delay(env: &impl Env, max: Duration) -> Duration {
    let ms = max.as_millis().max(1) as u64;
    Duration::from_millis(env.random_u64() % ms)
}
