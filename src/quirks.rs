//! Upstream behaviours (docs/MODEL.md §6) as switches. Every quirk is **off**
//! by default, which gives the fixed behaviour described on its variant;
//! turning one on reproduces upstream so a scenario can show what it breaks.

use std::fmt;
use std::str::FromStr;

/// One upstream quirk. The doc of each variant says what upstream does and,
/// in brackets, what the port does when the switch is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Quirk {
    /// Source shuffle seeded by the clock in whole seconds
    /// [seeded from the host's RNG].
    Q1,
    /// No fall-over after a copy failure: only connect/health errors move on
    /// to the next source [try the next source, with a fresh session].
    Q2,
    /// The copy goes on after keep-alive loss, and a swept session's bound
    /// stream is never ended [keep-alive loss aborts the copy; the server
    /// ends the stream of a swept session].
    Q3,
    /// Metadata written before any data [data first, synced; metadata last].
    Q4,
    /// Copy workers share one result cell, so one worker's success can hide
    /// another's exhausted retries [each result kept; any failure fails].
    Q5,
    /// Session uniqueness checked and inserted in two critical sections \[one\].
    Q6,
    /// A failed or broken session lingers until `acquire_token` sweeps it
    /// [the client ends its session on failure; any stream end removes it;
    /// expired sessions are swept on every request].
    Q7,
    /// Metadata assembled from separate reads while jobs may run between
    /// them [one consistent read].
    Q8,
    /// A granted token reserves nothing and release is a no-op [a granted
    /// token blocks new sessions until released; jobs publish the new version
    /// before deleting the old].
    Q9,
    /// A retried copy reuses the failed attempt's partial state: no purge,
    /// fact files reopened without truncation [each attempt starts clean:
    /// purge, write to temporary names, rename when synced].
    Q10,
    /// When a host leaves, the peer source closes whichever connection the
    /// loop variable holds [close the peer that left].
    Q11,
    /// No `Available`/`Leaving` source is taken as a brand-new placement and
    /// the copy is skipped [skip only when every replica is `Initializing`;
    /// otherwise fail and retry].
    Q12,
    /// Availability checks fact tables only [dimension tables must be
    /// `Bootstrapped` too].
    Q13,
    /// No automatic retry of a failed bootstrap [retry with capped backoff].
    Q14,
}

impl Quirk {
    pub const ALL: [Quirk; 14] = [
        Quirk::Q1,
        Quirk::Q2,
        Quirk::Q3,
        Quirk::Q4,
        Quirk::Q5,
        Quirk::Q6,
        Quirk::Q7,
        Quirk::Q8,
        Quirk::Q9,
        Quirk::Q10,
        Quirk::Q11,
        Quirk::Q12,
        Quirk::Q13,
        Quirk::Q14,
    ];

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Q{}", *self as u16 + 1)
    }
}

/// A quirk name that is not `Q1`..`Q14`.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown quirk {0:?}: expected one of Q1..Q14")]
pub struct UnknownQuirk(pub String);

impl FromStr for Quirk {
    type Err = UnknownQuirk;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quirk::ALL
            .into_iter()
            .find(|q| q.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownQuirk(s.to_string()))
    }
}

/// The set of quirks switched on. Default: none (fixed behaviour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quirks(u16);

impl Quirks {
    pub fn on(self, q: Quirk) -> bool {
        self.0 & q.bit() != 0
    }

    pub fn with(self, q: Quirk) -> Quirks {
        Quirks(self.0 | q.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = Quirk> {
        Quirk::ALL.into_iter().filter(move |q| self.on(*q))
    }
}

impl FromIterator<Quirk> for Quirks {
    fn from_iter<I: IntoIterator<Item = Quirk>>(iter: I) -> Self {
        iter.into_iter().fold(Quirks::default(), Quirks::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirk_names_round_trip() {
        for q in Quirk::ALL {
            assert_eq!(q.to_string().parse::<Quirk>(), Ok(q));
        }
        assert_eq!("q14".parse::<Quirk>(), Ok(Quirk::Q14));
        assert!("Q15".parse::<Quirk>().is_err());
    }

    #[test]
    fn quirk_set_holds_exactly_what_was_added() {
        let set: Quirks = [Quirk::Q2, Quirk::Q9].into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Quirk::Q2, Quirk::Q9]);
        assert!(!set.on(Quirk::Q1));
    }
}
