//! The executor's shared state: the task table (slots with generations,
//! the free list, the ready queue), the timer queue and the paused nodes,
//! reached from wakers and free functions through the thread-local
//! [`CURRENT`] while a run is in progress; and the wakers, allocation-free
//! `RawWaker`s whose data pointer packs a task's slot and generation (a
//! stale waker of a reused slot wakes nothing).

use crate::engine::schedule::TaskId;
use crate::engine::scheduler::Picker;
use crate::engine::time::VirtualTime;
use crate::engine::timers::{Timer, TimerQueue};
use shardboot::types::NodeId;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::{RunEnd, Stats};

pub(super) type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

pub(super) struct Slot {
    pub(super) future: Option<BoxFuture>,
    pub(super) generation: u32,
    pub(super) queued: bool,
    /// Woken while its node was paused: made ready on resume.
    pub(super) parked: bool,
    pub(super) name: &'static str,
    pub(super) node: Option<NodeId>,
    /// The task in the slot (or the last one, once it is free).
    pub(super) task: TaskId,
}

/// Timer keys are either one of our task wakers (slot and generation, see
/// [`pack`]) or, with [`FOREIGN`] set, an index into
/// `Shared::foreign_wakers` (wakers made by combinators such as
/// `FuturesUnordered`). Keeping keys at 8 bytes keeps the queue compact.
pub(super) const FOREIGN: u64 = 1 << 63;

/// The executor's state, shared with wakers and free functions through the
/// thread-local [`CURRENT`] while a run is in progress.
pub(super) struct Shared {
    pub(super) now: Cell<VirtualTime>,
    pub(super) slots: RefCell<Vec<Slot>>,
    pub(super) free: RefCell<Vec<u32>>,
    pub(super) live: Cell<usize>,
    pub(super) ready: RefCell<VecDeque<u32>>,
    pub(super) timers: RefCell<TimerQueue>,
    pub(super) foreign_wakers: RefCell<Vec<Option<Waker>>>,
    pub(super) free_foreign: RefCell<Vec<u64>>,
    pub(super) current: Cell<Option<u32>>,
    /// Paused nodes, each with the wakers of tasks waiting for its resume.
    pub(super) paused: RefCell<Vec<(NodeId, Vec<Waker>)>>,
    pub(super) picker: RefCell<Picker>,
    pub(super) stats: Cell<Stats>,
}

thread_local! {
    /// The executor running on this thread, set by [`Enter`] for the span of
    /// a run (or a drop). A raw pointer in a `Cell`: the cheapest TLS there
    /// is, and this is on the path of every wake-up and timer.
    pub(super) static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

pub(super) fn try_with_current<R>(f: impl FnOnce(&Shared) -> R) -> Option<R> {
    let ptr = CURRENT.with(Cell::get);
    // SAFETY: a non-null pointer was installed by an `Enter` guard that holds
    // an `Rc<Shared>` to it, and it is reset before that guard is dropped.
    // Single-threaded: nothing else can free it meanwhile.
    (!ptr.is_null()).then(|| f(unsafe { &*ptr }))
}

pub(super) fn with_current<R>(f: impl FnOnce(&Shared) -> R) -> R {
    try_with_current(f)
        .expect("bootsim: called outside a running simulation (no executor on this thread)")
}

impl Shared {
    pub(super) fn spawn_boxed(
        &self,
        name: &'static str,
        node: Option<NodeId>,
        future: BoxFuture,
    ) -> u32 {
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

    pub(super) fn wake(&self, index: u32, generation: u32) {
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

    pub(super) fn is_paused(&self, node: NodeId) -> bool {
        let paused = self.paused.borrow();
        !paused.is_empty() && paused.iter().any(|(n, _)| *n == node)
    }

    /// Park `node`'s tasks: take them off the ready queue; their later
    /// wake-ups park them too. False if it was already paused.
    pub(super) fn pause_node(&self, node: NodeId) -> bool {
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
    pub(super) fn resume_node(&self, node: NodeId) -> bool {
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
    pub(super) fn kill_node(&self, node: NodeId) -> usize {
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

    pub(super) fn release(&self, index: u32) {
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

    pub(super) fn next_ready(&self) -> Option<u32> {
        // Slots are looked at only when recording or replaying.
        self.picker
            .borrow_mut()
            .pick(&mut self.ready.borrow_mut(), |i| {
                self.slots.borrow()[i as usize].task
            })
    }

    pub(super) fn add_timer(&self, at: VirtualTime, waker: &Waker) {
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

    pub(super) fn fire(&self, key: u64) {
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
    pub(super) fn advance_time(&self, until: VirtualTime) -> Result<(), RunEnd> {
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

    pub(super) fn stall(&self) -> RunEnd {
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

pub(super) fn task_label(name: &str, node: Option<NodeId>) -> String {
    match node {
        Some(n) => format!("{name}@{n}"),
        None => name.to_string(),
    }
}

// --- wakers: the task slot and generation packed into the data pointer ----

pub(super) fn pack(index: u32, generation: u32) -> *const () {
    ((u64::from(generation) << 32) | u64::from(index)) as usize as *const ()
}

pub(super) fn unpack(data: *const ()) -> (u32, u32) {
    let v = data as usize as u64;
    (v as u32, (v >> 32) as u32)
}

pub(super) static VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

pub(super) fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

pub(super) fn wake_raw(data: *const ()) {
    let (index, generation) = unpack(data);
    try_with_current(|shared| shared.wake(index, generation));
}

pub(super) fn drop_raw(_: *const ()) {}

pub(super) fn task_waker(index: u32, generation: u32) -> Waker {
    // SAFETY: the vtable functions never dereference the data pointer; it is
    // a plain integer, valid to copy, wake and drop from anywhere.
    unsafe { Waker::from_raw(RawWaker::new(pack(index, generation), &VTABLE)) }
}
