//! The bootstrap manager (docs/MODEL.md §5): at most one node-wide bootstrap
//! at a time, and overlapping requests coalesced into a single extra pass.
//!
//! A request that arrives while a bootstrap runs only sets **pending** and
//! returns at once (its caller is not told the outcome); the running
//! bootstrap makes one more pass when its current one ends. So any number of
//! overlapping requests cost at most one running plus one queued pass. Each
//! pass is a fresh call of the pass function, which takes its own topology
//! snapshot. After a run the manager reports "bootstrapped" with the
//! completion time from the host's clock — even when passes failed, as
//! upstream does; the errors of the passes go to the caller that ran them.
//!
//! The manager is generic over the pass so it can be tested alone; the data
//! node hands it a closure over the memstore. It does not model upstream's
//! `bootstrapped` state being consulted by anything else than inspection.

use std::cell::RefCell;

use crate::env::Env;
use crate::probe::Probe;
use crate::types::Timestamp;

/// What became of one [`BootstrapManager::request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested {
    /// This caller ran the bootstrap: `passes` passes (1 plus the pending
    /// re-runs it picked up), all of which succeeded.
    Ran { passes: u32 },
    /// A bootstrap was already running; it will make one more pass.
    Queued,
}

/// The errors of a run, one per failed pass, in pass order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassErrors<Err>(pub Vec<Err>);

impl<Err: std::fmt::Display> std::fmt::Display for PassErrors<Err> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bootstrap pass(es) failed", self.0.len())?;
        for e in &self.0 {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl<Err: std::fmt::Debug + std::fmt::Display> std::error::Error for PassErrors<Err> {}

/// Mutable state, never borrowed across an await.
#[derive(Debug, Default)]
struct State {
    running: bool,
    pending: bool,
    /// A run has completed at least once.
    bootstrapped: bool,
    last_completed: Option<Timestamp>,
    /// Passes started over the manager's life (for tests and the oracle).
    passes: u64,
}

/// Coalesces node-wide bootstrap requests (docs/MODEL.md §5).
pub struct BootstrapManager<E: Env> {
    env: E,
    state: RefCell<State>,
}

impl<E: Env> BootstrapManager<E> {
    /// A manager that has never bootstrapped.
    pub fn new(env: E) -> Self {
        BootstrapManager {
            env,
            state: RefCell::new(State::default()),
        }
    }

    /// Request a node-wide bootstrap running `pass`.
    ///
    /// If none runs, this caller runs `pass`, then runs it again for as long
    /// as requests arrived meanwhile (one re-run covers all of them), marks
    /// the node bootstrapped with the completion time, and returns the errors
    /// of its passes. If one runs, only marks it pending and returns
    /// [`Requested::Queued`] without waiting.
    pub async fn request<Err>(
        &self,
        mut pass: impl AsyncFnMut() -> Result<(), Err>,
    ) -> Result<Requested, PassErrors<Err>> {
        {
            let mut st = self.state.borrow_mut();
            if st.running {
                st.pending = true;
                drop(st);
                tracing::info!(node = %self.env.node(), "bootstrap_request_queued");
                return Ok(Requested::Queued);
            }
            st.running = true;
        }
        let mut errors = Vec::new();
        let mut passes = 0u32;
        loop {
            passes += 1;
            let total = {
                let mut st = self.state.borrow_mut();
                st.pending = false;
                st.passes += 1;
                st.passes
            };
            tracing::info!(node = %self.env.node(), pass = total, "bootstrap_pass_started");
            if passes > 1 {
                Probe::BootstrapPassRerun.hit();
            }
            let result = pass().await;
            let ok = result.is_ok();
            if let Err(e) = result {
                errors.push(e);
            }
            tracing::info!(node = %self.env.node(), pass = total, ok, "bootstrap_pass_finished");
            let mut st = self.state.borrow_mut();
            if !st.pending {
                st.running = false;
                st.bootstrapped = true;
                st.last_completed = Some(self.env.now());
                break;
            }
        }
        let now = self.env.now();
        tracing::info!(
            node = %self.env.node(),
            passes,
            failed = errors.len(),
            at = %now,
            "node_bootstrapped"
        );
        if errors.is_empty() {
            Ok(Requested::Ran { passes })
        } else {
            Err(PassErrors(errors))
        }
    }

    /// Whether a bootstrap is running now.
    pub fn is_running(&self) -> bool {
        self.state.borrow().running
    }

    /// Whether a request is waiting for the running bootstrap's next pass.
    pub fn is_pending(&self) -> bool {
        self.state.borrow().pending
    }

    /// Whether a run has completed (successfully or not) at least once.
    pub fn is_bootstrapped(&self) -> bool {
        self.state.borrow().bootstrapped
    }

    /// When the last run completed, on this host's clock.
    pub fn last_completed(&self) -> Option<Timestamp> {
        self.state.borrow().last_completed
    }

    /// Passes started over the manager's life.
    pub fn passes(&self) -> u64 {
        self.state.borrow().passes
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;
    use crate::fake::{FakeEnv, FakeWorld};
    use crate::types::NodeId;

    fn setup() -> (FakeWorld, FakeEnv, Rc<BootstrapManager<FakeEnv>>) {
        let w = FakeWorld::new(1);
        let env = w.host(NodeId(1));
        let m = Rc::new(BootstrapManager::new(env.clone()));
        (w, env, m)
    }

    /// A pass that sleeps one second and counts itself.
    fn counting_pass(
        env: &FakeEnv,
        count: &Rc<Cell<u32>>,
    ) -> impl AsyncFnMut() -> Result<(), String> + 'static {
        let env = env.clone();
        let count = Rc::clone(count);
        async move || {
            count.set(count.get() + 1);
            env.sleep(Duration::from_secs(1)).await;
            Ok(())
        }
    }

    #[test]
    fn ten_overlapping_requests_run_exactly_two_passes() {
        let (mut w, env, m) = setup();
        let count = Rc::new(Cell::new(0));
        assert!(!m.is_bootstrapped());
        assert_eq!(m.last_completed(), None);
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let m = Rc::clone(&m);
                let pass = counting_pass(&env, &count);
                w.spawn(async move { m.request(pass).await })
            })
            .collect();
        w.run_until_stalled();
        // The first runs, the nine others only queued.
        assert!(m.is_running() && m.is_pending());
        assert!(!m.is_bootstrapped());
        let outcomes = w.run(futures::future::join_all(handles));
        assert_eq!(count.get(), 2);
        assert_eq!(m.passes(), 2);
        assert_eq!(outcomes[0], Ok(Requested::Ran { passes: 2 }));
        assert!(outcomes[1..].iter().all(|o| *o == Ok(Requested::Queued)));
        assert!(m.is_bootstrapped());
        assert!(!m.is_running());
        assert_eq!(m.last_completed(), Some(Timestamp::from_secs(2)));
    }

    #[test]
    fn error_of_a_pass_is_returned_to_the_caller_that_ran_it_and_node_still_bootstrapped() {
        let (mut w, env, m) = setup();
        w.net().set_now(Timestamp::from_secs(7));
        let m2 = Rc::clone(&m);
        let result = w.run(async move {
            m2.request(async || -> Result<(), String> {
                env.sleep(Duration::from_secs(1)).await;
                Err("disk on fire".to_string())
            })
            .await
        });
        assert_eq!(result, Err(PassErrors(vec!["disk on fire".to_string()])));
        assert!(m.is_bootstrapped());
        assert_eq!(m.last_completed(), Some(Timestamp::from_secs(8)));
    }

    #[test]
    fn retry_request_while_running_only_marks_pending() {
        let (mut w, env, m) = setup();
        let running = Rc::new(Cell::new(0u32));
        let max_running = Rc::new(Cell::new(0u32));
        let count = Rc::new(Cell::new(0u32));
        let make_pass = || {
            let (env, running, max_running, count) = (
                env.clone(),
                Rc::clone(&running),
                Rc::clone(&max_running),
                Rc::clone(&count),
            );
            async move || -> Result<(), String> {
                count.set(count.get() + 1);
                running.set(running.get() + 1);
                max_running.set(max_running.get().max(running.get()));
                env.sleep(Duration::from_secs(1)).await;
                running.set(running.get() - 1);
                Ok(())
            }
        };
        let first = {
            let m = Rc::clone(&m);
            let pass = make_pass();
            w.spawn(async move { m.request(pass).await })
        };
        w.run_until_stalled();
        assert!(m.is_running() && !m.is_pending());
        // The retry returns at once, without running anything itself.
        let retry = {
            let m = Rc::clone(&m);
            let pass = make_pass();
            w.run(async move { m.request(pass).await })
        };
        assert_eq!(retry, Ok(Requested::Queued));
        assert!(m.is_pending());
        assert_eq!(count.get(), 1);
        assert_eq!(w.run(first), Ok(Requested::Ran { passes: 2 }));
        assert_eq!(count.get(), 2);
        assert_eq!(max_running.get(), 1);
    }

    #[test]
    fn request_after_a_run_ended_runs_again() {
        let (mut w, env, m) = setup();
        let count = Rc::new(Cell::new(0));
        for _ in 0..2 {
            let m = Rc::clone(&m);
            let pass = counting_pass(&env, &count);
            assert_eq!(
                w.run(async move { m.request(pass).await }),
                Ok(Requested::Ran { passes: 1 })
            );
        }
        assert_eq!(count.get(), 2);
    }
}
