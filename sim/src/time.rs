//! Virtual time: nanoseconds since the start of a simulation. It advances only
//! when the executor has nothing ready to run and jumps to the next timer.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// An instant of virtual time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtualTime(u64);

impl VirtualTime {
    pub const ZERO: VirtualTime = VirtualTime(0);
    pub const MAX: VirtualTime = VirtualTime(u64::MAX);

    pub fn from_nanos(n: u64) -> VirtualTime {
        VirtualTime(n)
    }

    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the start of the simulation.
    pub fn elapsed(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    pub fn saturating_since(self, earlier: VirtualTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for VirtualTime {
    type Output = VirtualTime;
    fn add(self, d: Duration) -> VirtualTime {
        VirtualTime(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub for VirtualTime {
    type Output = Duration;
    fn sub(self, rhs: VirtualTime) -> Duration {
        self.saturating_since(rhs)
    }
}

/// `hh:mm:ss.mmm` since the start, as traces and reports print it.
impl fmt::Display for VirtualTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 / 1_000_000;
        let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        write!(f, "{h:02}:{m:02}:{s:02}.{ms:03}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_clock_time() {
        let t = VirtualTime::ZERO + Duration::from_millis(3_723_004);
        assert_eq!(t.to_string(), "01:02:03.004");
    }
}
