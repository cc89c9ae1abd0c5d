//! The fake disk of one host: in-memory files, each with a durable copy
//! updated at `sync` (what survives [`FakeDisk::crash`]), and per-file
//! faults a test switches on and off. Completes without yielding.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use crate::env::{Disk, DiskError, FileBytes, OpenMode, WriteFile};
use crate::model::FileKey;
use crate::types::TableShardId;

/// A file's content and its durable copy (what survives a crash).
#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    durable: Option<Vec<u8>>,
}

#[derive(Default)]
struct DiskState {
    files: BTreeMap<FileKey, Rc<RefCell<Inode>>>,
    faults: BTreeMap<FileKey, DiskError>,
}

/// In-memory files. Deleting or renaming unlinks the name at once; an open
/// handle keeps writing to its (possibly unlinked) inode.
#[derive(Clone, Default)]
pub(crate) struct FakeDisk(Rc<RefCell<DiskState>>);

impl FakeDisk {
    fn fault(&self, key: &FileKey) -> Result<(), DiskError> {
        match self.0.borrow().faults.get(key) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Every operation on `key` fails with `err` until [`FakeDisk::heal`].
    pub(crate) fn fail_key(&self, key: FileKey, err: DiskError) {
        self.0.borrow_mut().faults.insert(key, err);
    }

    pub(crate) fn heal(&self, key: &FileKey) {
        self.0.borrow_mut().faults.remove(key);
    }

    /// Test set-up: a durable file with `bytes`.
    pub(crate) fn put(&self, key: FileKey, bytes: Vec<u8>) {
        let inode = Inode {
            durable: Some(bytes.clone()),
            data: bytes,
        };
        self.0
            .borrow_mut()
            .files
            .insert(key, Rc::new(RefCell::new(inode)));
    }

    /// The current (possibly unsynced) content of `key`.
    pub(crate) fn get(&self, key: &FileKey) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .files
            .get(key)
            .map(|i| i.borrow().data.clone())
    }

    /// What of `key` would survive a crash now.
    pub(crate) fn durable(&self, key: &FileKey) -> Option<Vec<u8>> {
        self.0
            .borrow()
            .files
            .get(key)
            .and_then(|i| i.borrow().durable.clone())
    }

    /// Every file name, in order.
    pub(crate) fn keys(&self) -> Vec<FileKey> {
        self.0.borrow().files.keys().cloned().collect()
    }

    /// Lose everything not synced: files never synced vanish, the others
    /// fall back to their durable copy.
    pub(crate) fn crash(&self) {
        self.0.borrow_mut().files.retain(|_, inode| {
            let mut i = inode.borrow_mut();
            match i.durable.clone() {
                Some(d) => {
                    i.data = d;
                    true
                }
                None => false,
            }
        });
    }
}

impl Disk for FakeDisk {
    type File = FakeFile;

    fn open(
        &self,
        key: &FileKey,
        mode: OpenMode,
    ) -> impl Future<Output = Result<FakeFile, DiskError>> {
        let result = self.fault(key).map(|()| {
            let inode = Rc::clone(self.0.borrow_mut().files.entry(key.clone()).or_default());
            let pos = match mode {
                OpenMode::Truncate => {
                    inode.borrow_mut().data.clear();
                    0
                }
                OpenMode::Overwrite => 0,
                OpenMode::Append => inode.borrow().data.len(),
            };
            FakeFile {
                disk: self.clone(),
                key: key.clone(),
                inode,
                pos,
            }
        });
        async move { result }
    }

    fn read(&self, key: &FileKey) -> impl Future<Output = Result<FileBytes, DiskError>> {
        let result = self
            .fault(key)
            .and_then(|()| self.get(key).map(FileBytes::new).ok_or(DiskError::NotFound));
        async move { result }
    }

    fn list(&self, shard: &TableShardId) -> Vec<FileKey> {
        self.0
            .borrow()
            .files
            .keys()
            .filter(|k| k.shard() == shard)
            .cloned()
            .collect()
    }

    fn delete(&self, key: &FileKey) -> impl Future<Output = Result<(), DiskError>> {
        let result = self.fault(key).and_then(|()| {
            self.0
                .borrow_mut()
                .files
                .remove(key)
                .map(|_| ())
                .ok_or(DiskError::NotFound)
        });
        async move { result }
    }

    fn rename(&self, from: &FileKey, to: &FileKey) -> impl Future<Output = Result<(), DiskError>> {
        let result = self
            .fault(from)
            .and_then(|()| self.fault(to))
            .and_then(|()| {
                let mut state = self.0.borrow_mut();
                let inode = state.files.remove(from).ok_or(DiskError::NotFound)?;
                state.files.insert(to.clone(), inode);
                Ok(())
            });
        async move { result }
    }
}

/// An open file: writes go at `pos` (overwriting, then extending).
pub(crate) struct FakeFile {
    disk: FakeDisk,
    key: FileKey,
    inode: Rc<RefCell<Inode>>,
    pos: usize,
}

impl WriteFile for FakeFile {
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<(), DiskError>> {
        let result = self.disk.fault(&self.key).map(|()| {
            let mut inode = self.inode.borrow_mut();
            let end = self.pos + data.len();
            if inode.data.len() < end {
                inode.data.resize(end, 0);
            }
            inode.data[self.pos..end].copy_from_slice(data);
            self.pos = end;
        });
        async move { result }
    }

    fn sync(&mut self) -> impl Future<Output = Result<(), DiskError>> {
        let result = self.disk.fault(&self.key).map(|()| {
            let mut inode = self.inode.borrow_mut();
            inode.durable = Some(inode.data.clone());
        });
        async move { result }
    }
}
