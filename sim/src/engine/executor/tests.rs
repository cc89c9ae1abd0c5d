//! Unit tests of [`super`] (`executor`).

use std::time::Duration;

use super::*;
use crate::engine::schedule::TaskId;

fn exec(seed: u64) -> Executor {
    Executor::new(SimRng::new(seed).fork("scheduler"), Scheduler::Random)
}

#[test]
fn join_handle_yields_task_output_and_time_jumps() {
    let mut ex = exec(1);
    let out = Rc::new(Cell::new(0));
    let o = out.clone();
    ex.spawn("main", None, async move {
        let h = spawn("child", async {
            sleep(Duration::from_secs(5)).await;
            41
        });
        o.set(h.await + 1);
    });
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    assert_eq!(out.get(), 42);
    assert_eq!(ex.now().elapsed(), Duration::from_secs(5));
}

#[test]
fn stall_names_the_stuck_tasks() {
    let mut ex = exec(1);
    let (_tx, rx) = futures::channel::oneshot::channel::<()>();
    ex.spawn("waiter", Some(NodeId(2)), async move {
        let _ = rx.await;
    });
    std::mem::forget(_tx);
    assert_eq!(
        ex.run(Limits::default()),
        RunEnd::Stalled {
            tasks: vec!["waiter@n2".to_string()]
        }
    );
}

#[test]
fn panics_are_caught_and_named() {
    let mut ex = exec(1);
    ex.spawn("boom", Some(NodeId(1)), async {
        sleep(Duration::from_millis(1)).await;
        panic!("kaboom");
    });
    assert_eq!(
        ex.run(Limits::default()),
        RunEnd::Panicked {
            task: "boom@n1".into(),
            message: "kaboom".into()
        }
    );
}

#[test]
fn time_and_step_limits_stop_and_resume() {
    let mut ex = exec(1);
    ex.spawn("ticker", None, async {
        let mut iv = interval(Duration::from_secs(1));
        for _ in 0..10 {
            iv.tick().await;
        }
    });
    let until = VirtualTime::ZERO + Duration::from_millis(3500);
    assert_eq!(
        ex.run(Limits {
            until,
            ..Limits::default()
        }),
        RunEnd::TimeLimit
    );
    assert_eq!(ex.now(), until);
    let steps = ex.stats().polls;
    assert_eq!(
        ex.run(Limits {
            max_steps: steps + 2,
            ..Limits::default()
        }),
        RunEnd::StepLimit
    );
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    assert_eq!(ex.now().elapsed(), Duration::from_secs(10));
}

#[test]
fn timeout_fires_only_when_the_future_is_late() {
    let mut ex = exec(1);
    let res = Rc::new(RefCell::new(Vec::new()));
    let r = res.clone();
    ex.spawn("main", None, async move {
        let fast = timeout(Duration::from_secs(2), sleep(Duration::from_secs(1))).await;
        let slow = timeout(Duration::from_secs(2), sleep(Duration::from_secs(3))).await;
        r.borrow_mut().extend([fast, slow]);
    });
    ex.run(Limits::default());
    assert_eq!(*res.borrow(), vec![Ok(()), Err(Elapsed)]);
}

#[test]
fn random_schedule_depends_on_seed_and_fifo_does_not() {
    fn order(seed: u64, scheduler: Scheduler) -> Vec<u32> {
        let mut ex = Executor::new(SimRng::new(seed), scheduler);
        let log = Rc::new(RefCell::new(Vec::new()));
        for i in 0..20 {
            let log = log.clone();
            ex.spawn("t", None, async move {
                yield_now().await;
                log.borrow_mut().push(i);
            });
        }
        ex.run(Limits::default());
        log.take()
    }
    assert_eq!(order(1, Scheduler::Random), order(1, Scheduler::Random));
    assert_ne!(order(1, Scheduler::Random), order(2, Scheduler::Random));
    assert_eq!(order(1, Scheduler::Fifo), (0..20).collect::<Vec<_>>());
    assert_eq!(order(2, Scheduler::Fifo), (0..20).collect::<Vec<_>>());
}

/// `tasks` tasks that each log their number, then yield, `polls` times
/// (all at virtual time zero); the log of who ran at each step.
fn yielders(ex: &Executor, tasks: u32, polls: u32) -> Rc<RefCell<Vec<u32>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    for t in 0..tasks {
        let log = log.clone();
        ex.spawn("yielder", Some(NodeId(t)), async move {
            for _ in 0..polls {
                log.borrow_mut().push(t);
                yield_now().await;
            }
        });
    }
    log
}

fn pct_order(seed: u64, scheduler: &str) -> Vec<u32> {
    let mut ex = Executor::new(SimRng::new(seed), scheduler.parse().unwrap());
    let log = yielders(&ex, 4, 6);
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    log.take()
}

/// Maximal runs of the same task in a log.
fn blocks(log: &[u32]) -> usize {
    1 + log.windows(2).filter(|w| w[0] != w[1]).count()
}

#[test]
fn pct_of_depth_one_runs_the_highest_priority_task_to_completion_first() {
    let mut first_tasks = std::collections::BTreeSet::new();
    for seed in 1..=20 {
        let log = pct_order(seed, "pct:1");
        // Each task runs all its steps in one go: 4 blocks of 7 polls
        // (6 logged), in an order given by the random priorities.
        assert_eq!(blocks(&log), 4, "seed {seed}: {log:?}");
        assert_eq!(log, pct_order(seed, "pct:1"), "deterministic per seed");
        first_tasks.insert(log[0]);
    }
    assert_eq!(first_tasks.len(), 4, "every task comes first for some seed");
}

#[test]
fn a_pct_change_point_sends_the_running_task_below_all_others() {
    // 28 polls in all; one change point drawn from steps 1..=28.
    let mut split = 0;
    for seed in 1..=20 {
        let log = pct_order(seed, "pct:2:28");
        assert_eq!(log, pct_order(seed, "pct:2:28"), "deterministic per seed");
        // The task running at the change point finishes after all the
        // others: at most one task is split in two.
        assert!(blocks(&log) <= 5, "seed {seed}: {log:?}");
        if blocks(&log) == 5 {
            split += 1;
            let last = *log.last().unwrap();
            let first_of_last = log.iter().position(|&t| t == last).unwrap();
            assert!(log[first_of_last..].iter().any(|&t| t != last), "{log:?}");
        }
    }
    assert!(
        split >= 10,
        "the change point split a task in only {split} of 20 seeds"
    );
}

/// A random run with a node killed while its tasks are queued (stale
/// queue entries), recorded; its log and the schedule.
fn recorded_run(seed: u64) -> (Vec<u32>, Schedule) {
    let mut ex = exec(seed);
    ex.record_schedule();
    let log = yielders(&ex, 5, 4);
    ex.spawn("killer", None, async {
        yield_now().await;
        kill_node(NodeId(1));
    });
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    (log.take(), ex.recorded_schedule().unwrap())
}

fn replayed_run(schedule: Schedule) -> (Vec<u32>, RunEnd) {
    let mut ex = Executor::replaying(schedule);
    let log = yielders(&ex, 5, 4);
    ex.spawn("killer", None, async {
        yield_now().await;
        kill_node(NodeId(1));
    });
    let end = ex.run(Limits::default());
    (log.take(), end)
}

#[test]
fn a_recorded_schedule_replays_the_same_run() {
    for seed in 1..=10 {
        let (log, schedule) = recorded_run(seed);
        // Every logged step was a pick (and the kill left some picks
        // of stale queue entries unlogged).
        assert!(schedule.decisions().len() > log.len());
        assert_eq!(replayed_run(schedule), (log, RunEnd::AllDone));
    }
    assert_ne!(recorded_run(1).1, recorded_run(2).1);
}

#[test]
fn a_schedule_that_does_not_fit_stops_the_run_with_an_error() {
    let (_, schedule) = recorded_run(3);
    let n = schedule.decisions().len();
    let short = Schedule::new(schedule.decisions()[..n - 3].to_vec());
    match replayed_run(short).1 {
        RunEnd::ReplayFailed(ReplayError::Exhausted { decisions, ready }) => {
            assert_eq!(decisions, n - 3);
            assert!(!ready.is_empty());
        }
        other => panic!("expected an exhausted schedule, got {other}"),
    }
    let mut wrong = schedule.decisions().to_vec();
    wrong[0] = TaskId(99);
    match replayed_run(Schedule::new(wrong)).1 {
        RunEnd::ReplayFailed(ReplayError::NotReady { decision, task, .. }) => {
            assert_eq!((decision, task), (0, TaskId(99)));
        }
        other => panic!("expected a task that is not ready, got {other}"),
    }
}

#[test]
fn killing_a_node_drops_only_its_tasks() {
    let mut ex = exec(1);
    let done = Rc::new(Cell::new(0));
    for node in [1, 1, 2] {
        let d = done.clone();
        ex.spawn("w", Some(NodeId(node)), async move {
            sleep(Duration::from_secs(1)).await;
            d.set(d.get() + 1);
        });
    }
    assert_eq!(ex.kill_node(NodeId(1)), 2);
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    assert_eq!(done.get(), 1);
}
#[test]
fn a_paused_node_runs_nothing_until_resumed_and_keeps_its_wakeups() {
    let mut ex = exec(1);
    let log = Rc::new(RefCell::new(Vec::new()));
    for (node, ticks) in [(1, 3), (2, 1)] {
        let l = log.clone();
        ex.spawn("ticker", Some(NodeId(node)), async move {
            for _ in 0..ticks {
                sleep(Duration::from_secs(1)).await;
                l.borrow_mut().push((node, now().elapsed().as_secs()));
            }
        });
    }
    let l = log.clone();
    ex.spawn("control", None, async move {
        sleep(Duration::from_millis(500)).await;
        assert!(pause_node(NodeId(1)));
        assert!(!pause_node(NodeId(1)), "already paused");
        sleep(Duration::from_secs(5)).await;
        l.borrow_mut().push((0, now().elapsed().as_secs()));
        assert!(resume_node(NodeId(1)));
    });
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    // n2 ran at 1 s; n1's timer fired then too, while paused: it runs on
    // resume at 5.5 s (logged as 5), then ticks on from there.
    assert_eq!(*log.borrow(), vec![(2, 1), (0, 5), (1, 5), (1, 6), (1, 7)]);
}

#[test]
fn until_running_waits_for_the_resume() {
    let mut ex = exec(1);
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    ex.spawn("control", None, async move {
        pause_node(NodeId(3));
        spawn_on("caller", Some(NodeId(4)), async move {
            until_running(NodeId(3)).await;
            s.set(now().elapsed().as_secs());
        });
        sleep(Duration::from_secs(7)).await;
        assert!(is_paused(NodeId(3)));
        resume_node(NodeId(3));
        assert!(!is_paused(NodeId(3)));
    });
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    assert_eq!(seen.get(), 7);
}

#[test]
fn a_task_can_kill_another_node_while_the_run_goes_on() {
    let mut ex = exec(1);
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    ex.spawn("victim", Some(NodeId(1)), async move {
        sleep(Duration::from_secs(2)).await;
        d.set(true);
    });
    ex.spawn("killer", None, async {
        sleep(Duration::from_secs(1)).await;
        assert_eq!(kill_node(NodeId(1)), 1);
    });
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    assert!(!done.get());
}

#[test]
fn timers_wake_futures_behind_foreign_wakers() {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut ex = exec(1);
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    ex.spawn("main", None, async move {
        let mut set: FuturesUnordered<_> = [3u64, 1, 2]
            .into_iter()
            .map(|s| async move {
                sleep(Duration::from_secs(s)).await;
                s
            })
            .collect();
        while let Some(s) = set.next().await {
            o.borrow_mut().push(s);
        }
    });
    assert_eq!(ex.run(Limits::default()), RunEnd::AllDone);
    assert_eq!(*order.borrow(), vec![1, 2, 3]);
}
