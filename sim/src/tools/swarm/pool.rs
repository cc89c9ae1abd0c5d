//! The worker pool: one whole simulation per thread, results handed back
//! to the calling thread as they arrive. The only threads of the crate.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use crate::engine::executor::panic_message;

use super::seed::{SeedResult, wall_now};

/// Progress as results come in.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub done: u64,
    pub failed: u64,
    /// Seeds in all, when the budget is a seed count.
    pub total: Option<u64>,
    pub elapsed: Duration,
}

/// Run `job` for every seed of `seeds` on `jobs` worker threads, one whole
/// simulation per thread at a time, and hand each result to `on_result` on
/// this thread as it arrives. A panicking job becomes
/// [`SeedResult::harness_panic`]. With `deadline`, workers take no new seed
/// once that much wall time has passed.
pub fn run_parallel<F>(
    seeds: Box<dyn Iterator<Item = u64> + Send>,
    jobs: usize,
    deadline: Option<Duration>,
    job: F,
    mut on_result: impl FnMut(SeedResult),
) where
    F: Fn(u64) -> SeedResult + Sync,
{
    let start = wall_now();
    let seeds = Mutex::new(seeds);
    let (tx, rx) = mpsc::channel::<SeedResult>();
    std::thread::scope(|scope| {
        for worker in 0..jobs.max(1) {
            let tx = tx.clone();
            let (seeds, job) = (&seeds, &job);
            // Allowed: one whole simulation per worker thread; workers share
            // no simulation state (see the module doc).
            #[allow(clippy::disallowed_methods)]
            let spawned = std::thread::Builder::new()
                .name(format!("swarm-{worker}"))
                .stack_size(16 << 20)
                .spawn_scoped(scope, move || {
                    loop {
                        if deadline.is_some_and(|d| start.elapsed() >= d) {
                            break;
                        }
                        let next = seeds.lock().unwrap_or_else(PoisonError::into_inner).next();
                        let Some(seed) = next else { break };
                        let result =
                            catch_unwind(AssertUnwindSafe(|| job(seed))).unwrap_or_else(|p| {
                                SeedResult::harness_panic(seed, panic_message(p.as_ref()))
                            });
                        if tx.send(result).is_err() {
                            break;
                        }
                    }
                });
            spawned.expect("cannot start a swarm worker thread");
        }
        drop(tx);
        for result in rx {
            on_result(result);
        }
    });
}
