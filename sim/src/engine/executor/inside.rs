//! What code running inside a simulation calls: spawning, the current
//! node and virtual time, sleeping, timeouts, intervals, yielding, and the
//! node controls the lifecycle uses (kill, pause, resume).

use crate::engine::time::VirtualTime;
use shardboot::types::NodeId;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::shared::{Shared, try_with_current, with_current};

pub(super) fn spawn_in<T: 'static>(
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

/// Wait until virtual time reaches `deadline`.
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

/// A ticker every `period` of virtual time (see [`Interval`]).
pub fn interval(period: Duration) -> Interval {
    Interval {
        period,
        next: now() + period,
    }
}

impl Interval {
    /// Wait for the next tick; its virtual time.
    pub async fn tick(&mut self) -> VirtualTime {
        sleep_until(self.next).await;
        let t = now();
        self.next = t + self.period;
        t
    }
}
