//! The fake upstream log: records per table shard in offset order, and a
//! switch that makes reads fail.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use crate::env::{UpstreamError, UpstreamLog};
use crate::model::Record;
use crate::types::{Offset, TableShardId};

#[derive(Default)]
struct UpstreamState {
    logs: BTreeMap<TableShardId, Vec<Record>>,
    unavailable: bool,
}

/// The upstream log: records per table shard, in offset order.
#[derive(Clone, Default)]
pub(crate) struct FakeUpstream(Rc<RefCell<UpstreamState>>);

impl FakeUpstream {
    /// Append records (keep offsets increasing).
    pub(crate) fn push(&self, shard: TableShardId, records: impl IntoIterator<Item = Record>) {
        self.0
            .borrow_mut()
            .logs
            .entry(shard)
            .or_default()
            .extend(records);
    }

    pub(crate) fn set_unavailable(&self, unavailable: bool) {
        self.0.borrow_mut().unavailable = unavailable;
    }
}

impl UpstreamLog for FakeUpstream {
    fn read(
        &self,
        shard: &TableShardId,
        from: Offset,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Record>, UpstreamError>> {
        let state = self.0.borrow();
        let result = if state.unavailable {
            Err(UpstreamError::Unavailable)
        } else {
            Ok(state
                .logs
                .get(shard)
                .map(|log| {
                    log.iter()
                        .filter(|r| r.offset >= from)
                        .take(max)
                        .copied()
                        .collect()
                })
                .unwrap_or_default())
        };
        async move { result }
    }
}
