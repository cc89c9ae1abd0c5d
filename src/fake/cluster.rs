//! The fake placement service: one cluster view for the whole world, its
//! watchers, and `mark_available` calls recorded (not applied).

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::env::{Cluster, ClusterError};
use crate::placement::ClusterView;
use crate::types::{NodeId, ShardId};

#[derive(Default)]
struct ClusterState {
    view: Rc<ClusterView>,
    watchers: Vec<Waker>,
    marked: Vec<(NodeId, Vec<ShardId>)>,
    mark_fails: bool,
}

/// The cluster view every host sees (one for the whole world), and a
/// placement service that records `mark_available` calls without applying
/// them (tests change the view themselves).
#[derive(Clone, Default)]
pub(crate) struct FakeCluster(Rc<RefCell<ClusterState>>);

impl FakeCluster {
    /// Replace the view as given (keep `version` increasing for watchers).
    pub(crate) fn set_view(&self, view: ClusterView) {
        let watchers = {
            let mut state = self.0.borrow_mut();
            state.view = Rc::new(view);
            std::mem::take(&mut state.watchers)
        };
        watchers.into_iter().for_each(Waker::wake);
    }

    /// Change the view with `f` and bump its version.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ClusterView)) {
        let mut view = (*self.0.borrow().view).clone();
        f(&mut view);
        view.version += 1;
        self.set_view(view);
    }

    /// Every `mark_available` call, in order (failed ones included).
    pub(crate) fn marked(&self) -> Vec<(NodeId, Vec<ShardId>)> {
        self.0.borrow().marked.clone()
    }

    pub(crate) fn set_mark_available_fails(&self, fails: bool) {
        self.0.borrow_mut().mark_fails = fails;
    }
}

impl Cluster for FakeCluster {
    fn view(&self) -> Rc<ClusterView> {
        Rc::clone(&self.0.borrow().view)
    }

    fn changed(&self, seen: u64) -> impl Future<Output = Rc<ClusterView>> {
        let this = self.clone();
        futures::future::poll_fn(move |cx| {
            let mut state = this.0.borrow_mut();
            if state.view.version > seen {
                Poll::Ready(Rc::clone(&state.view))
            } else {
                state.watchers.push(cx.waker().clone());
                Poll::Pending
            }
        })
    }

    fn mark_available(
        &self,
        node: NodeId,
        shards: Vec<ShardId>,
    ) -> impl Future<Output = Result<(), ClusterError>> {
        let mut state = self.0.borrow_mut();
        state.marked.push((node, shards));
        let result = if state.mark_fails {
            Err(ClusterError::Unavailable)
        } else {
            Ok(())
        };
        async move { result }
    }
}
