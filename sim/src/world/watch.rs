//! Moments at which the oracle looks at the state of the world itself.
//!
//! Some invariants are about an instant: a replica must not be marked
//! `Available` while one of its table shards is still copying, a file must
//! not be deleted while a session that listed it is open. By the time the
//! run loop next looks (once per slice of virtual time) the instant is
//! gone. So the world calls a [`Watcher`] at these moments, synchronously,
//! and the watcher reads the state the invariant is about (the data nodes'
//! table shards, the peer servers' sessions, the disks) right then — never
//! a trace line the code under test chose to emit.
//!
//! The world only announces; what to check is the harness's business (it
//! installs the watcher), so this layer imports nothing above it.

use std::cell::RefCell;
use std::rc::Rc;

use shardboot::model::FileKey;
use shardboot::types::{NodeId, ShardId};

/// What the world announces. Every method runs inside the simulation, at
/// the instant named, with no borrow of the world's state held.
pub trait Watcher {
    /// The placement service has just marked `shards` of `node` `Available`.
    fn marked_available(&self, node: NodeId, shards: &[ShardId]);
    /// The code under test on `node` has just deleted `file`.
    fn file_deleted(&self, node: NodeId, file: &FileKey);
    /// `node`'s process is about to be killed (a crash, or a restart on
    /// another disk): its peer server and its clients' sessions elsewhere
    /// are still there.
    fn process_killed(&self, node: NodeId);
}

/// Where the world finds its watcher, if one is installed. Cloning shares
/// the slot.
#[derive(Clone, Default)]
pub struct Watch {
    slot: Rc<RefCell<Option<Rc<dyn Watcher>>>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let installed = self.slot.borrow().is_some();
        f.debug_struct("Watch")
            .field("installed", &installed)
            .finish()
    }
}

impl Watch {
    /// Make `watcher` the one the world calls from now on.
    pub fn install(&self, watcher: Rc<dyn Watcher>) {
        *self.slot.borrow_mut() = Some(watcher);
    }

    /// Forget the watcher (it usually holds the world: this breaks the
    /// cycle when a run ends).
    pub fn clear(&self) {
        self.slot.borrow_mut().take();
    }

    /// Call the watcher, if any, with no borrow of the slot held.
    pub fn notify(&self, f: impl FnOnce(&dyn Watcher)) {
        let watcher = self.slot.borrow().clone();
        if let Some(w) = watcher {
            f(&*w);
        }
    }
}
