//! How often each probe of [`shardboot::probe`] was hit in one run: the
//! trace recorder counts them as the events go by. What a swarm makes of
//! them (the catalogue, seeds per probe) is [`crate::check::coverage`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use shardboot::probe::Probe;

/// How often each probe was hit in one run; probes not hit are absent.
/// Serialized as a map from probe name to hits, in catalogue order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeHits(BTreeMap<Probe, u64>);

impl ProbeHits {
    /// One more hit of `probe`.
    pub fn hit(&mut self, probe: Probe) {
        *self.0.entry(probe).or_default() += 1;
    }

    pub fn reached(&self, probe: Probe) -> bool {
        self.0.contains_key(&probe)
    }

    /// The probes reached, in catalogue order, with their hits.
    pub fn iter(&self) -> impl Iterator<Item = (Probe, u64)> + '_ {
        self.0.iter().map(|(p, n)| (*p, *n))
    }

    /// The names of the probes reached, in catalogue order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.keys().map(|p| p.name()).collect()
    }
}

impl Serialize for ProbeHits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (p, n) in self.iter() {
            map.serialize_entry(p.name(), &n)?;
        }
        map.end()
    }
}

/// `copy_fell_over x3, session_expired x1`, or `none`.
impl fmt::Display for ProbeHits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, (p, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p} x{n}")?;
        }
        Ok(())
    }
}
