//! BUGGIFY in the simulator (after FoundationDB): the world's answer to
//! [`shardboot::env::Env::buggify`].
//!
//! With BUGGIFY enabled, each named point is *activated* for the whole run
//! with probability `activate`, decided the first time it is hit from its
//! own stream `fork("buggify").fork("point/<name>")` — so which points are
//! active depends on the seed and the name only, not on the order they are
//! reached. An active point then *fires* with probability `fire` each time it
//! is hit, drawn from `fork("buggify").fork("fires")`. Activation is traced
//! (`sim::buggify`, `buggify_point_activated`) and so is every firing
//! (`sim::fault`, `kind = "buggify"`, `fault_injected`). Disabled (the
//! default), no point ever fires and nothing is drawn.
//!
//! Configured by the scenario's `buggify` key: `buggify = true`, or a table
//! `[buggify]` with `enabled`, `activate` and `fire`.
//!
//! The liveness phase switches BUGGIFY off with every other fault
//! ([`Buggify::heal`]): a point keeps the code correct, but one that fires
//! half the time on every copy attempt makes a copy of many vector parties
//! fail nearly always, and "converges once faults stop" must mean they stop.
//! Not modelled: per-point probabilities.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shardboot::types::NodeId;

use crate::engine::rng::{Ratio, SimRng};

/// The scenario's BUGGIFY settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuggifyConfig {
    /// Whether points may fire at all (default off).
    pub enabled: bool,
    /// Chance that a point is active for the run (default 1/4).
    pub activate: Ratio,
    /// Chance that an active point fires each time it is hit (default 1/4).
    pub fire: Ratio,
}

impl Default for BuggifyConfig {
    fn default() -> Self {
        BuggifyConfig {
            enabled: false,
            activate: Ratio::new(1, 4),
            fire: Ratio::new(1, 4),
        }
    }
}

impl BuggifyConfig {
    /// Whether this is the default (nothing to write in a scenario).
    pub fn is_default(&self) -> bool {
        *self == BuggifyConfig::default()
    }

    /// Both odds must be proper fractions.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in [("activate", self.activate), ("fire", self.fire)] {
            if r.den == 0 || r.num > r.den {
                return Err(format!(
                    "`{name}` must be a probability num/den with 0 <= num <= den and den > 0"
                ));
            }
        }
        Ok(())
    }

    /// The shorthand form: `buggify = true` is the default odds, enabled.
    pub fn on(enabled: bool) -> BuggifyConfig {
        BuggifyConfig {
            enabled,
            ..BuggifyConfig::default()
        }
    }
}

/// Deserialize `buggify = true|false` or a `[buggify]` table.
pub fn deserialize_config<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BuggifyConfig, D::Error> {
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        toml::Value::Boolean(b) => Ok(BuggifyConfig::on(b)),
        v @ toml::Value::Table(_) => {
            BuggifyConfig::deserialize(v).map_err(|e| D::Error::custom(e.message()))
        }
        other => Err(D::Error::custom(format!(
            "`buggify` must be true, false or a table, not {}",
            other.type_str()
        ))),
    }
}

/// The BUGGIFY state of one run (a field of the world).
pub struct Buggify {
    config: RefCell<BuggifyConfig>,
    base: SimRng,
    fires: RefCell<SimRng>,
    /// Each point hit so far, and whether it is active.
    points: RefCell<BTreeMap<&'static str, bool>>,
}

impl Buggify {
    /// Disabled; `rng` is the world's root stream.
    pub fn new(rng: &SimRng) -> Buggify {
        let base = rng.fork("buggify");
        Buggify {
            config: RefCell::new(BuggifyConfig::default()),
            fires: RefCell::new(base.fork("fires")),
            base,
            points: RefCell::new(BTreeMap::new()),
        }
    }

    /// Set the odds (before the run starts).
    pub fn configure(&self, config: BuggifyConfig) {
        *self.config.borrow_mut() = config;
    }

    /// No point fires from now on (the liveness phase).
    pub fn heal(&self) {
        self.config.borrow_mut().enabled = false;
    }

    /// Whether `point`, hit on `node`, fires now.
    pub fn hit(&self, point: &'static str, node: NodeId) -> bool {
        let config = *self.config.borrow();
        if !config.enabled {
            return false;
        }
        let active = *self.points.borrow_mut().entry(point).or_insert_with(|| {
            let active = self
                .base
                .fork(&format!("point/{point}"))
                .chance(config.activate);
            if active {
                tracing::info!(target: "sim::buggify", point, "buggify_point_activated");
            }
            active
        });
        let fires = active && self.fires.borrow_mut().chance(config.fire);
        if fires {
            tracing::info!(target: "sim::fault", kind = "buggify", point, node = %node,
                "fault_injected");
        }
        fires
    }

    /// The points hit so far that are active for this run, by name.
    pub fn active_points(&self) -> Vec<&'static str> {
        self.points
            .borrow()
            .iter()
            .filter(|(_, active)| **active)
            .map(|(p, _)| *p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(b: &Buggify, point: &'static str, hits: usize) -> usize {
        (0..hits).filter(|_| b.hit(point, NodeId(1))).count()
    }

    #[test]
    fn disabled_never_fires() {
        let b = Buggify::new(&SimRng::new(1));
        assert_eq!(fired(&b, "p", 100), 0);
        assert!(b.active_points().is_empty());
    }

    #[test]
    fn activation_depends_on_seed_and_name_not_on_hit_order() {
        let active = |seed, order: &[&'static str]| {
            let b = Buggify::new(&SimRng::new(seed));
            b.configure(BuggifyConfig::on(true));
            for p in order {
                fired(&b, p, 3);
            }
            b.active_points()
        };
        let points = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let mut reversed = points;
        reversed.reverse();
        let mut differs = false;
        for seed in 0..20 {
            assert_eq!(active(seed, &points), active(seed, &reversed));
            differs |= active(seed, &points) != active(0, &points);
        }
        assert!(differs, "activation never depended on the seed");
    }

    #[test]
    fn an_active_point_fires_at_its_rate() {
        let b = Buggify::new(&SimRng::new(3));
        b.configure(BuggifyConfig {
            enabled: true,
            activate: Ratio::new(1, 1),
            fire: Ratio::new(1, 2),
        });
        let n = fired(&b, "p", 1000);
        assert!((400..600).contains(&n), "{n}");
        assert_eq!(b.active_points(), ["p"]);
    }

    #[test]
    fn config_reads_as_a_switch_or_a_table() {
        #[derive(Deserialize)]
        struct S {
            #[serde(deserialize_with = "deserialize_config")]
            buggify: BuggifyConfig,
        }
        let s: S = toml::from_str("buggify = true").unwrap();
        assert_eq!(s.buggify, BuggifyConfig::on(true));
        let s: S =
            toml::from_str("[buggify]\nenabled = true\nfire = { num = 1, den = 2 }").unwrap();
        assert_eq!(s.buggify.fire, Ratio::new(1, 2));
        assert_eq!(s.buggify.activate, Ratio::new(1, 4));
        let e = toml::from_str::<S>("buggify = 3")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("must be true, false or a table"), "{e}");
        let e = toml::from_str::<S>("[buggify]\nfires = true")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown field `fires`"), "{e}");
    }
}
