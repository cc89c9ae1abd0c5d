//! A single-threaded unbounded channel (mailbox). It only uses wakers, so it
//! works on any executor; it is cheaper than a thread-safe channel and its
//! behaviour is fully deterministic.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

struct Inner<T> {
    queue: VecDeque<T>,
    receiver_waker: Option<Waker>,
    senders: usize,
    receiver_alive: bool,
}

/// Sending half; clone it for more senders.
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// Receiving half.
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

/// A new mailbox.
pub fn mailbox<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(RefCell::new(Inner {
        queue: VecDeque::new(),
        receiver_waker: None,
        senders: 1,
        receiver_alive: true,
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

impl<T> Sender<T> {
    /// Queue `value`; gives it back if the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), T> {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            if !inner.receiver_alive {
                return Err(value);
            }
            inner.queue.push_back(value);
            inner.receiver_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.inner.borrow_mut().senders += 1;
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.senders -= 1;
            if inner.senders == 0 {
                inner.receiver_waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next value; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if let Some(v) = inner.queue.pop_front() {
                Poll::Ready(Some(v))
            } else if inner.senders == 0 {
                Poll::Ready(None)
            } else {
                inner.receiver_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        inner.receiver_alive = false;
        inner.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_in_order_then_ends_when_senders_drop() {
        let (tx, mut rx) = mailbox();
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        tx2.send(2).unwrap();
        drop((tx, tx2));
        let got = futures::executor::block_on(async {
            vec![rx.recv().await, rx.recv().await, rx.recv().await]
        });
        assert_eq!(got, vec![Some(1), Some(2), None]);
    }

    #[test]
    fn send_fails_after_receiver_dropped() {
        let (tx, rx) = mailbox();
        drop(rx);
        assert_eq!(tx.send(5), Err(5));
    }
}
