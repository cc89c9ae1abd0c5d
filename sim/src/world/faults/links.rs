//! Network faults between hosts: partitions, held links, unhealthy peers,
//! cut streams, lost, slow and duplicated messages. [`crate::world::net`] asks
//! these methods at each hop, message and chunk.
//!
//! A *partition* loses every message that crosses it, and cuts the streams
//! that cross it when it starts (a TCP connection does not survive a
//! partition for long). A *held* link delays messages in one direction
//! until it is released; none is lost and their order is kept. A cut stream
//! reads as broken at both ends.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::{Future, poll_fn};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use shardboot::types::NodeId;

use super::{FaultKind, Faults};
use crate::engine::executor;
use crate::engine::time::VirtualTime;

/// A partition: `nodes` against `other`. Symmetric, it loses messages both
/// ways; one-way, only messages *to* `nodes` from `other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub nodes: BTreeSet<NodeId>,
    pub other: BTreeSet<NodeId>,
    pub oneway: bool,
}

impl Partition {
    /// Whether a message from `from` to `to` is lost.
    pub fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        (self.other.contains(&from) && self.nodes.contains(&to))
            || (!self.oneway && self.nodes.contains(&from) && self.other.contains(&to))
    }

    /// Whether a stream between `a` and `b` crosses it (either direction).
    pub fn crosses(&self, a: NodeId, b: NodeId) -> bool {
        self.blocks(a, b) || self.blocks(b, a)
    }
}

/// The shared "cut" switch of one stream (both of its ends).
#[derive(Default)]
pub struct StreamCut {
    cut: Cell<bool>,
    wakers: std::cell::RefCell<Vec<Waker>>,
}

impl StreamCut {
    pub fn is_cut(&self) -> bool {
        self.cut.get()
    }

    /// Cut the stream and wake its waiting ends; false if it was cut.
    pub fn cut(&self) -> bool {
        if self.cut.replace(true) {
            return false;
        }
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        wakers.into_iter().for_each(Waker::wake);
        true
    }

    /// Wake `waker` when the stream is cut.
    pub fn wake_on_cut(&self, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }
}

/// State of the links between hosts.
#[derive(Default)]
pub(crate) struct Links {
    next_id: u64,
    pub(crate) partitions: BTreeMap<u64, Partition>,
    /// Held directed links `(from, to)`, each with the id of its hold.
    holds: BTreeMap<(NodeId, NodeId), u64>,
    /// Hosts whose health check fails until the given time.
    unhealthy: BTreeMap<NodeId, VirtualTime>,
    /// Open streams by their two hosts (dead ones pruned as we go).
    streams: Vec<(NodeId, NodeId, Weak<StreamCut>)>,
    /// Tasks waiting for a held link to be released.
    release_waiters: Vec<Waker>,
}

impl Links {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.partitions.values().any(|p| p.blocks(from, to))
    }

    /// Hosts unhealthy at `now`.
    pub(crate) fn unhealthy_at(&self, now: VirtualTime) -> BTreeSet<NodeId> {
        self.unhealthy
            .iter()
            .filter(|(_, until)| now < **until)
            .map(|(n, _)| *n)
            .collect()
    }

    pub(crate) fn held(&self, from: NodeId, to: NodeId) -> bool {
        self.holds.contains_key(&(from, to))
    }

    pub(crate) fn holds(&self) -> usize {
        self.holds.len()
    }

    /// Cut every open stream for which `crosses(a, b)` holds; how many.
    pub(crate) fn cut_streams(&mut self, crosses: impl Fn(NodeId, NodeId) -> bool) -> usize {
        let mut n = 0;
        self.streams.retain(|(a, b, cut)| match cut.upgrade() {
            Some(cut) => {
                if crosses(*a, *b) && cut.cut() {
                    n += 1;
                }
                true
            }
            None => false,
        });
        n
    }

    /// Start a partition, cutting the streams that cross it; its id and how
    /// many streams were cut.
    pub(crate) fn partition(&mut self, p: Partition) -> (u64, usize) {
        let id = self.id();
        let cut = self.cut_streams(|a, b| p.crosses(a, b));
        self.partitions.insert(id, p);
        (id, cut)
    }

    /// Hold `from → to`; the hold's id.
    pub(crate) fn hold(&mut self, from: NodeId, to: NodeId) -> u64 {
        let id = self.id();
        self.holds.insert((from, to), id);
        id
    }

    /// Release `from → to` (only hold `id`, if given); whether it was held.
    pub(crate) fn release(&mut self, from: NodeId, to: NodeId, id: Option<u64>) -> bool {
        let held = self.holds.get(&(from, to)).copied();
        if held.is_none() || id.is_some_and(|id| held != Some(id)) {
            return false;
        }
        self.holds.remove(&(from, to));
        self.wake_waiters();
        true
    }

    fn wake_waiters(&mut self) {
        std::mem::take(&mut self.release_waiters)
            .into_iter()
            .for_each(Waker::wake);
    }

    /// End partitions, holds and unhealthy spells; how many of each ended.
    pub(crate) fn heal_all(&mut self) -> (usize, usize, usize) {
        let counts = (
            self.partitions.len(),
            self.holds.len(),
            self.unhealthy.len(),
        );
        self.partitions.clear();
        self.holds.clear();
        self.unhealthy.clear();
        self.wake_waiters();
        counts
    }
}

/// Network faults as [`crate::world::net`] meets them.
impl Faults {
    /// Extra latency of one hop (the `net.tail_latency` fault), usually 0.
    pub fn tail_latency(&self) -> Duration {
        let n = &self.config.net;
        if !self.draws.fires(FaultKind::NetLatency, n.tail_latency) {
            return Duration::ZERO;
        }
        let extra = self.draws.duration(
            FaultKind::NetLatency,
            n.tail_latency_min,
            n.tail_latency_max,
        );
        tracing::info!(target: "sim::fault", kind = "net_latency",
            extra_ms = extra.as_millis() as u64, "fault_injected");
        extra
    }

    /// How long a caller waits before it gives a lost message up.
    pub fn timeout(&self) -> Duration {
        self.config.net.timeout
    }

    /// Whether a unary request or reply from `from` to `to` is lost: a
    /// partition, or the `net.drop` fault.
    pub fn message_lost(&self, from: NodeId, to: NodeId) -> bool {
        if self.links.borrow().blocked(from, to) {
            tracing::debug!(target: "sim::fault", from = %from, to = %to,
                "message_lost_to_partition");
            return true;
        }
        if self.draws.fires(FaultKind::NetDrop, self.config.net.drop) {
            tracing::info!(target: "sim::fault", kind = "net_drop", from = %from, to = %to,
                "fault_injected");
            return true;
        }
        false
    }

    /// If a unary request from `from` to `to` is duplicated (the
    /// `net.duplicate` fault): how long after the original the copy
    /// arrives.
    pub fn duplicate_request(&self, from: NodeId, to: NodeId, call: &str) -> Option<Duration> {
        if !self
            .draws
            .fires(FaultKind::NetDuplicate, self.config.net.duplicate)
        {
            return None;
        }
        tracing::info!(target: "sim::fault", kind = "net_duplicate", from = %from, to = %to,
            call, "fault_injected");
        let (lo, hi) = self.latency;
        Some(self.draws.duration(FaultKind::NetDuplicate, lo, hi))
    }

    /// Whether a keep-alive message from `from` to `to` is delivered twice.
    pub fn duplicate_message(&self, from: NodeId, to: NodeId) -> bool {
        let dup = self
            .draws
            .fires(FaultKind::NetDuplicate, self.config.net.duplicate);
        if dup {
            tracing::info!(target: "sim::fault", kind = "net_duplicate", from = %from, to = %to,
                call = "keep_alive_message", "fault_injected");
        }
        dup
    }

    /// A new stream between `a` and `b`; cut at once if a partition
    /// separates them.
    pub fn register_stream(&self, a: NodeId, b: NodeId) -> Rc<StreamCut> {
        let cut = Rc::new(StreamCut::default());
        let mut links = self.links.borrow_mut();
        if links.blocked(a, b) || links.blocked(b, a) {
            cut.cut();
        }
        links.streams.retain(|(_, _, c)| c.strong_count() > 0);
        links.streams.push((a, b, Rc::downgrade(&cut)));
        cut
    }

    /// Whether a message (or chunk) of a stream from `from` to `to` finds
    /// the stream broken: cut before, separated by a partition, or cut now
    /// (the `net.stream_cut` fault). `stream` names the stream's kind.
    pub fn stream_broken(&self, from: NodeId, to: NodeId, cut: &StreamCut, stream: &str) -> bool {
        if cut.is_cut() {
            return true;
        }
        if self.links.borrow().blocked(from, to) {
            cut.cut();
            tracing::debug!(target: "sim::fault", from = %from, to = %to, stream,
                "stream_lost_to_partition");
            return true;
        }
        if self
            .draws
            .fires(FaultKind::StreamCut, self.config.net.stream_cut)
        {
            cut.cut();
            tracing::info!(target: "sim::fault", kind = "stream_cut", from = %from, to = %to,
                stream, "fault_injected");
            return true;
        }
        false
    }

    /// Wait while `from → to` is held (or until `cut` is cut). Ready at
    /// once when it is not held.
    pub fn wait_released<'a>(
        &'a self,
        from: NodeId,
        to: NodeId,
        cut: Option<&'a StreamCut>,
    ) -> impl Future<Output = ()> + 'a {
        poll_fn(move |cx| {
            if cut.is_some_and(StreamCut::is_cut) {
                return Poll::Ready(());
            }
            let mut links = self.links.borrow_mut();
            if !links.holds.contains_key(&(from, to)) {
                return Poll::Ready(());
            }
            links.release_waiters.push(cx.waker().clone());
            if let Some(c) = cut {
                c.wake_on_cut(cx.waker());
            }
            Poll::Pending
        })
    }

    /// Whether `node`'s health check fails now (an unhealthy spell).
    pub fn is_unhealthy(&self, node: NodeId) -> bool {
        let links = self.links.borrow();
        !links.unhealthy.is_empty() && links.unhealthy_at(executor::now()).contains(&node)
    }

    /// Make `node` unhealthy until `until` (a later spell wins).
    pub(crate) fn set_unhealthy(&self, node: NodeId, until: VirtualTime) {
        let mut links = self.links.borrow_mut();
        let end = links.unhealthy.entry(node).or_insert(until);
        *end = (*end).max(until);
    }

    /// Cut every open stream to or from `node`; how many.
    pub(crate) fn cut_streams_of(&self, node: NodeId) -> usize {
        self.links
            .borrow_mut()
            .cut_streams(|a, b| a == node || b == node)
    }
}
