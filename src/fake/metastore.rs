//! The fake metastore of one host: shard metadata in memory, every write
//! recorded in order, and a switch that makes every call fail.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use crate::env::{MetaError, MetaStore};
use crate::model::{MetaWrite, ShardMeta};
use crate::types::TableShardId;

#[derive(Default)]
struct MetaState {
    shards: BTreeMap<TableShardId, ShardMeta>,
    writes: Vec<(TableShardId, MetaWrite)>,
    failing: bool,
}

/// In-memory metastore that records every write in order.
#[derive(Clone, Default)]
pub(crate) struct FakeMetaStore(Rc<RefCell<MetaState>>);

impl FakeMetaStore {
    /// Test set-up: store `meta` (not recorded as a write).
    pub(crate) fn set(&self, shard: TableShardId, meta: ShardMeta) {
        self.0.borrow_mut().shards.insert(shard, meta);
    }

    /// Apply a write now, without recording it (a background job's update).
    pub(crate) fn apply(&self, shard: &TableShardId, update: MetaWrite) {
        self.0
            .borrow_mut()
            .shards
            .entry(shard.clone())
            .or_default()
            .apply(update);
    }

    pub(crate) fn get(&self, shard: &TableShardId) -> ShardMeta {
        self.0
            .borrow()
            .shards
            .get(shard)
            .cloned()
            .unwrap_or_default()
    }

    /// Every write made through the [`MetaStore`] trait, in order.
    pub(crate) fn writes(&self) -> Vec<(TableShardId, MetaWrite)> {
        self.0.borrow().writes.clone()
    }

    /// Every later read, write and delete fails with an I/O error.
    pub(crate) fn set_failing(&self, failing: bool) {
        self.0.borrow_mut().failing = failing;
    }

    fn check(&self) -> Result<(), MetaError> {
        if self.0.borrow().failing {
            Err(MetaError::Io)
        } else {
            Ok(())
        }
    }
}

impl MetaStore for FakeMetaStore {
    fn read(&self, shard: &TableShardId) -> impl Future<Output = Result<ShardMeta, MetaError>> {
        let result = self.check().map(|()| self.get(shard));
        async move { result }
    }

    fn write(
        &self,
        shard: &TableShardId,
        update: MetaWrite,
    ) -> impl Future<Output = Result<(), MetaError>> {
        let result = self.check().map(|()| {
            let mut state = self.0.borrow_mut();
            state.writes.push((shard.clone(), update.clone()));
            state.shards.entry(shard.clone()).or_default().apply(update);
        });
        async move { result }
    }

    fn delete(&self, shard: &TableShardId) -> impl Future<Output = Result<(), MetaError>> {
        let result = self.check().map(|()| {
            self.0.borrow_mut().shards.remove(shard);
        });
        async move { result }
    }
}
