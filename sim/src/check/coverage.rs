//! Coverage of the probes of [`shardboot::probe`]: which probes one run
//! reached ([`ProbeHits`], counted by the trace recorder, in
//! [`crate::engine::probe_hits`]) and, over a
//! swarm, how many seeds reached each probe of the catalogue
//! ([`Coverage`]). A probe no seed reached names a state the swarm never
//! tested: the swarm warns about it, and `--require-coverage` fails.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use shardboot::probe::Probe;

pub use crate::engine::probe_hits::ProbeHits;

/// One probe of the catalogue over a swarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeCoverage {
    pub probe: &'static str,
    /// What reaching it means.
    pub what: &'static str,
    /// Seeds whose run reached it.
    pub seeds: u64,
}

/// Per probe of the whole catalogue, how many seeds of a swarm reached it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Seeds counted.
    pub seeds: u64,
    /// Every probe of the catalogue, in catalogue order.
    pub probes: Vec<ProbeCoverage>,
    /// The probes no seed reached, in catalogue order.
    pub unreached: Vec<&'static str>,
}

impl Coverage {
    /// The coverage of these runs (one `ProbeHits` per seed).
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a ProbeHits>) -> Coverage {
        let mut seeds = 0;
        let mut reached: BTreeMap<Probe, u64> = BTreeMap::new();
        for run in runs {
            seeds += 1;
            for (p, _) in run.iter() {
                *reached.entry(p).or_default() += 1;
            }
        }
        let probes: Vec<ProbeCoverage> = Probe::ALL
            .iter()
            .map(|p| ProbeCoverage {
                probe: p.name(),
                what: p.what(),
                seeds: reached.get(p).copied().unwrap_or(0),
            })
            .collect();
        let unreached = probes
            .iter()
            .filter(|p| p.seeds == 0)
            .map(|p| p.probe)
            .collect();
        Coverage {
            seeds,
            probes,
            unreached,
        }
    }

    /// Whether every probe was reached by some seed.
    pub fn complete(&self) -> bool {
        self.unreached.is_empty()
    }
}

/// A header, one line per probe with its seed count, and a warning naming
/// the unreached probes, if any.
impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.probes.iter().map(|p| p.probe.len()).max().unwrap_or(0);
        write!(
            f,
            "  coverage: {} of {} probes reached (seeds reaching each):",
            self.probes.len() - self.unreached.len(),
            self.probes.len()
        )?;
        for p in &self.probes {
            write!(f, "\n    {:<width$} {:>6}", p.probe, p.seeds)?;
            if p.seeds == 0 {
                f.write_str("  UNREACHED")?;
            }
        }
        if !self.complete() {
            write!(
                f,
                "\n  warning: {} probe(s) reached by no seed: {}",
                self.unreached.len(),
                self.unreached.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(probes: &[Probe]) -> ProbeHits {
        let mut h = ProbeHits::default();
        for p in probes {
            h.hit(*p);
        }
        h
    }

    #[test]
    fn coverage_counts_seeds_not_hits_and_lists_the_unreached() {
        let runs = [
            hits(&[
                Probe::TokenRefused,
                Probe::TokenRefused,
                Probe::SessionExpired,
            ]),
            hits(&[Probe::TokenRefused]),
            hits(&[]),
        ];
        let c = Coverage::of(&runs);
        assert_eq!(c.seeds, 3);
        let seeds = |name| c.probes.iter().find(|p| p.probe == name).unwrap().seeds;
        assert_eq!(seeds("token_refused"), 2);
        assert_eq!(seeds("session_expired"), 1);
        assert_eq!(c.probes.len(), Probe::ALL.len());
        assert_eq!(c.unreached.len(), Probe::ALL.len() - 2);
        assert!(!c.unreached.contains(&"token_refused"));
        assert!(!c.complete());
        let text = c.to_string();
        assert!(text.contains(&format!("2 of {} probes reached", Probe::ALL.len())));
        assert!(text.contains("warning:"));
        assert!(text.contains("copy_fell_over"));

        let all: Vec<ProbeHits> = vec![hits(Probe::ALL)];
        let full = Coverage::of(&all);
        assert!(full.complete());
        assert!(!full.to_string().contains("warning"));
    }

    #[test]
    fn hits_serialize_by_name_in_catalogue_order() {
        let h = hits(&[
            Probe::SessionExpired,
            Probe::CopyFellOver,
            Probe::SessionExpired,
        ]);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"copy_fell_over":1,"session_expired":2}"#
        );
        assert_eq!(h.to_string(), "copy_fell_over x1, session_expired x2");
        assert_eq!(ProbeHits::default().to_string(), "none");
    }
}
