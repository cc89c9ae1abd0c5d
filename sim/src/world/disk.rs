//! Per-node storage: files and the metastore, with a real sync model.
//!
//! Every file keeps what was written (`data`) and what was last synced
//! (`durable`); a crash keeps only the durable part (see [`NodeDisk::crash`]).
//! Metastore writes are durable when they return, as upstream's metastore
//! syncs each update. Every operation is a scheduling point (it yields once),
//! so other tasks can run between any two disk steps, as with a real disk.
//!
//! Faults come from the world's fault plan ([`DiskFaults`]): I/O errors,
//! a full disk, failed syncs, torn writes at a crash
//! ([`NodeDisk::crash_torn`]) and silent corruption ([`NodeDisk::corrupt`]),
//! which a read reports as [`DiskError::Corrupt`] only when the disk keeps
//! checksums. Not modelled: faults of the metastore.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use shardboot::env::{Disk, DiskError, FileBytes, MetaError, MetaStore, OpenMode, WriteFile};
use shardboot::model::{FileKey, MetaWrite, ShardMeta};
use shardboot::types::{NodeId, Offset, TableShardId};

use crate::engine::executor::yield_now;
use crate::engine::rng::SimRng;
use crate::world::faults::DiskFaults;
use crate::world::watch::Watch;

/// The least a file's buffer grows by when it must grow (rounded up to it).
const PAGE: usize = 4096;

/// A file's bytes and what of them survives a crash.
#[derive(Debug, Default)]
struct Inode {
    /// Shared with the reads that returned it; copied before a change.
    data: FileBytes,
    durable: Durable,
    /// Silently corrupted since it was last written from the start.
    corrupt: bool,
}

/// What a crash leaves of a file: its content as of the last sync.
#[derive(Debug, Default)]
enum Durable {
    /// Never synced: the file vanishes.
    #[default]
    Never,
    /// The first `n` bytes of `data`: nothing synced was overwritten or cut
    /// since. The common case (a redo log synced after every append, a file
    /// written whole then synced) keeps no second copy, so a sync is free.
    Prefix(usize),
    /// The synced content, kept apart because a later write overwrote or
    /// truncated part of it.
    Own(Vec<u8>),
}

impl Inode {
    /// Make the current content durable.
    fn sync(&mut self) {
        self.durable = Durable::Prefix(self.data.len());
    }

    /// The content a crash would leave, `None` if the file would vanish.
    fn durable(&self) -> Option<&[u8]> {
        match &self.durable {
            Durable::Never => None,
            Durable::Prefix(n) => Some(&self.data[..*n]),
            Durable::Own(d) => Some(d),
        }
    }

    /// Whether a crash would leave the file as it is.
    fn synced(&self) -> bool {
        self.durable() == Some(&self.data[..])
    }

    /// Keep the synced content apart before `data` changes from byte `from`
    /// on, if that change reaches into it.
    fn preserve_from(&mut self, from: usize) {
        if let Durable::Prefix(n) = self.durable
            && from < n
        {
            self.durable = Durable::Own(self.data[..n].to_vec());
        }
    }

    /// The content to change in place (copied first if a read shares it).
    fn data_mut(&mut self) -> &mut Vec<u8> {
        Rc::make_mut(&mut self.data)
    }

    /// Empty the file (opened with truncation), moving rather than copying
    /// any synced content it held.
    fn truncate(&mut self) {
        let old = std::mem::take(&mut self.data);
        if let Durable::Prefix(n) = self.durable
            && n > 0
        {
            let mut synced = Rc::unwrap_or_clone(old);
            synced.truncate(n);
            self.durable = Durable::Own(synced);
        }
        self.corrupt = false;
    }

    /// Fall back to the durable content (a crash). False if the file
    /// vanishes.
    fn revert(&mut self) -> bool {
        match std::mem::take(&mut self.durable) {
            Durable::Never => return false,
            Durable::Prefix(n) => self.data_mut().truncate(n),
            Durable::Own(d) => self.data = Rc::new(d),
        }
        self.sync();
        true
    }
}

#[derive(Debug, Default)]
struct Files {
    files: BTreeMap<FileKey, Rc<RefCell<Inode>>>,
    /// Names whose creation, rename or deletion is not yet durable do not
    /// exist after a crash; we model directory operations as durable at once
    /// (upstream syncs the directory), and file *content* by `durable`.
    deleted_total: u64,
}

/// Metastore writes in the order applied.
type MetaLog = Vec<(TableShardId, MetaWrite)>;

/// One node's disk. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct NodeDisk {
    files: Rc<RefCell<Files>>,
    meta: Rc<RefCell<BTreeMap<TableShardId, ShardMeta>>>,
    /// Metastore writes in the order applied, once recording was asked for
    /// ([`NodeDisk::record_meta_writes`]); off by default so long runs do not
    /// keep every commit-offset update.
    meta_log: Rc<RefCell<Option<MetaLog>>>,
    faults: DiskFaults,
    /// Files whose next sync fails (scripted, [`NodeDisk::fail_next_sync`]).
    failing_syncs: Rc<RefCell<BTreeSet<FileKey>>>,
    /// Every archiving-cutoff write fails ([`Defect::StuckArchivingCutoff`]).
    ///
    /// [`Defect::StuckArchivingCutoff`]: crate::world::defect::Defect::StuckArchivingCutoff
    refuses_cutoff_writes: Rc<Cell<bool>>,
    /// The host this disk belongs to and the world's watch, told of every
    /// deletion by the code under test ([`crate::world::watch`]).
    watched: Option<(NodeId, Watch)>,
}

impl NodeDisk {
    /// An empty disk that meets the faults of `faults`.
    pub fn with_faults(faults: DiskFaults) -> NodeDisk {
        NodeDisk {
            faults,
            ..NodeDisk::default()
        }
    }

    /// The disk of host `node`, announcing deletions to `watch`.
    pub fn watched(self, node: NodeId, watch: Watch) -> NodeDisk {
        NodeDisk {
            watched: Some((node, watch)),
            ..self
        }
    }

    /// The next sync of `key` fails with an I/O error, leaving what was
    /// written not durable (a scripted `fail_redo_sync` step).
    pub fn fail_next_sync(&self, key: FileKey) {
        self.failing_syncs.borrow_mut().insert(key);
    }

    /// Lose everything not synced: never-synced files vanish, others fall
    /// back to their last synced content. The metastore is kept.
    pub fn crash(&self) {
        self.files
            .borrow_mut()
            .files
            .retain(|_, inode| inode.borrow_mut().revert());
    }

    /// A crash that tears unsynced writes: each file with unsynced data
    /// keeps a random prefix (from `rng`) of what was written since its
    /// last sync over its durable content; a never-synced file that keeps
    /// nothing vanishes. The metastore is kept.
    pub fn crash_torn(&self, rng: &mut SimRng) {
        let mut files = self.files.borrow_mut();
        let mut vanished = Vec::new();
        for (key, inode) in &files.files {
            let mut i = inode.borrow_mut();
            if i.synced() {
                continue;
            }
            let kept = rng.below(i.data.len() as u64 + 1) as usize;
            let mut torn = i.data[..kept].to_vec();
            if let Some(old) = i.durable().and_then(|d| d.get(kept..)) {
                torn.extend_from_slice(old);
            }
            tracing::info!(target: "sim::fault", kind = "torn_write", file = ?key, kept,
                written = i.data.len(), "fault_injected");
            if i.durable().is_none() && torn.is_empty() {
                vanished.push(key.clone());
            } else {
                i.data = Rc::new(torn);
                i.sync();
            }
        }
        for key in vanished {
            files.files.remove(&key);
        }
    }

    /// Flip the bits of `mask` in byte `at` of a file, on disk and in what
    /// reads return, and mark it corrupted (silent corruption). False if
    /// there is no such byte.
    pub fn corrupt(&self, key: &FileKey, at: usize, mask: u8) -> bool {
        let files = self.files.borrow();
        let Some(inode) = files.files.get(key) else {
            return false;
        };
        let mut i = inode.borrow_mut();
        let Some(byte) = i.data_mut().get_mut(at) else {
            return false;
        };
        *byte ^= mask;
        // A durable prefix of `data` took the flip with it.
        if let Durable::Own(d) = &mut i.durable
            && let Some(b) = d.get_mut(at)
        {
            *b ^= mask;
        }
        i.corrupt = true;
        true
    }

    /// The current content of a file (what a read returns now).
    pub fn contents(&self, key: &FileKey) -> Option<FileBytes> {
        let files = self.files.borrow();
        files.files.get(key).map(|i| Rc::clone(&i.borrow().data))
    }

    /// Every file name on the disk, in order.
    pub fn file_names(&self) -> Vec<FileKey> {
        self.files.borrow().files.keys().cloned().collect()
    }

    /// The metastore's content for a table shard (default if never written).
    pub fn meta(&self, shard: &TableShardId) -> ShardMeta {
        self.meta.borrow().get(shard).cloned().unwrap_or_default()
    }

    /// The commit offset the metastore holds for a table shard (zero if
    /// never written), without copying its metadata.
    pub fn commit_offset(&self, shard: &TableShardId) -> Offset {
        self.meta
            .borrow()
            .get(shard)
            .map_or(Offset(0), |m| m.commit_offset)
    }

    /// From now on every archiving-cutoff write to this metastore fails (a
    /// planted defect: archiving never advances on this host).
    pub fn refuse_cutoff_writes(&self) {
        self.refuses_cutoff_writes.set(true);
    }

    /// Change `shard`'s durable metadata in place (a planted defect).
    pub fn tamper_meta(&self, shard: &TableShardId, f: impl FnOnce(&mut ShardMeta)) {
        f(self.meta.borrow_mut().entry(shard.clone()).or_default());
    }

    /// Start recording every metastore write from now on (tests that pin
    /// the order in which the code under test writes metadata).
    pub fn record_meta_writes(&self) {
        self.meta_log.borrow_mut().get_or_insert_with(Vec::new);
    }

    /// The metastore writes to `shard` recorded since
    /// [`NodeDisk::record_meta_writes`], oldest first (empty if not recording).
    pub fn meta_writes(&self, shard: &TableShardId) -> Vec<MetaWrite> {
        self.meta_log
            .borrow()
            .iter()
            .flatten()
            .filter(|(s, _)| s == shard)
            .map(|(_, w)| w.clone())
            .collect()
    }

    /// Replace a file's content with a corrupted copy (planted defects in
    /// tests; silent corruption faults).
    pub fn tamper(&self, key: &FileKey, f: impl FnOnce(&mut Vec<u8>)) -> bool {
        let files = self.files.borrow();
        match files.files.get(key) {
            Some(inode) => {
                let mut i = inode.borrow_mut();
                f(i.data_mut());
                if i.durable().is_some() {
                    i.sync();
                }
                true
            }
            None => false,
        }
    }

    /// Remove a file without going through the code under test.
    pub fn remove(&self, key: &FileKey) -> bool {
        self.files.borrow_mut().files.remove(key).is_some()
    }

    /// Erase every file and the metastore (a replaced, blank drive). Handles
    /// still open keep writing to unlinked files.
    pub fn erase(&self) {
        self.files.borrow_mut().files.clear();
        self.meta.borrow_mut().clear();
    }

    /// Replace this disk's files and metastore with a copy of `other`'s as
    /// they read now (an operator copying a disk image), durable here. A
    /// corrupted file stays corrupted in the copy.
    pub fn copy_from(&self, other: &NodeDisk) {
        let copied = other
            .files
            .borrow()
            .files
            .iter()
            .map(|(key, inode)| {
                let i = inode.borrow();
                let copy = Inode {
                    data: i.data.clone(),
                    durable: Durable::Prefix(i.data.len()),
                    corrupt: i.corrupt,
                };
                (key.clone(), Rc::new(RefCell::new(copy)))
            })
            .collect();
        self.files.borrow_mut().files = copied;
        *self.meta.borrow_mut() = other.meta.borrow().clone();
    }

    /// Lose every file and all metadata of one table shard (a disk failure
    /// planted in tests), without going through the code under test.
    pub fn wipe(&self, shard: &TableShardId) {
        self.files
            .borrow_mut()
            .files
            .retain(|k, _| k.shard() != shard);
        self.meta.borrow_mut().remove(shard);
    }
}

impl Disk for NodeDisk {
    type File = SimFile;

    async fn open(&self, key: &FileKey, mode: OpenMode) -> Result<SimFile, DiskError> {
        yield_now().await;
        let inode = {
            let mut files = self.files.borrow_mut();
            // Look up before inserting: most opens find the file, and the
            // key (with its table name) would be cloned for nothing.
            match files.files.get(key) {
                Some(inode) => Rc::clone(inode),
                None => Rc::clone(files.files.entry(key.clone()).or_default()),
            }
        };
        let pos = match mode {
            OpenMode::Truncate => {
                inode.borrow_mut().truncate();
                0
            }
            OpenMode::Overwrite => 0,
            OpenMode::Append => inode.borrow().data.len(),
        };
        Ok(SimFile {
            inode,
            pos,
            key: key.clone(),
            faults: self.faults.clone(),
            failing_syncs: Rc::clone(&self.failing_syncs),
        })
    }

    async fn read(&self, key: &FileKey) -> Result<FileBytes, DiskError> {
        yield_now().await;
        let data = self.contents(key).ok_or(DiskError::NotFound)?;
        if let Some(e) = self.faults.read_error(key) {
            return Err(e);
        }
        let corrupt = || {
            let files = self.files.borrow();
            files.files.get(key).is_some_and(|i| i.borrow().corrupt)
        };
        if self.faults.checksums() && corrupt() {
            tracing::debug!(target: "sim::disk", file = ?key, "checksum_mismatch_found");
            return Err(DiskError::Corrupt);
        }
        Ok(data)
    }

    fn list(&self, shard: &TableShardId) -> Vec<FileKey> {
        self.files
            .borrow()
            .files
            .keys()
            .filter(|k| k.shard() == shard)
            .cloned()
            .collect()
    }

    async fn delete(&self, key: &FileKey) -> Result<(), DiskError> {
        yield_now().await;
        {
            let mut files = self.files.borrow_mut();
            if files.files.remove(key).is_none() {
                return Err(DiskError::NotFound);
            }
            files.deleted_total += 1;
        }
        tracing::debug!(target: "sim::disk", file = ?key, "file_deleted");
        if let Some((node, watch)) = &self.watched {
            watch.notify(|w| w.file_deleted(*node, key));
        }
        Ok(())
    }

    async fn rename(&self, from: &FileKey, to: &FileKey) -> Result<(), DiskError> {
        yield_now().await;
        let mut files = self.files.borrow_mut();
        let inode = files.files.remove(from).ok_or(DiskError::NotFound)?;
        files.files.insert(to.clone(), inode);
        Ok(())
    }
}

/// An open file. Writes go at the position (overwriting, then extending);
/// a handle to a deleted file keeps writing to the unlinked inode.
pub struct SimFile {
    inode: Rc<RefCell<Inode>>,
    pos: usize,
    key: FileKey,
    faults: DiskFaults,
    failing_syncs: Rc<RefCell<BTreeSet<FileKey>>>,
}

impl SimFile {
    /// Write `data` at the position (overwriting, then extending); a whole
    /// new file (nothing of it durable) keeps `shared`, the same bytes,
    /// instead of a copy.
    async fn put(&mut self, data: &[u8], shared: Option<&FileBytes>) -> Result<(), DiskError> {
        if let Some(e) = self.faults.write_error(&self.key) {
            yield_now().await;
            return Err(e);
        }
        {
            let mut inode = self.inode.borrow_mut();
            let end = self.pos + data.len();
            match shared {
                Some(bytes) if self.pos == 0 && inode.data.is_empty() => {
                    inode.data = Rc::clone(bytes);
                }
                _ => {
                    // Overwrite what is there and append the rest; a hole
                    // (the file was truncated under this handle) reads as
                    // zeros.
                    let overlap = inode.data.len().min(end).saturating_sub(self.pos);
                    if overlap > 0 {
                        inode.preserve_from(self.pos);
                    }
                    let pos = self.pos;
                    let bytes = inode.data_mut();
                    if bytes.len() < pos {
                        bytes.resize(pos, 0);
                    }
                    bytes[pos..pos + overlap].copy_from_slice(&data[..overlap]);
                    // Grow by whole pages (at least doubling a large
                    // file), as a file system allocates blocks: a redo log
                    // appended a few hundred bytes at a time is not
                    // reallocated on every other append.
                    let rest = &data[overlap..];
                    if bytes.capacity() - bytes.len() < rest.len() {
                        bytes.reserve(rest.len().next_multiple_of(PAGE).max(bytes.len()));
                    }
                    bytes.extend_from_slice(rest);
                }
            }
            self.pos = end;
        }
        yield_now().await;
        Ok(())
    }
}

impl WriteFile for SimFile {
    async fn write(&mut self, data: &[u8]) -> Result<(), DiskError> {
        self.put(data, None).await
    }

    async fn write_shared(&mut self, data: FileBytes) -> Result<(), DiskError> {
        self.put(&data, Some(&data)).await
    }

    async fn sync(&mut self) -> Result<(), DiskError> {
        yield_now().await;
        if self.failing_syncs.borrow_mut().remove(&self.key) {
            tracing::info!(target: "sim::fault", kind = "disk_sync_fail", source = "step",
                file = ?self.key, "fault_injected");
            return Err(DiskError::Io);
        }
        if let Some(e) = self.faults.sync_error(&self.key) {
            return Err(e);
        }
        self.inode.borrow_mut().sync();
        Ok(())
    }
}

impl MetaStore for NodeDisk {
    async fn read(&self, shard: &TableShardId) -> Result<ShardMeta, MetaError> {
        yield_now().await;
        Ok(self.meta(shard))
    }

    async fn write(&self, shard: &TableShardId, update: MetaWrite) -> Result<(), MetaError> {
        yield_now().await;
        if self.refuses_cutoff_writes.get() && matches!(update, MetaWrite::ArchivingCutoff(_)) {
            return Err(MetaError::Io);
        }
        if let Some(log) = self.meta_log.borrow_mut().as_mut() {
            log.push((shard.clone(), update.clone()));
        }
        self.meta
            .borrow_mut()
            .entry(shard.clone())
            .or_default()
            .apply(update);
        Ok(())
    }

    async fn delete(&self, shard: &TableShardId) -> Result<(), MetaError> {
        yield_now().await;
        self.meta.borrow_mut().remove(shard);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
