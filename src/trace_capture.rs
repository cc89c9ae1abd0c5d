//! Test helper: record every `tracing` event's message and fields, so unit
//! tests can assert on what happened in which order (the simulator has its
//! own recorder; `src/` tests cannot use it).
//!
//! Not a scoped (`with_default`) subscriber: with tests on parallel threads,
//! tracing caches a callsite's interest globally, and a callsite first hit
//! on a thread without a subscriber can be cached as "never" while another
//! thread's scoped subscriber is the only one registered — its events are
//! then lost (a flaky test). Instead one global subscriber is installed
//! once; it is always interested and hands each event to the capture active
//! on the emitting thread, if any.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::span;
use tracing::{Event, Metadata, Subscriber};

/// One recorded event: its message and its other fields, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Captured {
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Captured {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Records events; clone it to read them while it is installed.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<Vec<Captured>>>);

thread_local! {
    /// The capture receiving this thread's events.
    static ACTIVE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Puts the previous capture back when a run ends (or panics).
struct Restore(Option<Capture>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        ACTIVE.with(|a| *a.borrow_mut() = previous);
    }
}

impl Capture {
    /// Run `f` with this capture receiving the thread's events.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        INSTALL.call_once(|| {
            // Fails only if another global subscriber was set first; the
            // tests relying on captures then fail visibly.
            let _ = tracing::subscriber::set_global_default(Router);
        });
        let previous = ACTIVE.with(|a| a.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        f()
    }

    pub fn events(&self) -> Vec<Captured> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The names of the coverage probes hit ([`crate::probe`]), in order.
    pub fn probes(&self) -> Vec<String> {
        self.named("probe_reached")
            .iter()
            .filter_map(|e| e.field("probe").map(str::to_string))
            .collect()
    }

    /// The events with this message, in order.
    pub fn named(&self, message: &str) -> Vec<Captured> {
        self.events()
            .into_iter()
            .filter(|e| e.message == message)
            .collect()
    }
}

struct Fields<'a>(&'a mut Captured);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.0.fields.insert(field.name().to_string(), text);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.message = value.to_string();
        } else {
            self.0
                .fields
                .insert(field.name().to_string(), value.to_string());
        }
    }
}

/// The global subscriber: always interested, forwards to the thread's
/// active capture.
struct Router;

impl Subscriber for Router {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(capture) = ACTIVE.with(|a| a.borrow().clone()) else {
            return;
        };
        let mut captured = Captured {
            message: String::new(),
            fields: BTreeMap::new(),
        };
        event.record(&mut Fields(&mut captured));
        if let Ok(mut events) = capture.0.lock() {
            events.push(captured);
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
