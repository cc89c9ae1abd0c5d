//! Clocks. The *true* clock is the simulation's start instant plus virtual
//! time; each node reads it through its own [`NodeClock`], which the fault
//! plan may skew, drift or jump (see `crate::world::faults`).
//!
//! Modelled: a fixed offset (initial skew plus jumps), and a rate error in
//! parts per million accumulated since the run started. Not modelled: NTP
//! slewing back towards true time, or leap seconds. A day rollover in the
//! middle of a copy comes from the scenario's start time plus these
//! offsets.

use std::time::Duration;

use shardboot::types::Timestamp;

use crate::engine::executor;
use crate::engine::time::VirtualTime;

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

/// One node's clock: true time, plus an offset, plus a drift. The default
/// is a perfect clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    /// Fixed offset from true time in milliseconds (skew, jumps and any
    /// drift accumulated before the drift stopped).
    offset_ms: i64,
    /// Rate error in parts per million (positive: the clock runs fast).
    drift_ppm: i64,
    /// Virtual time from which the current drift accumulates.
    drift_since: VirtualTime,
}

impl NodeClock {
    /// A clock off by `skew_ms` at virtual time zero and drifting by
    /// `drift_ppm`.
    pub fn new(skew_ms: i64, drift_ppm: i64) -> NodeClock {
        NodeClock {
            offset_ms: skew_ms,
            drift_ppm,
            drift_since: VirtualTime::ZERO,
        }
    }

    /// How far ahead of true time (negative: behind) the clock is at `at`,
    /// in milliseconds.
    pub fn offset_ms(&self, at: VirtualTime) -> i64 {
        let elapsed_ms = i128::from(at.saturating_since(self.drift_since).as_millis() as u64);
        let drift = elapsed_ms * i128::from(self.drift_ppm) / 1_000_000;
        self.offset_ms
            .saturating_add(i64::try_from(drift).unwrap_or(i64::MAX))
    }

    /// The node's reading of `truth` now.
    pub fn read(&self, truth: &TrueClock) -> Timestamp {
        let t = truth.now();
        let off = self.offset_ms(executor::now());
        Timestamp(t.0.saturating_add_signed(off))
    }

    /// Move the clock forward (or back) by `by`.
    pub fn jump(&mut self, forward: bool, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms = if forward {
            self.offset_ms.saturating_add(ms)
        } else {
            self.offset_ms.saturating_sub(ms)
        };
    }

    /// Stop drifting at `at`, keeping the offset reached (the skew stays).
    pub fn stop_drift(&mut self, at: VirtualTime) {
        self.offset_ms = self.offset_ms(at);
        self.drift_ppm = 0;
        self.drift_since = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> VirtualTime {
        VirtualTime::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn drift_accumulates_and_stops_where_it_got_to() {
        let mut c = NodeClock::new(-500, 1000);
        assert_eq!(c.offset_ms(at(0)), -500);
        assert_eq!(c.offset_ms(at(1000)), 500);
        c.stop_drift(at(1000));
        assert_eq!(c.offset_ms(at(5000)), 500);
        c.jump(false, Duration::from_secs(7200));
        assert_eq!(c.offset_ms(at(5000)), 500 - 7_200_000);
    }
}
