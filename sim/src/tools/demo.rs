//! The built-in demo workload of `bootsim run` without a scenario: enough
//! concurrency to exercise the executor, scheduler, timers and trace.
//!
//! `pairs` pairs of tasks spread over four nodes play ping-pong for `rounds`
//! rounds: each round a task sleeps a random 1–10 ms, sends to its partner
//! and waits for the partner's message; every fifth round it spawns a
//! sub-task that sleeps and reports back. Sleep lengths come from the
//! `"workload"` stream, drawn in the order the scheduler runs the tasks, so
//! the trace depends on the seed through both streams.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use shardboot::types::NodeId;

use crate::engine::executor::{self, Executor, Limits, RunEnd, Scheduler};
use crate::engine::rng::SimRng;
use crate::engine::sync::mailbox;
use crate::engine::trace::{self, Keep, Trace};

/// Size of the demo workload.
#[derive(Clone, Copy, Debug)]
pub struct Demo {
    /// Ping-pong pairs of tasks.
    pub pairs: u32,
    /// Rounds each pair plays.
    pub rounds: u32,
}

impl Default for Demo {
    /// 60 pairs (120 ping-pong tasks, plus sub-tasks) of 20 rounds.
    fn default() -> Self {
        Demo {
            pairs: 60,
            rounds: 20,
        }
    }
}

/// What a demo run produced.
pub struct DemoRun {
    pub end: RunEnd,
    pub executor: Executor,
    pub trace: Trace,
}

impl Demo {
    /// Run the demo with `seed` under `scheduler`.
    pub fn run(self, seed: u64, scheduler: Scheduler, keep: Keep) -> DemoRun {
        let root = SimRng::new(seed);
        let mut executor = Executor::new(root.fork("scheduler"), scheduler);
        let workload = Rc::new(RefCell::new(root.fork("workload")));
        for pair in 0..self.pairs {
            let (to_b, mut b_inbox) = mailbox::<u32>();
            let (to_a, mut a_inbox) = mailbox::<u32>();
            let node_a = Some(NodeId(pair % 4 + 1));
            let node_b = Some(NodeId((pair + 1) % 4 + 1));
            let (rng_a, rng_b) = (workload.clone(), workload.clone());
            let rounds = self.rounds;
            executor.spawn("ping", node_a, async move {
                for round in 0..rounds {
                    nap(&rng_a).await;
                    let _ = to_b.send(round);
                    let got = a_inbox.recv().await;
                    tracing::info!(target: "demo", pair, round, got = ?got, "pong_received");
                    if round % 5 == 4 {
                        helper(&rng_a, pair).await;
                    }
                }
            });
            executor.spawn("pong", node_b, async move {
                while let Some(round) = b_inbox.recv().await {
                    nap(&rng_b).await;
                    tracing::debug!(target: "demo", pair, round, "ping_received");
                    if to_a.send(round).is_err() {
                        break;
                    }
                }
            });
        }
        let (end, trace) = trace::record(keep, || executor.run(Limits::default()));
        DemoRun {
            end,
            executor,
            trace,
        }
    }
}

async fn nap(rng: &RefCell<SimRng>) {
    let ms = rng.borrow_mut().between(1, 10);
    executor::sleep(Duration::from_millis(ms)).await;
}

/// A short-lived sub-task whose result the parent awaits.
async fn helper(rng: &RefCell<SimRng>, pair: u32) {
    let ms = rng.borrow_mut().between(1, 50);
    let slept = executor::spawn("helper", async move {
        executor::sleep(Duration::from_millis(ms)).await;
        ms
    })
    .await;
    tracing::info!(target: "demo", pair, slept_ms = slept, "helper_finished");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(seed: u64, scheduler: Scheduler) -> String {
        let run = Demo::default().run(seed, scheduler, Keep::Last(0));
        assert_eq!(run.end, RunEnd::AllDone);
        run.trace.hash()
    }

    #[test]
    fn same_seed_gives_the_same_trace_hash() {
        assert_eq!(hash(7, Scheduler::Random), hash(7, Scheduler::Random));
    }

    #[test]
    fn different_seeds_give_different_traces() {
        assert_ne!(hash(7, Scheduler::Random), hash(8, Scheduler::Random));
    }

    #[test]
    fn demo_is_big_enough_to_matter() {
        let run = Demo::default().run(1, Scheduler::Random, Keep::Last(0));
        let stats = run.executor.stats();
        assert!(stats.spawned >= 100 + 60 * 4, "spawned {}", stats.spawned);
        assert!(run.trace.total() >= 60 * 20);
    }
}
