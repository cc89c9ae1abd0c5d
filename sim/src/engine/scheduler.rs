//! Scheduling strategies: how the executor picks the next task among the
//! ready ones, and how that choice is named in scenario files, artifacts and
//! on the command line (`random`, `fifo`, `pct:3`, `pct:3:200000`).
//!
//! - **random**: uniformly at random, from the executor's seeded stream. Good
//!   at races that need a few fine interleavings; bad at ones that need one
//!   task to be kept off the processor for a long stretch (each step it is
//!   picked with probability 1/n, so a stretch of m steps is ~ (1-1/n)^m).
//! - **fifo**: wake-up order, the same schedule for every seed (debugging).
//! - **pct:D** (Burckhardt et al., "A Randomized Scheduler with Probabilistic
//!   Guarantees of Finding Bugs", ASPLOS 2010): every task gets a random
//!   priority when spawned, and the ready task with the highest priority
//!   always runs; at D−1 *change points*, drawn uniformly from steps
//!   `1..=K` before the run, the task that runs drops to priority `i` (the
//!   i-th change point), below every initial priority. A bug of depth D (D
//!   ordering constraints) among n tasks is hit with probability at least
//!   1/(n·K^(D−1)) per run, whatever the interleaving it needs — in
//!   particular one task held back for as long as others can run, which
//!   random scheduling almost never does.
//!
//! K, the number of steps the change points are spread over, should be the
//! number of scheduling steps a run makes: drawn beyond the end of the run
//! a change point never happens. `pct:D:K` gives it; `pct:D` leaves it to
//! the runner, which estimates it from the scenario's virtual duration
//! ([`crate::scenario::format::Scenario::estimated_steps`]), and records the value
//! it used in failure artifacts so that a replay (and a shrink, which cuts
//! the duration) keeps the same change points.
//!
//! Every draw comes from the executor's own `"scheduler"` stream: the same
//! seed and scheduler give the same run.
//!
//! A recorded list of decisions ([`crate::engine::schedule::Schedule`]) can replace
//! the strategy altogether: see [`Picker::replaying`].

use std::collections::VecDeque;
use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::rng::SimRng;
use crate::engine::schedule::{ReplayError, Schedule, TaskId};

/// How the next task is chosen among the ready ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheduler {
    /// Uniformly at random, from the executor's seeded stream.
    #[default]
    Random,
    /// In wake-up order: the same schedule for every seed (debugging).
    Fifo,
    /// Random priorities with change points (PCT).
    Pct(Pct),
}

/// The parameters of a PCT scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pct {
    /// Bug depth D: D−1 priority change points.
    pub depth: NonZeroU32,
    /// K, the steps the change points are drawn from (`1..=K`); `None`: the
    /// runner's estimate for the scenario.
    pub steps: Option<NonZeroU64>,
}

impl Scheduler {
    /// PCT of depth `depth` (at least 1), K left to the runner.
    pub fn pct(depth: u32) -> Scheduler {
        Scheduler::Pct(Pct {
            depth: NonZeroU32::new(depth).unwrap_or(NonZeroU32::MIN),
            steps: None,
        })
    }

    /// This scheduler with K set to `steps` where it is left open.
    pub fn with_estimated_steps(self, steps: u64) -> Scheduler {
        match self {
            Scheduler::Pct(Pct { depth, steps: None }) => Scheduler::Pct(Pct {
                depth,
                steps: Some(NonZeroU64::new(steps).unwrap_or(NonZeroU64::MIN)),
            }),
            other => other,
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheduler::Random => f.write_str("random"),
            Scheduler::Fifo => f.write_str("fifo"),
            Scheduler::Pct(Pct { depth, steps: None }) => write!(f, "pct:{depth}"),
            Scheduler::Pct(Pct {
                depth,
                steps: Some(k),
            }) => write!(f, "pct:{depth}:{k}"),
        }
    }
}

/// A scheduler name that is not one of the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scheduler `{0}` (expected \"random\", \"fifo\", \"pct:D\" or \"pct:D:K\": D ≥ 1 \
     the bug depth, K ≥ 1 the steps the change points are drawn from)"
)]
pub struct UnknownScheduler(pub String);

impl FromStr for Scheduler {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Scheduler, UnknownScheduler> {
        let bad = || UnknownScheduler(s.to_string());
        match s {
            "random" => return Ok(Scheduler::Random),
            "fifo" => return Ok(Scheduler::Fifo),
            _ => {}
        }
        let mut parts = s.strip_prefix("pct:").ok_or_else(bad)?.split(':');
        let depth = parts.next().and_then(|d| d.parse().ok()).ok_or_else(bad)?;
        let steps = match parts.next() {
            None => None,
            Some(k) => Some(k.parse().map_err(|_| bad())?),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Scheduler::Pct(Pct { depth, steps }))
    }
}

/// Scenario files name a scheduler as its text (`scheduler = "pct:3"`).
impl Serialize for Scheduler {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scheduler {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scheduler, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The scheduler's state during a run: picks the next ready task and, when
/// asked to, records every pick.
pub(crate) struct Picker {
    kind: Kind,
}

/// PCT, replay and recording are boxed: the tag is cheap to test on the
/// path of every step of the common random and FIFO runs, which look at
/// nothing else. The random pick's stream stays inline (the large variant)
/// so that it costs no pointer chase either.
#[allow(clippy::large_enum_variant)]
enum Kind {
    Random(SimRng),
    Fifo,
    Pct(Box<PctState>),
    Replay(Box<ReplayState>),
    /// Another kind, with every pick it makes logged.
    Recording(Box<(Kind, Vec<TaskId>)>),
}

impl Picker {
    /// A picker for `scheduler`, drawing from `rng`.
    pub(crate) fn new(scheduler: Scheduler, rng: SimRng) -> Picker {
        let kind = match scheduler {
            Scheduler::Random => Kind::Random(rng),
            Scheduler::Fifo => Kind::Fifo,
            Scheduler::Pct(pct) => Kind::Pct(Box::new(PctState::new(pct, rng))),
        };
        Picker { kind }
    }

    /// A picker that re-makes the decisions of `schedule`, in order.
    pub(crate) fn replaying(schedule: Schedule) -> Picker {
        Picker {
            kind: Kind::Replay(Box::new(ReplayState {
                schedule,
                next: 0,
                failed: None,
            })),
        }
    }

    /// Log every pick from now on (once; later calls change nothing).
    pub(crate) fn record(&mut self) {
        if !matches!(self.kind, Kind::Recording(_)) {
            let inner = std::mem::replace(&mut self.kind, Kind::Fifo);
            self.kind = Kind::Recording(Box::new((inner, Vec::new())));
        }
    }

    pub(crate) fn recorded(&self) -> Option<Schedule> {
        match &self.kind {
            Kind::Recording(r) => Some(Schedule::new(r.1.clone())),
            _ => None,
        }
    }

    /// A task was spawned into `slot`.
    pub(crate) fn spawned(&mut self, slot: u32) {
        self.kind.spawned(slot);
    }

    /// Take the next task off `ready` (slot indices); `task` names the task
    /// of a slot. `None` when nothing is ready, or when a replayed schedule
    /// does not fit ([`Picker::failure`] says why).
    #[inline]
    pub(crate) fn pick(
        &mut self,
        ready: &mut VecDeque<u32>,
        task: impl Fn(u32) -> TaskId,
    ) -> Option<u32> {
        self.kind.pick(ready, task)
    }

    /// Why a replay could not make its next decision, once [`Picker::pick`]
    /// returned `None` for it.
    pub(crate) fn failure(&self) -> Option<&ReplayError> {
        self.kind.failure()
    }
}

impl Kind {
    fn spawned(&mut self, slot: u32) {
        match self {
            Kind::Pct(pct) => pct.spawned(slot),
            Kind::Recording(r) => r.0.spawned(slot),
            _ => {}
        }
    }

    /// Small and inlined: on the path of every step.
    #[inline]
    fn pick(&mut self, ready: &mut VecDeque<u32>, task: impl Fn(u32) -> TaskId) -> Option<u32> {
        match self {
            Kind::Fifo => ready.pop_front(),
            Kind::Random(rng) => {
                let n = ready.len();
                if n == 0 {
                    return None;
                }
                let i = rng.below(n as u64) as usize;
                ready.swap_remove_back(i)
            }
            Kind::Pct(pct) => pct.pick(ready),
            Kind::Replay(replay) => replay.pick(ready, task),
            Kind::Recording(r) => pick_and_log(r, ready, &task),
        }
    }

    fn failure(&self) -> Option<&ReplayError> {
        match self {
            Kind::Replay(replay) => replay.failed.as_ref(),
            Kind::Recording(r) => r.0.failure(),
            _ => None,
        }
    }
}

/// The recording kind's pick: the inner kind's, logged.
#[inline(never)]
fn pick_and_log(
    recording: &mut (Kind, Vec<TaskId>),
    ready: &mut VecDeque<u32>,
    task: &dyn Fn(u32) -> TaskId,
) -> Option<u32> {
    let picked = recording.0.pick(ready, task);
    if let Some(slot) = picked {
        recording.1.push(task(slot));
    }
    picked
}

/// PCT during a run.
struct PctState {
    rng: SimRng,
    depth: u64,
    /// Priority of the task in each slot (set when it is spawned).
    priority: Vec<u64>,
    /// Change points not reached yet: (step, new priority), latest first.
    changes: Vec<(u64, u64)>,
    /// Picks made so far.
    step: u64,
}

/// K when neither the scheduler nor the runner gives one (a bare executor,
/// e.g. the demo): about the steps of a short scenario run.
const DEFAULT_STEPS: u64 = 100_000;

impl PctState {
    fn new(pct: Pct, mut rng: SimRng) -> PctState {
        let depth = u64::from(pct.depth.get());
        let k = pct.steps.map_or(DEFAULT_STEPS, NonZeroU64::get);
        // The i-th change point (1-based) lowers to priority i.
        let mut changes: Vec<(u64, u64)> = (1..depth).map(|i| (rng.between(1, k), i)).collect();
        changes.sort_by(|a, b| b.cmp(a));
        PctState {
            rng,
            depth,
            priority: Vec::new(),
            changes,
            step: 0,
        }
    }

    /// A random priority in `depth..`: above every change point's.
    fn spawned(&mut self, slot: u32) {
        let slot = slot as usize;
        if self.priority.len() <= slot {
            self.priority.resize(slot + 1, 0);
        }
        self.priority[slot] = self.depth + self.rng.below(u64::MAX - self.depth);
    }

    /// The ready task of highest priority (the first in the queue on a
    /// tie: 64-bit draws all but never tie, and the queue order is
    /// deterministic). At a change point it drops to that point's priority.
    #[inline(never)]
    fn pick(&mut self, ready: &mut VecDeque<u32>) -> Option<u32> {
        let (at, _) = ready
            .iter()
            .enumerate()
            .max_by_key(|&(i, slot)| (self.priority[*slot as usize], std::cmp::Reverse(i)))?;
        let slot = ready.swap_remove_back(at)?;
        self.step += 1;
        while let Some(&(step, lowered)) = self.changes.last()
            && step == self.step
        {
            self.priority[slot as usize] = lowered;
            self.changes.pop();
        }
        Some(slot)
    }
}

/// A replay during a run.
struct ReplayState {
    schedule: Schedule,
    /// Index of the next decision.
    next: usize,
    /// Why the last pick could not be made.
    failed: Option<ReplayError>,
}

impl ReplayState {
    /// The ready slot holding the task of the next decision. A decision is
    /// taken only when something is ready: the recorded run advanced time
    /// exactly when its ready queue was empty, and so does the replay.
    #[inline(never)]
    fn pick(&mut self, ready: &mut VecDeque<u32>, task: impl Fn(u32) -> TaskId) -> Option<u32> {
        match self.try_pick(ready, task) {
            Ok(picked) => picked,
            Err(e) => {
                self.failed = Some(e);
                None
            }
        }
    }

    fn try_pick(
        &mut self,
        ready: &mut VecDeque<u32>,
        task: impl Fn(u32) -> TaskId,
    ) -> Result<Option<u32>, ReplayError> {
        if ready.is_empty() {
            return Ok(None);
        }
        let ready_tasks = || ready.iter().map(|&s| task(s)).collect();
        let Some(&wanted) = self.schedule.decisions().get(self.next) else {
            return Err(ReplayError::Exhausted {
                decisions: self.next,
                ready: ready_tasks(),
            });
        };
        let Some(at) = ready.iter().position(|&s| task(s) == wanted) else {
            return Err(ReplayError::NotReady {
                decision: self.next,
                task: wanted,
                ready: ready_tasks(),
            });
        };
        self.next += 1;
        Ok(ready.swap_remove_back(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_ones_say_what_is_accepted() {
        for name in ["random", "fifo", "pct:1", "pct:3", "pct:3:200000"] {
            let s: Scheduler = name.parse().unwrap();
            assert_eq!(s.to_string(), name);
        }
        assert_eq!("pct:3".parse(), Ok(Scheduler::pct(3)));
        for bad in [
            "",
            "pct",
            "pct:",
            "pct:0",
            "pct:x",
            "pct:2:0",
            "pct:2:3:4",
            "lifo",
        ] {
            let err = bad.parse::<Scheduler>().unwrap_err();
            assert!(err.to_string().contains("\"pct:D\""), "{bad}: {err}");
        }
    }

    #[test]
    fn the_runner_estimate_fills_only_an_open_k() {
        assert_eq!(
            Scheduler::pct(2).with_estimated_steps(500).to_string(),
            "pct:2:500"
        );
        let fixed: Scheduler = "pct:2:7".parse().unwrap();
        assert_eq!(fixed.with_estimated_steps(500), fixed);
        assert_eq!(
            Scheduler::Random.with_estimated_steps(500),
            Scheduler::Random
        );
    }
}
