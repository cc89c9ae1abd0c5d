//! Spawned tasks of the fake world: they run on the world's `LocalPool`,
//! and [`FakeJoin`] (the fake `Env::JoinHandle`) yields a task's output;
//! dropping it detaches the task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::executor::LocalSpawner;
use futures::task::LocalSpawnExt;

/// `Env::JoinHandle`: yields the task's output; dropping it detaches.
pub(crate) struct FakeJoin<T> {
    name: &'static str,
    rx: oneshot::Receiver<T>,
}

impl<T> Future for FakeJoin<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(v)) => Poll::Ready(v),
            Poll::Ready(Err(oneshot::Canceled)) => {
                panic!("task {} was dropped before it finished", self.name)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

pub(super) fn spawn_on<T: 'static>(
    spawner: &LocalSpawner,
    name: &'static str,
    fut: impl Future<Output = T> + 'static,
) -> FakeJoin<T> {
    let (tx, rx) = oneshot::channel();
    spawner
        .spawn_local(async move {
            let _ = tx.send(fut.await);
        })
        .expect("the fake world's pool is alive");
    FakeJoin { name, rx }
}
