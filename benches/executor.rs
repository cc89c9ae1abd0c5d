//! Executor throughput, side by side with tokio's current-thread runtime with
//! paused time, on the same workload in the same process:
//!
//! N tasks in pairs, each looping 100 rounds: sleep a seeded random 1–10 ms
//! of virtual time, send to its partner, await the partner's message. An
//! *event* is a timer firing or a message delivery (2 per task per round).
//! Each figure is the best of 5 runs, measured alternately.
//!
//! Run with `cargo bench --bench executor`. Prints events/s for each runtime
//! and `ratio_vs_tokio` (bootsim with its seeded random scheduler / tokio).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // wall-clock timing is the point here

use std::time::{Duration, Instant};

use bootsim::SimRng;
use bootsim::executor::{self, Executor, Limits, RunEnd, Scheduler};
use bootsim::sync::{Receiver, Sender, mailbox};

const ROUNDS: u64 = 100;
const RUNS: usize = 5;

/// The workload's own per-task random source (SplitMix64): 8 bytes of state,
/// so both runtimes pay the same small cost for it.
struct SplitMix(u64);

impl SplitMix {
    fn millis(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        1 + (z ^ (z >> 31)) % 10
    }
}

/// One side of a ping-pong pair, generic over how to sleep.
async fn player<S, F>(
    mut rng: SplitMix,
    to_partner: Sender<u64>,
    mut inbox: Receiver<u64>,
    sleep: S,
) where
    S: Fn(Duration) -> F,
    F: std::future::Future<Output = ()>,
{
    for round in 0..ROUNDS {
        sleep(Duration::from_millis(rng.millis())).await;
        let _ = to_partner.send(round);
        if inbox.recv().await.is_none() {
            return;
        }
    }
}

fn pairs(n: usize) -> Vec<(SplitMix, Sender<u64>, Receiver<u64>)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n / 2 {
        let (a_tx, a_rx) = mailbox();
        let (b_tx, b_rx) = mailbox();
        out.push((SplitMix(2 * i as u64), b_tx, a_rx));
        out.push((SplitMix(2 * i as u64 + 1), a_tx, b_rx));
    }
    out
}

fn run_bootsim(n: usize, scheduler: Scheduler) -> Duration {
    let mut ex = Executor::new(SimRng::new(99), scheduler);
    for (rng, tx, rx) in pairs(n) {
        ex.spawn("player", None, player(rng, tx, rx, executor::sleep));
    }
    let start = Instant::now();
    let end = ex.run(Limits::default());
    let took = start.elapsed();
    assert_eq!(end, RunEnd::AllDone);
    took
}

fn run_tokio(n: usize) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let start = Instant::now();
    local.block_on(&rt, async {
        let handles: Vec<_> = pairs(n)
            .into_iter()
            .map(|(rng, tx, rx)| tokio::task::spawn_local(player(rng, tx, rx, tokio::time::sleep)))
            .collect();
        for h in handles {
            h.await.expect("tokio task");
        }
    });
    start.elapsed()
}

fn best(f: &mut dyn FnMut() -> Duration, best: &mut Duration) {
    *best = (*best).min(f());
}

fn main() {
    println!(
        "workload: tasks in ping-pong pairs, {ROUNDS} rounds of random 1-10 ms sleep + message; best of {RUNS}"
    );
    for n in [1_000usize, 10_000] {
        let events = (n as u64 * ROUNDS * 2) as f64;
        let (mut random, mut fifo, mut tokio) = (Duration::MAX, Duration::MAX, Duration::MAX);
        for _ in 0..RUNS {
            best(&mut || run_bootsim(n, Scheduler::Random), &mut random);
            best(&mut || run_bootsim(n, Scheduler::Fifo), &mut fifo);
            best(&mut || run_tokio(n), &mut tokio);
        }
        let rate = |d: Duration| events / d.as_secs_f64() / 1e6;
        println!("tasks: {n}");
        println!(
            "  bootsim random scheduler: {:6.2} M events/s",
            rate(random)
        );
        println!("  bootsim fifo scheduler:   {:6.2} M events/s", rate(fifo));
        println!("  tokio paused time:        {:6.2} M events/s", rate(tokio));
        println!(
            "  ratio_vs_tokio: {:.2}",
            tokio.as_secs_f64() / random.as_secs_f64()
        );
        println!(
            "  ratio_vs_tokio_fifo: {:.2}",
            tokio.as_secs_f64() / fifo.as_secs_f64()
        );
    }
}
