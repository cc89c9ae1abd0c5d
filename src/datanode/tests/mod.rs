//! Tests of the data node, each driving one node (`N1`) in a [`FakeWorld`]
//! with `N2` as the copy source when it serves: `assign` (the shard set and
//! restart), `loops` (retries and quirk Q14, availability and quirk Q13,
//! readiness, ingestion and jobs). This file holds the shared set-up.

mod assign;
mod loops;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

pub(super) use super::*;
use crate::env::Env;
use crate::fake::{FakeEnv, FakeWorld};
use crate::model::{
    BatchMeta, ColumnSchema, Cutoff, FileKey, Record, ShardMeta, TableSchema, encode_vector_party,
};
use crate::options::Options;
use crate::quirks::{Quirk, Quirks};
use crate::table_shard::BootstrapState;
use crate::trace_capture::Capture;
use crate::types::{
    BatchId, ColumnId, Day, NodeId, Offset, ShardId, ShardState, TableKind, TableShardId, Timestamp,
};

const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);
const DAY_SECS: u64 = 86_400;
const STEP: Duration = Duration::from_millis(100);

use ShardState::{Available, Initializing};

fn schema(name: &str, kind: TableKind) -> TableSchema {
    TableSchema {
        name: name.into(),
        kind,
        retention_days: 0,
        columns: (0..2)
            .map(|c| ColumnSchema {
                id: ColumnId(c),
                deleted: false,
                // 0 (no preload) trips a range bug in store/preload.rs.
                preloading_days: 1,
            })
            .collect(),
    }
}

fn fact(name: &str) -> TableSchema {
    schema(name, TableKind::Fact)
}

fn dim(name: &str) -> TableSchema {
    schema(name, TableKind::Dimension)
}

fn id(table: &str, shard: u32) -> TableShardId {
    TableShardId::new(table, ShardId(shard))
}

fn q(quirks: &[Quirk]) -> Options {
    Options {
        quirks: quirks.iter().copied().collect::<Quirks>(),
        ..Options::default()
    }
}

/// A world at day 1 whose view has `tables` and, per shard, its replicas.
fn world(tables: &[TableSchema], shards: &[(u32, &[(NodeId, ShardState)])]) -> FakeWorld {
    let w = FakeWorld::new(11);
    w.net().set_now(Timestamp::from_secs(DAY_SECS + 100));
    w.net().cluster().update(|v| {
        for t in tables {
            v.tables.insert(t.name.clone(), t.clone());
        }
        for (shard, replicas) in shards {
            v.placement
                .shards
                .insert(ShardId(*shard), replicas.iter().copied().collect());
        }
    });
    w
}

/// Set `node`'s replica of `shard` to `state` (`None`: remove it).
fn set_replica(w: &FakeWorld, shard: u32, node: NodeId, state: Option<ShardState>) {
    w.net().cluster().update(|v| {
        let replicas = v.placement.shards.entry(ShardId(shard)).or_default();
        match state {
            Some(s) => {
                replicas.insert(node, s);
            }
            None => {
                replicas.remove(&node);
            }
        }
    });
}

fn start(w: &mut FakeWorld, options: Options) -> Rc<DataNode<FakeEnv>> {
    let dn = DataNode::new(w.host(N1), options);
    dn.start();
    w.run_until_stalled();
    dn
}

/// Let virtual time pass in small steps, running everything due.
fn run_for(w: &mut FakeWorld, d: Duration) {
    let steps = d.as_millis() / STEP.as_millis();
    for _ in 0..steps {
        w.advance(STEP);
    }
}

fn files_of(env: &FakeEnv, shard: &TableShardId) -> Vec<FileKey> {
    env.disk()
        .keys()
        .into_iter()
        .filter(|k| k.shard() == shard)
        .collect()
}

/// A file no metadata refers to: left alone by a local bootstrap, gone
/// after a purge.
fn stray_file(shard: &TableShardId) -> FileKey {
    FileKey::VectorParty {
        shard: shard.clone(),
        batch: BatchId(0),
        version: Cutoff(1),
        seq: 7,
        column: ColumnId(0),
    }
}

fn stale_meta() -> ShardMeta {
    ShardMeta {
        cutoff: Cutoff(5),
        ..ShardMeta::default()
    }
}

/// Give `node` one archived batch (day 0) of `table`/`shard` with `rows`
/// rows in both columns, so a copy from it streams two vector parties.
fn seed_peer(w: &FakeWorld, node: NodeId, shard: &TableShardId, rows: u64) {
    let env = w.host(node);
    let cutoff = Cutoff(DAY_SECS as u32);
    let records: Vec<Record> = (0..rows)
        .map(|o| Record {
            offset: Offset(o),
            day: Day(0),
            key: o as u32,
        })
        .collect();
    let meta = BatchMeta {
        version: cutoff,
        seq: 0,
        size: rows as u32,
    };
    env.metastore().set(
        shard.clone(),
        ShardMeta {
            commit_offset: Offset(rows),
            checkpoint_offset: Offset(rows),
            cutoff,
            batches: BTreeMap::from([(BatchId(0), meta)]),
            ..ShardMeta::default()
        },
    );
    for c in 0..2 {
        let key = FileKey::VectorParty {
            shard: shard.clone(),
            batch: BatchId(0),
            version: cutoff,
            seq: 0,
            column: ColumnId(c),
        };
        env.disk()
            .put(key, encode_vector_party(&records, ColumnId(c)));
    }
}
