//! Virtual time of a fake world: one clock for all hosts. `sleep(d)`
//! completes only when the world fires its timer — even `sleep(ZERO)` yields
//! until then — so a test can stop a task exactly at an await point.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::types::Timestamp;

use super::net::FakeNet;

impl FakeNet {
    pub(crate) fn now(&self) -> Timestamp {
        self.0.clock.borrow().now
    }

    /// Set the clock (a jump either way); timers now due fire at the next
    /// [`FakeWorld::fire_due`] / [`FakeWorld::run`].
    pub(crate) fn set_now(&self, now: Timestamp) {
        self.0.clock.borrow_mut().now = now;
    }

    /// Wake every timer whose deadline has come; whether any did.
    pub(super) fn fire_due(&self) -> bool {
        let wakers: Vec<Waker> = {
            let mut clock = self.0.clock.borrow_mut();
            let now = clock.now;
            let due: Vec<(Timestamp, u64)> = clock
                .timers
                .range(..=(now, u64::MAX))
                .map(|(k, _)| *k)
                .collect();
            due.iter().filter_map(|k| clock.timers.remove(k)).collect()
        };
        let fired = !wakers.is_empty();
        wakers.into_iter().for_each(Waker::wake);
        fired
    }

    /// Fire due timers, or else advance to the earliest timer and fire it.
    pub(super) fn fire_next(&self) -> bool {
        if self.fire_due() {
            return true;
        }
        let next = self.0.clock.borrow().timers.keys().next().map(|k| k.0);
        match next {
            Some(t) => {
                self.set_now(t);
                self.fire_due()
            }
            None => false,
        }
    }
}

/// `Env::sleep`: pending until the world fires its timer.
pub(super) struct Sleep {
    pub(super) net: FakeNet,
    pub(super) d: Duration,
    pub(super) key: Option<(Timestamp, u64)>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let net = self.net.clone();
        let mut clock = net.0.clock.borrow_mut();
        match self.key {
            None => {
                let key = (clock.now.saturating_add(self.d), clock.next_timer);
                clock.next_timer += 1;
                clock.timers.insert(key, cx.waker().clone());
                self.key = Some(key);
                Poll::Pending
            }
            Some(key) => match clock.timers.get_mut(&key) {
                Some(w) => {
                    w.clone_from(cx.waker());
                    Poll::Pending
                }
                None => Poll::Ready(()),
            },
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(key), Ok(mut clock)) = (self.key, self.net.0.clock.try_borrow_mut()) {
            clock.timers.remove(&key);
        }
    }
}
