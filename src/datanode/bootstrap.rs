//! Node-wide bootstrap requests of a data node: a manual retry, a bootstrap
//! in the background (after every shard-set assignment), and, with quirk
//! Q14 off, the automatic retry of a failed pass with capped exponential
//! backoff. The [`BootstrapManager`](crate::manager::BootstrapManager) runs
//! at most one pass at a time and coalesces the rest.

use std::rc::Rc;

use crate::env::{Cluster, Env};
use crate::manager::{PassErrors, Requested};
use crate::memstore::BootstrapErrors;
use crate::quirks::Quirk;

use super::node::{DataNode, TARGET};

impl<E: Env> DataNode<E> {
    /// Manual retry request: a bootstrap in the background (only marked
    /// pending if one is running).
    pub fn retry(self: &Rc<Self>) {
        tracing::info!(target: TARGET, node = %self.env.node(), "bootstrap_retry_requested");
        self.bootstrap_in_background();
    }

    /// Request a node-wide bootstrap on a task of its own.
    pub(super) fn bootstrap_in_background(self: &Rc<Self>) {
        let this = Rc::clone(self);
        let _task = self
            .env
            .spawn("bootstrap", async move { this.bootstrap().await });
    }

    /// Run (or queue) a node-wide bootstrap; the caller that ran it
    /// schedules the automatic retry when a pass failed (Q14 off).
    async fn bootstrap(self: Rc<Self>) {
        let result = self
            .manager
            .request(async || self.bootstrap_pass().await)
            .await;
        match result {
            Ok(Requested::Queued) => {}
            Ok(Requested::Ran { .. }) => {
                self.state.borrow_mut().backoff = self.options.retry_backoff_min;
            }
            Err(PassErrors(passes)) => {
                let failed = passes.last().map_or(0, Vec::len);
                tracing::info!(target: TARGET,
                    node = %self.env.node(),
                    failed_passes = passes.len(),
                    failed_table_shards = failed,
                    "node_bootstrap_failed"
                );
                if !self.options.quirks.on(Quirk::Q14) {
                    self.schedule_retry();
                }
            }
        }
    }

    /// One pass: a fresh topology snapshot, then every table shard.
    async fn bootstrap_pass(&self) -> Result<(), BootstrapErrors> {
        let view = self.env.cluster().view();
        self.memstore
            .bootstrap_all(&self.source, self.env.node(), &view, &self.options)
            .await
    }

    /// Q14 off: retry after the current backoff, which doubles (up to
    /// `retry_backoff_max`) until a run succeeds. At most one retry waits.
    fn schedule_retry(self: &Rc<Self>) {
        let delay = {
            let mut st = self.state.borrow_mut();
            if st.retry_scheduled || st.stopped {
                return;
            }
            st.retry_scheduled = true;
            let delay = st.backoff;
            st.backoff = (delay * 2).min(self.options.retry_backoff_max);
            delay
        };
        tracing::info!(target: TARGET,
            node = %self.env.node(),
            delay_ms = delay.as_millis() as u64,
            "bootstrap_retry_scheduled"
        );
        let this = Rc::clone(self);
        let _task = self.env.spawn("bootstrap_retry", async move {
            this.env.sleep(delay).await;
            this.state.borrow_mut().retry_scheduled = false;
            if !this.stopped() {
                this.bootstrap().await;
            }
        });
    }
}
