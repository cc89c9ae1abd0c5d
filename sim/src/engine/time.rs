//! Virtual time: nanoseconds since the start of a simulation. It advances only
//! when the executor has nothing ready to run and jumps to the next timer.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// An instant of virtual time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtualTime(u64);

impl VirtualTime {
    /// The start of the simulation.
    pub const ZERO: VirtualTime = VirtualTime(0);
    /// Later than any instant a run reaches.
    pub const MAX: VirtualTime = VirtualTime(u64::MAX);

    /// `n` nanoseconds after the start.
    pub fn from_nanos(n: u64) -> VirtualTime {
        VirtualTime(n)
    }

    /// Nanoseconds since the start.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the start of the simulation.
    pub fn elapsed(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Time since `earlier`, or zero if `earlier` is later.
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
        let mut s = String::with_capacity(12);
        self.push_clock(&mut s);
        f.write_str(&s)
    }
}

impl VirtualTime {
    /// Appends the `hh:mm:ss.mmm` form to `out` without the formatting
    /// machinery: every trace line starts with it (see `crate::engine::trace`).
    pub fn push_clock(self, out: &mut String) {
        let ms = self.0 / 1_000_000;
        push_decimal(out, ms / 3_600_000, 2);
        // The fixed-width rest in one copy.
        let (min, sec, milli) = (ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let digit = |v: u64| b'0' + (v % 10) as u8;
        let rest = [
            b':',
            digit(min / 10),
            digit(min),
            b':',
            digit(sec / 10),
            digit(sec),
            b'.',
            digit(milli / 100),
            digit(milli / 10),
            digit(milli),
        ];
        out.push_str(std::str::from_utf8(&rest).unwrap_or_default());
    }
}

/// Appends `v` in decimal, zero-padded to at least `width` digits.
pub fn push_decimal(out: &mut String, mut v: u64, width: usize) {
    const MAX: usize = 20;
    let mut digits = [b'0'; MAX];
    let mut start = MAX;
    loop {
        start -= 1;
        digits[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in MAX..width {
        out.push('0');
    }
    // The padding zeros are already in `digits`; ASCII, so no UTF-8
    // check is needed to append them as chars.
    let start = start.min(MAX.saturating_sub(width));
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_clock_time() {
        let t = VirtualTime::ZERO + Duration::from_millis(3_723_004);
        assert_eq!(t.to_string(), "01:02:03.004");
        let long = VirtualTime::ZERO + Duration::from_secs(100 * 3600);
        assert_eq!(long.to_string(), "100:00:00.000");
        let mut s = String::new();
        push_decimal(&mut s, 0, 0);
        push_decimal(&mut s, 1234, 2);
        push_decimal(&mut s, u64::MAX, 3);
        assert_eq!(s, format!("01234{}", u64::MAX));
        let mut wide = String::new();
        push_decimal(&mut wide, 42, 23);
        push_decimal(&mut wide, 7, 3);
        assert_eq!(wide, format!("{:023}{:03}", 42, 7));
    }
}
