//! The single-threaded, seeded executor with virtual time.
//!
//! At every step one *ready* task is polled; which one is chosen by the
//! scheduler (seeded random pick, PCT, FIFO for debugging, or the replay of
//! a recorded schedule: see `crate::engine::scheduler` and `crate::engine::schedule`).
//! Virtual time jumps
//! to the next timer only when nothing is ready. A run ends with a
//! [`RunEnd`] reason: all tasks done, a time or step bound, a stall (tasks
//! pending with nothing ready and no timer) or a caught panic.
//!
//! Design choices that keep it fast (measured in BENCHMARKS.md): wakers are
//! allocation-free `RawWaker`s carrying the task slot and generation; the
//! ready queue is a `VecDeque` of slot indices with O(1) random
//! `swap_remove`; timers are a binary heap of small entries. The running
//! executor is reached through a thread-local, so seams and futures need no
//! handle, and each simulation (one per thread in a swarm) is isolated.
//!
//! Node lifecycle support: [`kill_node`] drops a node's tasks (a crash);
//! [`pause_node`] *parks* them (a GC-like stall): while a node is paused its
//! tasks are never polled, and every wake-up meant for them — timers keep
//! firing — is kept in the parked set until [`resume_node`] makes them ready
//! again. [`until_running`] lets other nodes' tasks wait out a pause.
//!
//! Not modelled: preemption inside a poll (a task runs until it awaits), and
//! cancellation of timers (a dropped `Sleep` leaves an entry that fires a
//! harmless spurious wake-up).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::task::{Context, Poll};

use shardboot::types::NodeId;

use crate::engine::rng::SimRng;
use crate::engine::schedule::{ReplayError, Schedule};
use crate::engine::scheduler::Picker;
pub use crate::engine::scheduler::Scheduler;
use crate::engine::time::VirtualTime;
use crate::engine::timers::TimerQueue;

mod inside;
mod shared;

use inside::spawn_in;
pub use inside::*;
use shared::{BoxFuture, CURRENT, Shared, task_label, task_waker};

/// Bounds of one [`Executor::run`] call.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Stop when the next event is after this virtual time.
    pub until: VirtualTime,
    /// Stop after this many polls in total.
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            until: VirtualTime::MAX,
            max_steps: u64::MAX,
        }
    }
}

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// No task is left.
    AllDone,
    /// The next timer lies beyond `Limits::until`; virtual time is now `until`.
    TimeLimit,
    /// `Limits::max_steps` polls were made.
    StepLimit,
    /// Tasks are pending but none is ready and no timer is set: they can
    /// never make progress. Lists them as `name@node`, sorted.
    Stalled {
        /// The stuck tasks, `name@node`, sorted.
        tasks: Vec<String>,
    },
    /// A task panicked; the simulation cannot go on.
    Panicked {
        /// The task, `name@node`.
        task: String,
        /// Its panic message.
        message: String,
    },
    /// The caller's stop condition held (see [`Executor::run_until`]).
    Stopped,
    /// A replayed schedule does not fit this run.
    ReplayFailed(ReplayError),
}

impl std::fmt::Display for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunEnd::AllDone => f.write_str("all tasks done"),
            RunEnd::TimeLimit => f.write_str("virtual-time bound reached"),
            RunEnd::StepLimit => f.write_str("step bound reached"),
            RunEnd::Stalled { tasks } => write!(f, "stalled: {}", tasks.join(", ")),
            RunEnd::Panicked { task, message } => write!(f, "task {task} panicked: {message}"),
            RunEnd::Stopped => f.write_str("stop condition met"),
            RunEnd::ReplayFailed(e) => e.fmt(f),
        }
    }
}

/// Counters of one executor, for benchmarks and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks polled (scheduling steps).
    pub polls: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Tasks spawned.
    pub spawned: u64,
}

/// A simulation's executor. Create one per run; it owns every task.
pub struct Executor {
    shared: Rc<Shared>,
}

impl Executor {
    /// `rng` decides the schedule (fork a `"scheduler"` stream for it).
    pub fn new(rng: SimRng, scheduler: Scheduler) -> Executor {
        Executor::with_picker(Picker::new(scheduler, rng))
    }

    /// An executor that makes the decisions of a recorded `schedule` (see
    /// `crate::engine::schedule`); a run stops with [`RunEnd::ReplayFailed`] when
    /// the schedule does not fit.
    pub fn replaying(schedule: Schedule) -> Executor {
        Executor::with_picker(Picker::replaying(schedule))
    }

    fn with_picker(picker: Picker) -> Executor {
        Executor {
            shared: Rc::new(Shared {
                now: Cell::new(VirtualTime::ZERO),
                slots: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                live: Cell::new(0),
                ready: RefCell::new(VecDeque::new()),
                timers: RefCell::new(TimerQueue::default()),
                foreign_wakers: RefCell::new(Vec::new()),
                free_foreign: RefCell::new(Vec::new()),
                current: Cell::new(None),
                paused: RefCell::new(Vec::new()),
                picker: RefCell::new(picker),
                stats: Cell::new(Stats::default()),
            }),
        }
    }

    /// Spawn a task before (or between) runs.
    pub fn spawn<T: 'static>(
        &self,
        name: &'static str,
        node: Option<NodeId>,
        fut: impl Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        spawn_in(&self.shared, name, node, fut)
    }

    /// The current virtual time.
    pub fn now(&self) -> VirtualTime {
        self.shared.now.get()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats.get()
    }

    /// Record every scheduling decision from now on (see
    /// [`Executor::recorded_schedule`]).
    pub fn record_schedule(&self) {
        self.shared.picker.borrow_mut().record();
    }

    /// The decisions made since [`Executor::record_schedule`]; `None` when
    /// not recording.
    pub fn recorded_schedule(&self) -> Option<Schedule> {
        self.shared.picker.borrow().recorded()
    }

    /// Tasks not finished yet.
    pub fn live_tasks(&self) -> usize {
        self.shared.live.get()
    }

    /// Run `f` as if inside the simulation (its clock and spawns), between
    /// runs: for inspecting the world or starting tasks from outside.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _enter = Enter::new(&self.shared);
        f()
    }

    /// Run until a bound or an end condition; can be called again to go on.
    pub fn run(&mut self, limits: Limits) -> RunEnd {
        self.run_until(limits, || false)
    }

    /// [`Executor::run`], also stopping with [`RunEnd::Stopped`] as soon as
    /// `stop` holds (checked after every poll).
    pub fn run_until(&mut self, limits: Limits, mut stop: impl FnMut() -> bool) -> RunEnd {
        let _enter = Enter::new(&self.shared);
        let shared = &*self.shared;
        loop {
            if stop() {
                return RunEnd::Stopped;
            }
            if shared.live.get() == 0 {
                return RunEnd::AllDone;
            }
            if shared.stats.get().polls >= limits.max_steps {
                return RunEnd::StepLimit;
            }
            let Some(index) = shared.next_ready() else {
                if let Some(e) = shared.picker.borrow().failure() {
                    return RunEnd::ReplayFailed(e.clone());
                }
                if let Err(end) = shared.advance_time(limits.until) {
                    return end;
                }
                continue;
            };
            if let Some(end) = self.poll_task(index) {
                return end;
            }
        }
    }

    fn poll_task(&self, index: u32) -> Option<RunEnd> {
        let shared = &*self.shared;
        let (mut future, generation, name, node) = {
            let mut slots = shared.slots.borrow_mut();
            let slot = &mut slots[index as usize];
            slot.queued = false;
            // A stale queue entry of a reused slot may name a paused task.
            if slot.node.is_some_and(|n| shared.is_paused(n)) {
                slot.parked = slot.future.is_some();
                return None;
            }
            match slot.future.take() {
                Some(f) => (f, slot.generation, slot.name, slot.node),
                None => return None,
            }
        };
        let mut s = shared.stats.get();
        s.polls += 1;
        shared.stats.set(s);
        shared.current.set(Some(index));
        let waker = task_waker(index, generation);
        let mut cx = Context::from_waker(&waker);
        let result = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        shared.current.set(None);
        match result {
            Ok(Poll::Pending) => {
                shared.slots.borrow_mut()[index as usize].future = Some(future);
                None
            }
            Ok(Poll::Ready(())) => {
                drop(future);
                shared.release(index);
                None
            }
            Err(payload) => {
                drop(future);
                shared.release(index);
                Some(RunEnd::Panicked {
                    task: task_label(name, node),
                    message: panic_message(payload.as_ref()),
                })
            }
        }
    }

    /// Drop every task of `node` (a crash): their futures are dropped, their
    /// pending wake-ups ignored, and their join handles never complete.
    pub fn kill_node(&mut self, node: NodeId) -> usize {
        let _enter = Enter::new(&self.shared);
        self.shared.kill_node(node)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Futures may wake or drop other tasks' handles while dropped: keep
        // the executor reachable, and drop them outside any borrow.
        let _enter = Enter::new(&self.shared);
        let futures: Vec<BoxFuture> = self
            .shared
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(|s| s.future.take())
            .collect();
        drop(futures);
        self.shared.timers.borrow_mut().clear();
        self.shared.foreign_wakers.borrow_mut().clear();
    }
}

/// The message of a caught panic (`&str` or `String` payloads).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Installs the executor as this thread's current one for a scope; restores
/// whatever was there before (runs do not nest, but drops may).
struct Enter {
    previous: *const Shared,
    _shared: Rc<Shared>,
}

impl Enter {
    fn new(shared: &Rc<Shared>) -> Enter {
        let previous = CURRENT.with(|c| c.replace(Rc::as_ptr(shared)));
        Enter {
            previous,
            _shared: shared.clone(),
        }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

#[cfg(test)]
mod tests;
