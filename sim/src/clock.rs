//! Clocks. The *true* clock is the simulation's start instant plus virtual
//! time; each node reads it through its own clock, which later fault plans
//! may skew, drift or jump.

use shardboot::types::Timestamp;

use crate::executor;

/// Wall-clock reading of virtual time: `start` + elapsed virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrueClock {
    pub start: Timestamp,
}

impl TrueClock {
    pub fn now(&self) -> Timestamp {
        self.start.saturating_add(executor::now().elapsed())
    }
}
