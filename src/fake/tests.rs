//! Tests of the fake world itself: disk open modes and crashes, the clock
//! and spawned tasks, the seeded RNG, the metastore's write log.

use std::time::Duration;

use super::*;
use crate::env::{Disk, Env, MetaStore, OpenMode, WriteFile};
use crate::model::{FileKey, MetaWrite};
use crate::types::BatchId;
use crate::types::{NodeId, Offset, ShardId, TableShardId, Timestamp};

fn key() -> FileKey {
    FileKey::RedoLog {
        shard: TableShardId::new("t", ShardId(1)),
        file: 1,
    }
}

async fn write(env: &FakeEnv, mode: OpenMode, data: &[u8], sync: bool) {
    let mut f = env.disk().open(&key(), mode).await.expect("open");
    f.write(data).await.expect("write");
    if sync {
        f.sync().await.expect("sync");
    }
}

#[test]
fn open_modes_truncate_overwrite_and_append() {
    let mut w = FakeWorld::new(1);
    let env = w.host(NodeId(1));
    w.run(async {
        write(&env, OpenMode::Truncate, b"abcdef", true).await;
        write(&env, OpenMode::Overwrite, b"XY", false).await;
        assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"XYcdef"[..]));
        write(&env, OpenMode::Append, b"gh", false).await;
        assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"XYcdefgh"[..]));
        write(&env, OpenMode::Truncate, b"z", false).await;
        assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"z"[..]));
    });
    env.disk().crash();
    assert_eq!(env.disk().get(&key()).as_deref(), Some(&b"abcdef"[..]));
}

#[test]
fn unsynced_file_vanishes_on_crash() {
    let mut w = FakeWorld::new(1);
    let env = w.host(NodeId(1));
    w.run(write(&env, OpenMode::Truncate, b"a", false));
    env.disk().crash();
    assert_eq!(env.disk().get(&key()), None);
}

#[test]
fn sleep_waits_for_the_clock_and_spawned_tasks_return_their_output() {
    let mut w = FakeWorld::new(1);
    let env = w.host(NodeId(1));
    let e = env.clone();
    let out = w.run(async move {
        let h = e.spawn("child", {
            let e = e.clone();
            async move {
                e.sleep(Duration::from_secs(5)).await;
                e.now()
            }
        });
        h.await
    });
    assert_eq!(out, Timestamp::from_secs(5));

    let e = env.clone();
    let task = w.spawn(async move { e.sleep(Duration::ZERO).await });
    w.run_until_stalled();
    w.fire_due();
    w.run(task);
    assert_eq!(env.now(), Timestamp::from_secs(5));
}

#[test]
fn rng_is_seeded_and_per_host() {
    let a = FakeWorld::new(7);
    let b = FakeWorld::new(7);
    let draws = |w: &FakeWorld, n| {
        (0..3)
            .map(|_| w.host(NodeId(n)).random_u64())
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(&a, 1), draws(&b, 1));
    assert_ne!(draws(&a, 2), draws(&b, 1));
}

#[test]
fn metastore_applies_and_records_writes_in_order() {
    let mut w = FakeWorld::new(1);
    let env = w.host(NodeId(1));
    let id = TableShardId::new("t", ShardId(1));
    let b = crate::model::BatchMeta {
        version: crate::model::Cutoff(3),
        seq: 1,
        size: 2,
    };
    w.run(async {
        let m = env.metastore();
        m.write(&id, MetaWrite::CommitOffset(Offset(4)))
            .await
            .expect("write");
        m.write(
            &id,
            MetaWrite::BatchVersion {
                batch: BatchId(9),
                meta: b,
            },
        )
        .await
        .expect("write");
    });
    let meta = env.metastore().get(&id);
    assert_eq!(meta.commit_offset, Offset(4));
    assert_eq!(meta.batches.get(&BatchId(9)), Some(&b));
    assert_eq!(env.metastore().writes().len(), 2);
}
