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
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::engine::executor;
use crate::engine::probe_hits::ProbeHits;
use crate::engine::time::{VirtualTime, push_decimal};

/// How many events a trace stores (the hash always covers all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Keep every event.
    All,
    /// Keep only the last N events.
    Last(usize),
}

/// One recorded event.
///
/// Its text lives in two reusable buffers (the name, and the field values
/// one after the other), so a trace that keeps only its last events
/// recycles them instead of allocating for each of the run's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Position in the whole trace, from 0.
    pub index: u64,
    /// Virtual time of the event.
    pub time: VirtualTime,
    /// The node of the task that emitted it (`None`: the harness).
    pub node: Option<NodeId>,
    /// The `tracing` target (the subsystem, e.g. `sim::fault`).
    pub target: &'static str,
    /// The `tracing` level.
    pub level: tracing::Level,
    /// The event's message: a snake_case past-tense name.
    name: String,
    /// Every field value, in the order written.
    values: String,
    /// Each field's name and the end of its value in `values`.
    fields: Vec<(&'static str, usize)>,
}

impl TraceEvent {
    /// An event named `name` with `fields` (index 0, time zero, no node,
    /// target `t`, level INFO): for tests of what reads traces.
    pub fn new(name: &str, fields: &[(&'static str, &str)]) -> TraceEvent {
        let mut event = TraceEvent::blank();
        event.target = "t";
        event.name.push_str(name);
        for (k, v) in fields {
            event.push_field(k, v);
        }
        event
    }

    fn blank() -> TraceEvent {
        TraceEvent {
            index: 0,
            time: VirtualTime::ZERO,
            node: None,
            target: "",
            level: tracing::Level::INFO,
            name: String::new(),
            values: String::new(),
            fields: Vec::new(),
        }
    }

    /// The event's message: a snake_case past-tense name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The structured fields in the order they were written.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let mut start = 0;
        self.fields.iter().map(move |&(k, end)| {
            let v = &self.values[start..end];
            start = end;
            (k, v)
        })
    }

    /// The value of field `name`, if the event has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Appends field `name` with value `value`.
    pub fn push_field(&mut self, name: &'static str, value: &str) {
        self.values.push_str(value);
        self.end_field(name);
    }

    /// Closes field `name`, whose value was just appended to `values`.
    fn end_field(&mut self, name: &'static str) {
        self.fields.push((name, self.values.len()));
    }

    /// Empties the event, keeping its buffers, to record another.
    fn reset(
        &mut self,
        index: u64,
        time: VirtualTime,
        node: Option<NodeId>,
        meta: &Metadata<'static>,
    ) {
        self.index = index;
        self.time = time;
        self.node = node;
        self.target = meta.target();
        self.level = *meta.level();
        self.name.clear();
        self.values.clear();
        self.fields.clear();
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
        for (k, v) in self.fields() {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }
}

/// Bytes of canonical lines hashed at once.
const HASH_CHUNK: usize = 64 * 1024;

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
    /// Events dropped from `events`, whose buffers the next events reuse.
    spare: Spare,
    /// Canonical lines not hashed yet. blake3 is several times faster on
    /// long inputs than line by line, and the hash does not depend on how
    /// its input is split.
    unhashed: String,
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
            spare: Spare::default(),
            unhashed: String::new(),
        }
    }

    fn push(&mut self, event: TraceEvent) {
        event.push_line(&mut self.unhashed);
        self.unhashed.push('\n');
        if self.unhashed.len() >= HASH_CHUNK {
            self.hasher.update(self.unhashed.as_bytes());
            self.unhashed.clear();
        }
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
                return self.spare.put(event);
            }
            if self.events.len() == n
                && let Some(old) = self.events.pop_front()
            {
                self.spare.put(old);
            }
        }
        self.events.push_back(event);
    }

    /// An event to record into: a spare one emptied, or a new one.
    fn blank_event(
        &mut self,
        time: VirtualTime,
        node: Option<NodeId>,
        meta: &Metadata<'static>,
    ) -> TraceEvent {
        let mut event = self.spare.events.pop().unwrap_or_else(TraceEvent::blank);
        event.reset(self.total, time, node, meta);
        event
    }

    /// The first 16 hex digits of the blake3 hash of every canonical line.
    pub fn hash(&self) -> String {
        let mut hasher = self.hasher.clone();
        hasher.update(self.unhashed.as_bytes());
        hasher.finalize().to_hex()[..16].to_string()
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

/// Spare events of a trace, and the emptied vector the last observed
/// events came in (a clone of the trace starts without any).
#[derive(Debug, Default)]
struct Spare {
    events: Vec<TraceEvent>,
    batch: Vec<TraceEvent>,
}

impl Spare {
    /// At most this many: enough for the events of one observed slice
    /// of a run, without holding on to a long run's worth.
    const MAX: usize = 1024;

    /// Keep `event` for reuse, unless there are enough spares.
    fn put(&mut self, event: TraceEvent) {
        if self.events.len() < Spare::MAX {
            self.events.push(event);
        }
    }
}

impl Clone for Spare {
    fn clone(&self) -> Spare {
        Spare::default()
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
        let mut trace = self.lock();
        let batch = std::mem::take(&mut trace.spare.batch);
        std::mem::replace(&mut trace.new, batch)
    }

    /// Store events taken with [`Recorder::take_new`] among the trace's
    /// last events. Call before taking the next ones.
    pub fn retire(&self, mut events: Vec<TraceEvent>) {
        let mut trace = self.lock();
        let skip = match trace.keep {
            Keep::Last(n) => events.len().saturating_sub(n),
            Keep::All => 0,
        };
        let mut drained = events.drain(..);
        for event in drained.by_ref().take(skip) {
            trace.spare.put(event);
        }
        for event in drained {
            trace.keep(event);
        }
        // The next observed events go into this vector again.
        trace.spare.batch = events;
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
        let mut trace = self.trace.lock().unwrap_or_else(PoisonError::into_inner);
        let mut visitor = FieldVisitor(trace.blank_event(time, node, meta));
        event.record(&mut visitor);
        trace.push(visitor.0);
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

/// Writes an event's message and fields into a [`TraceEvent`].
struct FieldVisitor(TraceEvent);

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.name.push_str(value);
        } else {
            self.0.push_field(field.name(), value);
        }
    }

    // Integers are most fields; decimal without the formatting machinery
    // gives the same text as `Debug`.
    fn record_u64(&mut self, field: &Field, value: u64) {
        push_decimal(&mut self.0.values, value, 0);
        self.0.end_field(field.name());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if value < 0 {
            self.0.values.push('-');
        }
        push_decimal(&mut self.0.values, value.unsigned_abs(), 0);
        self.0.end_field(field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let event = &mut self.0;
        if field.name() == "message" {
            let _ = write!(event.name, "{value:?}");
        } else {
            let _ = write!(event.values, "{value:?}");
            event.end_field(field.name());
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
    fn the_hash_is_blake3_of_every_line_however_long_the_trace() {
        let emit = || {
            for i in 0..3_000u64 {
                let pad = "x".repeat((i % 50) as usize);
                tracing::info!(target: "t", i, pad = %pad, "event_emitted");
            }
        };
        let ((), all) = record(Keep::All, emit);
        let text: String = all.events().map(|e| format!("{e}\n")).collect();
        assert!(
            text.len() > 2 * HASH_CHUNK,
            "the test must span hash chunks"
        );
        let want = blake3::hash(text.as_bytes()).to_hex()[..16].to_string();
        assert_eq!(all.hash(), want);
        let ((), last) = record(Keep::Last(2), emit);
        assert_eq!(last.hash(), want);
        // Recycled events carry nothing of the events they held before.
        let kept: Vec<String> = last.events().map(|e| e.to_string()).collect();
        let tail: Vec<String> = all.events().skip(2_998).map(|e| e.to_string()).collect();
        assert_eq!(kept, tail);
        assert_eq!(
            last.events().last().and_then(|e| e.field("i")),
            Some("2999")
        );
        assert_eq!(last.events().last().map(|e| e.index), Some(2_999));
    }

    #[test]
    fn observed_events_the_trace_does_not_keep_are_recycled_up_to_a_bound() {
        let recorder = Recorder::new(Keep::Last(1), true);
        let spares = || recorder.lock().spare.events.len();
        let emit = |n: u64| {
            recorder.record(|| {
                for i in 0..n {
                    tracing::info!(target: "t", i, "event_emitted");
                }
            })
        };
        emit(3);
        let events = recorder.take_new();
        assert_eq!(events.len(), 3);
        recorder.retire(events);
        // Two were never kept: spares for the next events, which use them.
        assert_eq!(spares(), 2);
        emit(2);
        assert_eq!(spares(), 0);
        // They came in the vector the first three were handed back in.
        let events = recorder.take_new();
        assert!(events.capacity() >= 3);
        recorder.retire(events);
        // One skipped, one pushed out by the kept one.
        assert_eq!(spares(), 2);
        let kept: Vec<String> = recorder.trace().events().map(|e| e.to_string()).collect();
        assert_eq!(kept, ["00:00:00.000 --  t event_emitted i=1"]);
        emit(Spare::MAX as u64 + 10);
        recorder.retire(recorder.take_new());
        assert_eq!(spares(), Spare::MAX);
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
