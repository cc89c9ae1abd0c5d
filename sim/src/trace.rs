//! The trace: every `tracing` event emitted during a run, stamped with the
//! virtual time and node of the task that emitted it, in canonical text form,
//! plus a blake3 **trace hash** over all of it.
//!
//! The hash covers every event, so two runs with the same seed must agree
//! byte for byte. Only the last `keep` events are stored (for failure
//! reports); with [`Keep::All`] every event is kept (determinism checks).
//! Wall time, thread ids, file/line and span ids never enter a line.
//!
//! Coverage probe events ([`shardboot::probe`]) are not part of the trace:
//! they are counted per probe ([`Trace::probes`]) and kept out of the hash,
//! so adding or moving a probe never changes a recorded run's hash.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use shardboot::probe::{self, Probe};
use shardboot::types::NodeId;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::coverage::ProbeHits;
use crate::executor;
use crate::time::{VirtualTime, push_decimal};

/// How many events a trace stores (the hash always covers all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    All,
    Last(usize),
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Position in the whole trace, from 0.
    pub index: u64,
    pub time: VirtualTime,
    pub node: Option<NodeId>,
    pub target: &'static str,
    pub level: tracing::Level,
    /// The event's message: a snake_case past-tense name.
    pub name: String,
    /// Structured fields in the order they were written.
    pub fields: Vec<(&'static str, String)>,
}

impl TraceEvent {
    /// The value of field `name`, if the event has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `time node target name k=v ...`: the canonical line the hash covers.
impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        self.push_line(&mut line);
        f.write_str(&line)
    }
}

impl TraceEvent {
    /// Appends the canonical line (see `Display`) to `out`. Written by hand
    /// because the hash covers every event of every run: building it with
    /// `write!` was a sixth of a whole simulation's time.
    fn push_line(&self, out: &mut String) {
        self.time.push_clock(out);
        out.push(' ');
        match self.node {
            Some(n) => {
                out.push('n');
                push_decimal(out, u64::from(n.0), 0);
                out.push(' ');
            }
            None => out.push_str("--  "),
        }
        out.push_str(self.target);
        out.push(' ');
        out.push_str(&self.name);
        for (k, v) in &self.fields {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }
}

/// The recorded trace of one run.
#[derive(Clone, Debug)]
pub struct Trace {
    keep: Keep,
    events: VecDeque<TraceEvent>,
    total: u64,
    hasher: blake3::Hasher,
    /// Events not yet taken by the observer (see [`Recorder::take_new`]).
    observe: bool,
    new: Vec<TraceEvent>,
    /// Coverage probes reached, with their hits (not in the hash).
    probes: ProbeHits,
    /// The canonical line being hashed, reused from event to event.
    line: String,
}

impl Trace {
    fn new(keep: Keep) -> Trace {
        Trace {
            keep,
            events: VecDeque::new(),
            total: 0,
            hasher: blake3::Hasher::new(),
            observe: false,
            new: Vec::new(),
            probes: ProbeHits::default(),
            line: String::new(),
        }
    }

    fn push(&mut self, event: TraceEvent) {
        self.line.clear();
        event.push_line(&mut self.line);
        self.line.push('\n');
        self.hasher.update(self.line.as_bytes());
        self.total += 1;
        if self.observe {
            // Kept by `retire` once the observer has seen it: no clone.
            self.new.push(event);
        } else {
            self.keep(event);
        }
    }

    /// Stores `event` among the last ones, as `keep` says.
    fn keep(&mut self, event: TraceEvent) {
        if let Keep::Last(n) = self.keep {
            if n == 0 {
                return;
            }
            if self.events.len() == n {
                self.events.pop_front();
            }
        }
        self.events.push_back(event);
    }

    /// The first 16 hex digits of the blake3 hash of every canonical line.
    pub fn hash(&self) -> String {
        self.hasher.finalize().to_hex()[..16].to_string()
    }

    /// The coverage probes the run reached, with their hits.
    pub fn probes(&self) -> &ProbeHits {
        &self.probes
    }

    /// How many events were emitted in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The stored events, oldest first (with any an observer has not
    /// taken yet).
    pub fn events(&self) -> impl Iterator<Item = &TraceEvent> {
        self.events.iter().chain(&self.new)
    }
}

/// Records the trace of one run. The simulation runs inside
/// [`Recorder::record`]; between slices the oracle takes the new events with
/// [`Recorder::take_new`].
pub struct Recorder {
    trace: Arc<Mutex<Trace>>,
}

impl Recorder {
    /// `observe`: also queue every event for [`Recorder::take_new`].
    pub fn new(keep: Keep, observe: bool) -> Recorder {
        let mut trace = Trace::new(keep);
        trace.observe = observe;
        Recorder {
            trace: Arc::new(Mutex::new(trace)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Trace> {
        self.trace.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `f` with this recorder installed on this thread only (parallel
    /// tests and swarm workers do not interleave).
    pub fn record<R>(&self, f: impl FnOnce() -> R) -> R {
        let layer = TraceLayer {
            trace: self.trace.clone(),
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, f)
    }

    /// Events recorded since the last call (only when observing). Hand
    /// them back with [`Recorder::retire`] once seen, so the trace keeps
    /// the last ones for reports.
    pub fn take_new(&self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.lock().new)
    }

    /// Store events taken with [`Recorder::take_new`] among the trace's
    /// last events. Call before taking the next ones.
    pub fn retire(&self, events: Vec<TraceEvent>) {
        let mut trace = self.lock();
        let skip = match trace.keep {
            Keep::Last(n) => events.len().saturating_sub(n),
            Keep::All => 0,
        };
        for event in events.into_iter().skip(skip) {
            trace.keep(event);
        }
    }

    /// How many events were recorded so far.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// The trace so far.
    pub fn trace(&self) -> Trace {
        let mut t = self.lock().clone();
        for event in std::mem::take(&mut t.new) {
            t.keep(event);
        }
        t
    }
}

/// Run `f` under a fresh recorder and return its trace.
pub fn record<R>(keep: Keep, f: impl FnOnce() -> R) -> (R, Trace) {
    let recorder = Recorder::new(keep, false);
    let out = recorder.record(f);
    (out, recorder.trace())
}

/// The `tracing` layer behind [`Recorder`]. It must be `Send + Sync` for
/// `tracing`, hence the mutex; it is only ever touched by one thread.
struct TraceLayer {
    trace: Arc<Mutex<Trace>>,
}

impl<S: Subscriber> Layer<S> for TraceLayer {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() == probe::TARGET {
            let mut visitor = ProbeVisitor(None);
            event.record(&mut visitor);
            if let Some(p) = visitor.0 {
                let mut trace = self.trace.lock().unwrap_or_else(PoisonError::into_inner);
                trace.probes.hit(p);
            }
            return;
        }
        if *meta.level() == tracing::Level::TRACE {
            return;
        }
        let (time, node) = executor::context().unwrap_or((VirtualTime::ZERO, None));
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        let ev = TraceEvent {
            index: 0,
            time,
            node,
            target: meta.target(),
            level: *meta.level(),
            name: visitor.message,
            fields: visitor.fields,
        };
        let mut trace = self.trace.lock().unwrap_or_else(PoisonError::into_inner);
        let index = trace.total;
        trace.push(TraceEvent { index, ..ev });
    }
}

/// Reads the `probe` field of a probe event.
struct ProbeVisitor(Option<Probe>);

impl Visit for ProbeVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "probe" {
            self.0 = Probe::from_name(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

#[derive(Default)]
struct FieldVisitor {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    // Integers are most fields; decimal without the formatting machinery
    // gives the same text as `Debug`.
    fn record_u64(&mut self, field: &Field, value: u64) {
        let mut s = String::new();
        push_decimal(&mut s, value, 0);
        self.fields.push((field.name(), s));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let mut s = String::new();
        if value < 0 {
            s.push('-');
        }
        push_decimal(&mut s, value.unsigned_abs(), 0);
        self.fields.push((field.name(), s));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message.push_str(&s);
        } else {
            self.fields.push((field.name(), s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_get_canonical_lines_and_a_stable_hash() {
        let ((), trace) = record(Keep::All, || {
            tracing::info!(target: "t", shard = 3, name = "x y", "copy_started");
            tracing::trace!(target: "t", "ignored");
        });
        let lines: Vec<String> = trace.events().map(|e| e.to_string()).collect();
        assert_eq!(lines, ["00:00:00.000 --  t copy_started shard=3 name=x y"]);
        let ((), ints) = record(Keep::All, || {
            tracing::info!(target: "t", a = 0u64, b = -12i64, c = i64::MIN, d = u64::MAX, "ints");
        });
        let line = ints.events().next().map(|e| e.to_string());
        let want = format!("a=0 b=-12 c={} d={}", i64::MIN, u64::MAX);
        assert_eq!(line, Some(format!("00:00:00.000 --  t ints {want}")));
        let ((), again) = record(Keep::Last(0), || {
            tracing::info!(target: "t", shard = 3, name = "x y", "copy_started");
        });
        assert_eq!(trace.hash(), again.hash());
        assert_eq!(again.events().count(), 0);
        assert_eq!(again.total(), 1);
    }

    #[test]
    fn probe_events_are_counted_and_kept_out_of_the_trace_and_its_hash() {
        let event = || tracing::info!(target: "t", shard = 3, "copy_started");
        let ((), plain) = record(Keep::All, event);
        let ((), probed) = record(Keep::All, || {
            Probe::TokenRefused.hit();
            event();
            Probe::TokenRefused.hit();
            Probe::SessionExpired.hit();
        });
        assert_eq!(probed.hash(), plain.hash());
        assert_eq!(probed.total(), 1);
        assert_eq!(
            probed.probes().to_string(),
            "token_refused x2, session_expired x1"
        );
        assert!(!plain.probes().reached(Probe::TokenRefused));
    }
}
