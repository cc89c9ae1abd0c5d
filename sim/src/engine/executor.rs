//! The single-threaded, seeded executor with virtual time.
//!
//! At every step one *ready* task is polled; which one is chosen by the
//! scheduler (seeded random pick, PCT, FIFO for debugging, or the replay of
//! a recorded schedule: see [`crate::engine::scheduler`] and [`crate::engine::schedule`]).
//! Virtual time jumps
//! to the next timer only when nothing is ready. A run ends with a
//! [`RunEnd`] reason: all tasks done, a time or step bound, a stall (tasks
//! pending with nothing ready and no timer) or a caught panic.
//!
//! Design choices that keep it fast (see PERFORMANCE.md): wakers are
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
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use shardboot::types::NodeId;

use crate::engine::rng::SimRng;
use crate::engine::schedule::{ReplayError, Schedule, TaskId};
use crate::engine::scheduler::Picker;
pub use crate::engine::scheduler::Scheduler;
use crate::engine::time::VirtualTime;
use crate::engine::timers::{Timer, TimerQueue};

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
    Stalled { tasks: Vec<String> },
    /// A task panicked; the simulation cannot go on.
    Panicked { task: String, message: String },
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
    pub polls: u64,
    pub timers_fired: u64,
    pub spawned: u64,
}

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Slot {
    future: Option<BoxFuture>,
    generation: u32,
    queued: bool,
    /// Woken while its node was paused: made ready on resume.
    parked: bool,
    name: &'static str,
    node: Option<NodeId>,
    /// The task in the slot (or the last one, once it is free).
    task: TaskId,
}

/// Timer keys are either one of our task wakers (slot and generation, see
/// [`pack`]) or, with [`FOREIGN`] set, an index into
/// `Shared::foreign_wakers` (wakers made by combinators such as
/// `FuturesUnordered`). Keeping keys at 8 bytes keeps the queue compact.
const FOREIGN: u64 = 1 << 63;

/// The executor's state, shared with wakers and free functions through the
/// thread-local [`CURRENT`] while a run is in progress.
struct Shared {
    now: Cell<VirtualTime>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    live: Cell<usize>,
    ready: RefCell<VecDeque<u32>>,
    timers: RefCell<TimerQueue>,
    foreign_wakers: RefCell<Vec<Option<Waker>>>,
    free_foreign: RefCell<Vec<u64>>,
    current: Cell<Option<u32>>,
    /// Paused nodes, each with the wakers of tasks waiting for its resume.
    paused: RefCell<Vec<(NodeId, Vec<Waker>)>>,
    picker: RefCell<Picker>,
    stats: Cell<Stats>,
}

thread_local! {
    /// The executor running on this thread, set by [`Enter`] for the span of
    /// a run (or a drop). A raw pointer in a `Cell`: the cheapest TLS there
    /// is, and this is on the path of every wake-up and timer.
    static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

fn try_with_current<R>(f: impl FnOnce(&Shared) -> R) -> Option<R> {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: a non-null pointer was installed by an `Enter` guard that holds
    // an `Rc<Shared>` to it, and it is reset before that guard is dropped.
    // Single-threaded: nothing else can free it meanwhile.
    (!ptr.is_null()).then(|| f(unsafe { &*ptr }))
}

fn with_current<R>(f: impl FnOnce(&Shared) -> R) -> R {
    try_with_current(f)
        .expect("bootsim: called outside a running simulation (no executor on this thread)")
}

impl Shared {
    fn spawn_boxed(&self, name: &'static str, node: Option<NodeId>, future: BoxFuture) -> u32 {
        let mut s = self.stats.get();
        let task = TaskId(s.spawned);
        s.spawned += 1;
        self.stats.set(s);
        let mut slots = self.slots.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => {
                let slot = &mut slots[i as usize];
                slot.future = Some(future);
                slot.name = name;
                slot.node = node;
                slot.task = task;
                i
            }
            None => {
                slots.push(Slot {
                    future: Some(future),
                    generation: 0,
                    queued: false,
                    parked: false,
                    name,
                    node,
                    task,
                });
                (slots.len() - 1) as u32
            }
        };
        drop(slots);
        self.live.set(self.live.get() + 1);
        self.picker.borrow_mut().spawned(index);
        let generation = self.slots.borrow()[index as usize].generation;
        self.wake(index, generation);
        index
    }

    fn wake(&self, index: u32, generation: u32) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(index as usize)
            && slot.generation == generation
            && !slot.queued
        {
            if slot.node.is_some_and(|n| self.is_paused(n)) {
                slot.parked = true;
            } else {
                slot.queued = true;
                self.ready.borrow_mut().push_back(index);
            }
        }
    }

    fn is_paused(&self, node: NodeId) -> bool {
        let paused = self.paused.borrow();
        !paused.is_empty() && paused.iter().any(|(n, _)| *n == node)
    }

    /// Park `node`'s tasks: take them off the ready queue; their later
    /// wake-ups park them too. False if it was already paused.
    fn pause_node(&self, node: NodeId) -> bool {
        if self.is_paused(node) {
            return false;
        }
        self.paused.borrow_mut().push((node, Vec::new()));
        let mut slots = self.slots.borrow_mut();
        self.ready.borrow_mut().retain(|&i| {
            let slot = &mut slots[i as usize];
            let keep = slot.node != Some(node) || !slot.queued;
            if !keep {
                slot.queued = false;
                slot.parked = true;
            }
            keep
        });
        true
    }

    /// Make every parked task of `node` ready and wake whoever waits for
    /// it. False if it was not paused.
    fn resume_node(&self, node: NodeId) -> bool {
        let waiters = {
            let mut paused = self.paused.borrow_mut();
            match paused.iter().position(|(n, _)| *n == node) {
                Some(i) => paused.remove(i).1,
                None => return false,
            }
        };
        let parked: Vec<(u32, u32)> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| s.parked && s.node == Some(node))
            .map(|(i, s)| {
                s.parked = false;
                (i as u32, s.generation)
            })
            .collect();
        for (index, generation) in parked {
            self.wake(index, generation);
        }
        for w in waiters {
            w.wake();
        }
        true
    }

    /// Drop every task of `node` except the one being polled: their
    /// futures are dropped (outside any borrow: drops may wake others),
    /// their pending wake-ups ignored, their join handles never complete.
    fn kill_node(&self, node: NodeId) -> usize {
        let victims: Vec<u32> = self
            .slots
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.future.is_some() && s.node == Some(node))
            .map(|(i, _)| i as u32)
            .collect();
        for &i in &victims {
            let fut = self.slots.borrow_mut()[i as usize].future.take();
            drop(fut);
            self.release(i);
        }
        victims.len()
    }

    fn release(&self, index: u32) {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index as usize];
        // 31 bits: the top bit of a packed key marks foreign timers.
        slot.generation = slot.generation.wrapping_add(1) & 0x7fff_ffff;
        slot.queued = false;
        slot.parked = false;
        drop(slots);
        self.free.borrow_mut().push(index);
        self.live.set(self.live.get() - 1);
    }

    fn next_ready(&self) -> Option<u32> {
        // Slots are looked at only when recording or replaying.
        self.picker
            .borrow_mut()
            .pick(&mut self.ready.borrow_mut(), |i| {
                self.slots.borrow()[i as usize].task
            })
    }

    fn add_timer(&self, at: VirtualTime, waker: &Waker) {
        let key = if std::ptr::eq(waker.vtable(), &VTABLE) {
            waker.data() as usize as u64
        } else {
            let mut wakers = self.foreign_wakers.borrow_mut();
            let i = match self.free_foreign.borrow_mut().pop() {
                Some(i) => i,
                None => {
                    wakers.push(None);
                    wakers.len() as u64 - 1
                }
            };
            wakers[i as usize] = Some(waker.clone());
            FOREIGN | i
        };
        self.timers.borrow_mut().push(Timer { at, key });
    }

    fn fire(&self, key: u64) {
        if key & FOREIGN == 0 {
            let (index, generation) = unpack(key as usize as *const ());
            self.wake(index, generation);
        } else {
            let i = key & !FOREIGN;
            let waker = self.foreign_wakers.borrow_mut()[i as usize].take();
            self.free_foreign.borrow_mut().push(i);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Fire every timer due at the earliest pending instant, if it is not
    /// beyond `until`. Returns false when there is nothing to fire.
    fn advance_time(&self, until: VirtualTime) -> Result<(), RunEnd> {
        let next = match self.timers.borrow_mut().peek() {
            Some(at) => at,
            None => return Err(self.stall()),
        };
        if next > until {
            self.now.set(until.max(self.now.get()));
            return Err(RunEnd::TimeLimit);
        }
        self.now.set(next.max(self.now.get()));
        let mut fired = 0;
        loop {
            let timer = self.timers.borrow_mut().pop_due(next);
            match timer {
                Some(t) => {
                    fired += 1;
                    self.fire(t.key);
                }
                None => break,
            }
        }
        let mut s = self.stats.get();
        s.timers_fired += fired;
        self.stats.set(s);
        Ok(())
    }

    fn stall(&self) -> RunEnd {
        let slots = self.slots.borrow();
        let mut tasks: Vec<String> = slots
            .iter()
            .filter(|s| s.future.is_some())
            .map(|s| task_label(s.name, s.node))
            .collect();
        tasks.sort();
        RunEnd::Stalled { tasks }
    }
}

fn task_label(name: &str, node: Option<NodeId>) -> String {
    match node {
        Some(n) => format!("{name}@{n}"),
        None => name.to_string(),
    }
}

// --- wakers: the task slot and generation packed into the data pointer ----

fn pack(index: u32, generation: u32) -> *const () {
    ((u64::from(generation) << 32) | u64::from(index)) as usize as *const ()
}

fn unpack(data: *const ()) -> (u32, u32) {
    let v = data as usize as u64;
    (v as u32, (v >> 32) as u32)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake_raw(data: *const ()) {
    let (index, generation) = unpack(data);
    try_with_current(|shared| shared.wake(index, generation));
}

fn drop_raw(_: *const ()) {}

fn task_waker(index: u32, generation: u32) -> Waker {
    // SAFETY: the vtable functions never dereference the data pointer; it is
    // a plain integer, valid to copy, wake and drop from anywhere.
    unsafe { Waker::from_raw(RawWaker::new(pack(index, generation), &VTABLE)) }
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
    /// [`crate::engine::schedule`]); a run stops with [`RunEnd::ReplayFailed`] when
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

    pub fn now(&self) -> VirtualTime {
        self.shared.now.get()
    }

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

// --- free functions for code running inside a simulation -----------------

fn spawn_in<T: 'static>(
    shared: &Shared,
    name: &'static str,
    node: Option<NodeId>,
    fut: impl Future<Output = T> + 'static,
) -> JoinHandle<T> {
    let state = Rc::new(RefCell::new(JoinState {
        output: None,
        waker: None,
    }));
    let task_state = state.clone();
    shared.spawn_boxed(
        name,
        node,
        Box::pin(async move {
            let out = fut.await;
            let waker = {
                let mut st = task_state.borrow_mut();
                st.output = Some(out);
                st.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }),
    );
    JoinHandle { state }
}

/// Spawn a task on the running simulation; it runs on the same node as the
/// spawning task.
pub fn spawn<T: 'static>(
    name: &'static str,
    fut: impl Future<Output = T> + 'static,
) -> JoinHandle<T> {
    with_current(|s| spawn_in(s, name, current_node_of(s), fut))
}

/// Spawn a task of `node` on the running simulation.
pub fn spawn_on<T: 'static>(
    name: &'static str,
    node: Option<NodeId>,
    fut: impl Future<Output = T> + 'static,
) -> JoinHandle<T> {
    with_current(|s| spawn_in(s, name, node, fut))
}

/// Crash `node` on the running simulation: drop all its tasks (but the
/// calling one, should it be one of them). Returns how many were dropped.
pub fn kill_node(node: NodeId) -> usize {
    with_current(|s| s.kill_node(node))
}

/// Pause `node` on the running simulation: its tasks are not polled until
/// [`resume_node`]; wake-ups meanwhile are kept. False if already paused.
pub fn pause_node(node: NodeId) -> bool {
    with_current(|s| s.pause_node(node))
}

/// End a pause: the node's parked tasks become ready. False if it was not
/// paused.
pub fn resume_node(node: NodeId) -> bool {
    with_current(|s| s.resume_node(node))
}

/// Whether `node` is paused on the running simulation.
pub fn is_paused(node: NodeId) -> bool {
    with_current(|s| s.is_paused(node))
}

/// Completes once `node` is not paused (at once if it is running): how a
/// peer's request waits for a stalled host to answer.
pub async fn until_running(node: NodeId) {
    std::future::poll_fn(|cx| {
        with_current(|s| {
            let mut paused = s.paused.borrow_mut();
            match paused.iter_mut().find(|(n, _)| *n == node) {
                Some((_, waiters)) => {
                    waiters.push(cx.waker().clone());
                    Poll::Pending
                }
                None => Poll::Ready(()),
            }
        })
    })
    .await
}

fn current_node_of(s: &Shared) -> Option<NodeId> {
    s.current
        .get()
        .and_then(|i| s.slots.borrow().get(i as usize).and_then(|slot| slot.node))
}

/// The virtual time of the running simulation.
pub fn now() -> VirtualTime {
    with_current(|s| s.now.get())
}

/// Virtual time and node of the task being polled, if a simulation is
/// running on this thread (used by the trace layer).
pub fn context() -> Option<(VirtualTime, Option<NodeId>)> {
    try_with_current(|s| (s.now.get(), current_node_of(s)))
}

/// Output slot of a spawned task.
struct JoinState<T> {
    output: Option<T>,
    waker: Option<Waker>,
}

/// Awaits a spawned task's output. Dropping it detaches the task. If the
/// task is killed (its node crashed) the handle never completes.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.state.borrow_mut();
        match st.output.take() {
            Some(out) => Poll::Ready(out),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Completes once virtual time reaches the deadline.
pub struct Sleep {
    wait: SleepState,
}

enum SleepState {
    /// Not polled yet: the deadline is fixed at the first poll, which saves
    /// a thread-local lookup on the hot path.
    After(Duration),
    Until(VirtualTime),
    Registered(VirtualTime),
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        with_current(|s| {
            let now = s.now.get();
            let deadline = match self.wait {
                SleepState::After(d) => now + d,
                SleepState::Until(t) => t,
                SleepState::Registered(t) => {
                    return if now >= t {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    };
                }
            };
            if now >= deadline {
                return Poll::Ready(());
            }
            s.add_timer(deadline, cx.waker());
            self.wait = SleepState::Registered(deadline);
            Poll::Pending
        })
    }
}

/// Wait `d` of virtual time, counted from the first poll. A zero sleep is
/// ready at once; use [`yield_now`] to let other tasks run.
pub fn sleep(d: Duration) -> Sleep {
    Sleep {
        wait: SleepState::After(d),
    }
}

pub fn sleep_until(deadline: VirtualTime) -> Sleep {
    Sleep {
        wait: SleepState::Until(deadline),
    }
}

/// Let every other ready task run before this one goes on: the task goes to
/// the back of the ready queue (or a random place in it).
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// The deadline passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Run `fut` for at most `d` of virtual time.
pub async fn timeout<T>(d: Duration, fut: impl Future<Output = T>) -> Result<T, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = std::pin::pin!(sleep(d));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        sleep.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// Ticks every `period`, starting one period from its creation; a late tick
/// does not cause a burst of catch-up ticks.
pub struct Interval {
    period: Duration,
    next: VirtualTime,
}

pub fn interval(period: Duration) -> Interval {
    Interval {
        period,
        next: now() + period,
    }
}

impl Interval {
    pub async fn tick(&mut self) -> VirtualTime {
        sleep_until(self.next).await;
        let t = now();
        self.next = t + self.period;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
