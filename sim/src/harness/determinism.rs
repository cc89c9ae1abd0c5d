//! The determinism self-check: run the same scenario and seed twice in one
//! process and compare the traces event by event. On a mismatch, report the
//! first trace index where the runs diverge, with both events side by side
//! (what madsim's `MADSIM_TEST_CHECK_DETERMINISM` does with RNG calls).

use std::fmt;

use crate::engine::trace::{Keep, TraceEvent};
use crate::harness::run::{Report, RunOptions, run};
use crate::scenario::format::Scenario;

/// Where two runs of the same seed first disagreed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The seed both runs used.
    pub seed: u64,
    /// Index of the first differing event.
    pub index: u64,
    /// The first run's event there (`None`: the run had already ended).
    pub first: Option<String>,
    /// The second run's event there (`None`: the run had already ended).
    pub second: Option<String>,
    /// The events just before, common to both runs.
    pub context: Vec<String>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "nondeterminism: seed {} diverges at trace #{}",
            self.seed, self.index
        )?;
        for line in &self.context {
            writeln!(f, "  both:   {line}")?;
        }
        let show = |e: &Option<String>| e.clone().unwrap_or_else(|| "<end of trace>".into());
        writeln!(f, "  run 1:  {}", show(&self.first))?;
        write!(f, "  run 2:  {}", show(&self.second))
    }
}

/// How many common events to show before the divergence.
const CONTEXT: usize = 5;

/// Run `scenario` with `opts.seed` twice; `Ok` with the first run's report
/// when both traces are identical.
pub fn check(scenario: &Scenario, opts: RunOptions) -> Result<Report, Box<Divergence>> {
    let full = RunOptions {
        keep: Keep::All,
        ..opts
    };
    let a = run(scenario, full.clone());
    let b = run(scenario, full);
    match first_divergence(
        a.trace.events(),
        b.trace.events(),
        a.trace.total(),
        b.trace.total(),
    ) {
        None => Ok(a),
        Some((index, first, second, context)) => Err(Box::new(Divergence {
            seed: opts.seed,
            index,
            first,
            second,
            context,
        })),
    }
}

type Diff = (u64, Option<String>, Option<String>, Vec<String>);

fn first_divergence<'a>(
    a: impl Iterator<Item = &'a TraceEvent>,
    b: impl Iterator<Item = &'a TraceEvent>,
    total_a: u64,
    total_b: u64,
) -> Option<Diff> {
    let mut a = a.map(ToString::to_string);
    let mut b = b.map(ToString::to_string);
    let mut recent: Vec<String> = Vec::new();
    let mut index = 0u64;
    loop {
        match (a.next(), b.next()) {
            (None, None) if total_a == total_b => return None,
            (x, y) if x != y || (x.is_none() && total_a != total_b) => {
                return Some((index, x, y, recent));
            }
            (Some(x), _) => {
                recent.push(x);
                if recent.len() > CONTEXT {
                    recent.remove(0);
                }
            }
            (None, _) => return None,
        }
        index += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, name: &str) -> TraceEvent {
        let mut event = TraceEvent::new(name, &[]);
        event.index = index;
        event
    }

    #[test]
    fn reports_the_first_differing_event_with_context() {
        let a = [ev(0, "x"), ev(1, "y"), ev(2, "z")];
        let b = [ev(0, "x"), ev(1, "y"), ev(2, "w")];
        let (index, first, second, context) =
            first_divergence(a.iter(), b.iter(), 3, 3).expect("diverges");
        assert_eq!(index, 2);
        assert!(first.unwrap().ends_with("t z"));
        assert!(second.unwrap().ends_with("t w"));
        assert_eq!(context.len(), 2);
    }

    #[test]
    fn a_shorter_run_diverges_where_it_ends() {
        let a = [ev(0, "x")];
        let b = [ev(0, "x"), ev(1, "y")];
        let (index, first, second, _) =
            first_divergence(a.iter(), b.iter(), 1, 2).expect("diverges");
        assert_eq!((index, first), (1, None));
        assert!(second.is_some());
        assert!(first_divergence(a.iter(), a.iter(), 1, 1).is_none());
    }
}
