//! Unit tests of [`super`] (`disk`).

use shardboot::types::ShardId;

use super::*;
use crate::engine::executor::{Executor, Limits, Scheduler};

fn key(file: i64) -> FileKey {
    FileKey::RedoLog {
        shard: TableShardId::new("t", ShardId(0)),
        file,
    }
}

/// A disk with one synced file (`1`), one unsynced (`2`) and metadata.
fn disk() -> NodeDisk {
    let disk = NodeDisk::default();
    let d = disk.clone();
    let mut ex = Executor::new(SimRng::new(1), Scheduler::Fifo);
    ex.spawn("setup", None, async move {
        let mut f = d.open(&key(1), OpenMode::Truncate).await.unwrap();
        f.write(b"synced").await.unwrap();
        f.sync().await.unwrap();
        let mut g = d.open(&key(2), OpenMode::Truncate).await.unwrap();
        g.write(b"unsynced").await.unwrap();
        let shard = TableShardId::new("t", ShardId(0));
        d.write(&shard, MetaWrite::CommitOffset(Offset(7)))
            .await
            .unwrap();
    });
    ex.run(Limits::default());
    disk
}

/// A whole new file written from shared bytes keeps them (no copy), a
/// shared write into a file that has content copies, and a change to a
/// shared file leaves the writer's bytes alone.
#[test]
fn shared_bytes_are_kept_by_a_new_file_and_copied_before_a_change() {
    let d = disk();
    let mine = FileBytes::new(b"batch".to_vec());
    let (d2, shared) = (d.clone(), mine.clone());
    let mut ex = Executor::new(SimRng::new(1), Scheduler::Fifo);
    ex.spawn("writer", None, async move {
        let mut f = d2.open(&key(3), OpenMode::Truncate).await.unwrap();
        f.write_shared(FileBytes::clone(&shared)).await.unwrap();
        let mut g = d2.open(&key(1), OpenMode::Append).await.unwrap();
        g.write_shared(FileBytes::clone(&shared)).await.unwrap();
        // At the start of a file that has content: written over, the
        // rest kept.
        let mut h = d2.open(&key(2), OpenMode::Overwrite).await.unwrap();
        h.write_shared(shared).await.unwrap();
    });
    ex.run(Limits::default());
    let new = d.contents(&key(3)).unwrap();
    assert!(Rc::ptr_eq(&new, &mine), "a whole new file shares the bytes");
    let appended = d.contents(&key(1)).unwrap();
    assert_eq!(appended.as_slice(), b"syncedbatch");
    assert!(!Rc::ptr_eq(&appended, &mine));
    let over = d.contents(&key(2)).unwrap();
    assert_eq!(over.as_slice(), b"batchced");
    assert!(d.corrupt(&key(3), 0, 0xff));
    assert_eq!(
        mine.as_slice(),
        b"batch",
        "the writer's bytes are not changed"
    );
    assert_eq!(d.contents(&key(3)).unwrap()[0], b'b' ^ 0xff);
}

#[test]
fn erase_empties_files_and_metastore() {
    let d = disk();
    d.erase();
    assert!(d.file_names().is_empty());
    assert_eq!(
        d.meta(&TableShardId::new("t", ShardId(0))),
        ShardMeta::default()
    );
}

#[test]
fn a_copied_disk_reads_the_same_and_survives_a_crash_whole() {
    let from = disk();
    let to = NodeDisk::default();
    to.copy_from(&from);
    assert_eq!(to.file_names(), vec![key(1), key(2)]);
    to.crash();
    assert_eq!(
        to.contents(&key(2)).as_deref().map(Vec::as_slice),
        Some(&b"unsynced"[..])
    );
    let shard = TableShardId::new("t", ShardId(0));
    assert_eq!(to.meta(&shard), from.meta(&shard));
    // The copy is independent of its source.
    from.erase();
    assert_eq!(
        to.contents(&key(1)).as_deref().map(Vec::as_slice),
        Some(&b"synced"[..])
    );
}

/// Run `writes` (open mode, bytes written, sync after?) on file 1
/// of [`disk`] ("synced"), crash, and return what survived.
fn after_crash(writes: &'static [(OpenMode, &'static [u8], bool)]) -> Vec<u8> {
    let disk = disk();
    let d = disk.clone();
    let mut ex = Executor::new(SimRng::new(1), Scheduler::Fifo);
    ex.spawn("writes", None, async move {
        for (mode, bytes, sync) in writes {
            let mut f = d.open(&key(1), *mode).await.unwrap();
            f.write(bytes).await.unwrap();
            if *sync {
                f.sync().await.unwrap();
            }
        }
    });
    ex.run(Limits::default());
    disk.crash();
    disk.contents(&key(1))
        .map(Rc::unwrap_or_clone)
        .unwrap_or_default()
}

#[test]
fn a_torn_crash_keeps_a_prefix_of_unsynced_writes_and_leaves_synced_files_alone() {
    let disk = disk();
    let d = disk.clone();
    let mut ex = Executor::new(SimRng::new(1), Scheduler::Fifo);
    ex.spawn("writes", None, async move {
        let mut f = d.open(&key(1), OpenMode::Append).await.unwrap();
        f.write(b"+abc").await.unwrap();
        let mut g = d.open(&key(3), OpenMode::Truncate).await.unwrap();
        g.write(b"whole").await.unwrap();
        g.sync().await.unwrap();
    });
    ex.run(Limits::default());
    let mut rng = SimRng::new(7);
    let ((), trace) = crate::engine::trace::record(crate::engine::trace::Keep::All, || {
        disk.crash_torn(&mut rng)
    });
    // Files 1 and 2 had unsynced writes; file 3 was synced whole.
    let torn = trace
        .events()
        .filter(|e| e.field("kind") == Some("torn_write"))
        .count();
    assert_eq!(torn, 2);
    assert_eq!(
        disk.contents(&key(3)).as_deref().map(Vec::as_slice),
        Some(&b"whole"[..])
    );
    // A synced prefix survives whole; of the rest, a prefix.
    let one = disk
        .contents(&key(1))
        .map(Rc::unwrap_or_clone)
        .unwrap_or_default();
    assert!(one.len() >= 6 && b"synced+abc".starts_with(&one), "{one:?}");
    let two = disk
        .contents(&key(2))
        .map(Rc::unwrap_or_clone)
        .unwrap_or_default();
    assert!(b"unsynced".starts_with(&two), "{two:?}");
    // What the torn crash left is durable.
    let left = disk.file_names();
    disk.crash();
    assert_eq!(disk.file_names(), left);
    assert_eq!(
        disk.contents(&key(1))
            .map(Rc::unwrap_or_clone)
            .unwrap_or_default(),
        one
    );
}

#[test]
fn a_sync_makes_exactly_the_current_content_durable() {
    use OpenMode::{Append, Overwrite, Truncate};
    type Case = (&'static [(OpenMode, &'static [u8], bool)], &'static [u8]);
    let cases: [Case; 7] = [
        // Appends, overwrites below the synced length and truncation
        // all reach the durable copy, whatever a sync copied before.
        (&[(Append, b"+", true)], b"synced+"),
        (&[(Overwrite, b"SY", true)], b"SYnced"),
        (&[(Truncate, b"new", true)], b"new"),
        (
            &[
                (Append, b"+", true),
                (Overwrite, b"S", true),
                (Append, b"!", false),
            ],
            b"Synced+",
        ),
        // Unsynced writes are lost, overwrites and truncation included.
        (&[(Overwrite, b"XX", false)], b"synced"),
        (&[(Truncate, b"new", false)], b"synced"),
        (
            &[
                (Append, b"+", true),
                (Truncate, b"", false),
                (Append, b"abc", false),
            ],
            b"synced+",
        ),
    ];
    for (writes, survives) in cases {
        assert_eq!(after_crash(writes), survives, "{writes:?}");
    }
}
