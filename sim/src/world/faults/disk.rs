//! Disk faults as [`crate::world::disk::NodeDisk`] meets them: I/O errors on read,
//! write and sync, a full disk, and silent corruption of stored files
//! (detected as a checksum mismatch only when checksums are on; the
//! corruption itself is [`super::corruption`]).
//!
//! A failed write writes nothing; a failed sync leaves the data not
//! durable. Torn writes at a crash are [`crate::world::disk::NodeDisk::crash_torn`].

use std::rc::Rc;

use shardboot::env::DiskError;
use shardboot::model::FileKey;

use super::{DiskFaultConfig, Draws, FaultKind};

/// The disk-fault switches and streams every disk of a world shares. The
/// default injects nothing and has no checksums.
#[derive(Clone, Debug, Default)]
pub struct DiskFaults {
    inner: Option<Rc<(DiskFaultConfig, Draws)>>,
}

impl DiskFaults {
    pub(crate) fn new(config: DiskFaultConfig, draws: Draws) -> DiskFaults {
        DiskFaults {
            inner: Some(Rc::new((config, draws))),
        }
    }

    /// Whether files carry checksums (reads detect corruption).
    pub fn checksums(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.0.checksums)
    }

    /// The first of `kinds` that fires now, traced against `key`.
    fn fault(&self, key: &FileKey, kinds: &[FaultKind]) -> Option<FaultKind> {
        let (config, draws) = &**self.inner.as_ref()?;
        let kind = kinds.iter().copied().find(|k| {
            let ratio = match k {
                FaultKind::DiskReadEio => config.read_eio,
                FaultKind::DiskWriteEio => config.write_eio,
                FaultKind::DiskSyncFail => config.sync_fail,
                _ => config.enospc,
            };
            draws.fires(*k, ratio)
        })?;
        tracing::info!(target: "sim::fault", kind = kind.label(), file = ?key, "fault_injected");
        Some(kind)
    }

    /// The error a read of `key` meets now, if any.
    pub fn read_error(&self, key: &FileKey) -> Option<DiskError> {
        self.fault(key, &[FaultKind::DiskReadEio])
            .map(|_| DiskError::Io)
    }

    /// The error a write to `key` meets now, if any.
    pub fn write_error(&self, key: &FileKey) -> Option<DiskError> {
        self.fault(key, &[FaultKind::DiskWriteEio, FaultKind::DiskEnospc])
            .map(|k| match k {
                FaultKind::DiskEnospc => DiskError::NoSpace,
                _ => DiskError::Io,
            })
    }

    /// The error a sync of `key` meets now, if any.
    pub fn sync_error(&self, key: &FileKey) -> Option<DiskError> {
        self.fault(key, &[FaultKind::DiskSyncFail])
            .map(|_| DiskError::Io)
    }
}
