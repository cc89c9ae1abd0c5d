//! Ingestion from the upstream log and recovery (bootstrap step 7).
//!
//! Ingestion order (docs/MODEL.md §1): read at the commit offset, append to
//! the redo log, sync, advance the commit offset, apply to the live store.
//! The commit offset therefore never claims a record the redo log does not
//! hold.
//!
//! Redo files are named by the offset of their first record and hold at most
//! [`super::StoreConfig::redo_file_records`] records; after a start, a
//! recovery or a failed append, ingestion begins a fresh file, so a torn
//! tail is only ever at the end of a file that is not appended to again.

use crate::buggify;
use crate::env::{Disk, Env, OpenMode, UpstreamLog, WriteFile};
use crate::model::{FileKey, MetaWrite, Record, RedoPosition};
use crate::probe::Probe;
use crate::types::Offset;

use super::codec::{decode_redo, encode_redo};
use super::{RedoCursor, ShardStore, StoreError, before_cutoff, redo_offset};

impl<E: Env> ShardStore<E> {
    /// Ingest up to `max` records from the upstream log at the commit offset.
    /// Returns how many were ingested (0 at the head of the log).
    pub async fn ingest(&self, max: usize) -> Result<usize, StoreError> {
        let _guard = self.work.lock().await;
        let from = self.commit_offset();
        let mut read = self.env.upstream().read(&self.id, from, max).await?;
        if self.env.buggify(buggify::INGEST_SHORT_READ) {
            read.truncate(read.len() / 2);
        }
        let records = contiguous_from(read, from, None);
        let Some(last) = records.last().copied() else {
            return Ok(0);
        };
        if let Err(e) = self.append_redo(&records).await {
            self.mem.borrow_mut().redo = None;
            return Err(e);
        }
        let commit = last.offset.next();
        self.write_meta(MetaWrite::CommitOffset(commit)).await?;
        self.apply_records(&records, false);
        // The run's most frequent event: plain values, which a trace
        // records without the formatting machinery (same text as Display).
        tracing::debug!(
            table = self.id.table.as_str(),
            shard = self.id.shard.0,
            records = records.len(),
            commit = commit.0,
            "records_ingested"
        );
        Ok(records.len())
    }

    /// Bootstrap step 7: replay the records in `[checkpoint, commit)` into
    /// memory. A shard that was just copied from a peer has no local redo log
    /// for them, so `from_upstream` replays them from the upstream log and
    /// appends them to the local redo log (so a later restart can recover
    /// locally); so does a local log that lacks some of them. Returns the
    /// number of records replayed.
    pub async fn recover(&self, from_upstream: bool) -> Result<usize, StoreError> {
        let _guard = self.work.lock().await;
        let (checkpoint, commit) = {
            let mem = self.mem.borrow();
            (mem.meta.checkpoint_offset, mem.meta.commit_offset)
        };
        let local = if from_upstream {
            None
        } else {
            self.replay_local(checkpoint, commit).await?
        };
        let replayed = match local {
            Some(replayed) => {
                if replayed > 0 {
                    Probe::RecoveryReplayedRedoLog.hit();
                }
                replayed
            }
            None => self.replay_upstream(checkpoint, commit).await?,
        };
        tracing::info!(
            table = %self.id.table,
            shard = %self.id.shard,
            from = %checkpoint,
            to = %commit,
            records = replayed,
            source = if local.is_some() { "redo_log" } else { "upstream" },
            "redo_log_replayed"
        );
        Ok(replayed)
    }

    async fn replay_upstream(
        &self,
        checkpoint: Offset,
        commit: Offset,
    ) -> Result<usize, StoreError> {
        let mut next = checkpoint;
        let mut replayed = 0;
        while next < commit {
            let want = (commit.0 - next.0).min(self.config.upstream_read_max as u64) as usize;
            let read = self.env.upstream().read(&self.id, next, want).await?;
            let records = contiguous_from(read, next, Some(commit));
            let Some(last) = records.last().copied() else {
                return Err(StoreError::ReplayShort {
                    reached: next,
                    commit,
                });
            };
            if let Err(e) = self.append_redo(&records).await {
                self.mem.borrow_mut().redo = None;
                return Err(e);
            }
            self.apply_records(&records, true);
            replayed += records.len();
            next = last.offset.next();
        }
        Ok(replayed)
    }

    /// Replay `[checkpoint, commit)` from the local redo log; `None` when
    /// the log lacks some of those records.
    async fn replay_local(
        &self,
        checkpoint: Offset,
        commit: Offset,
    ) -> Result<Option<usize>, StoreError> {
        let files = self.redo_files();
        let mut found = std::collections::BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            let first = file_offset(*file);
            let end = files.get(i + 1).map(|f| file_offset(*f));
            // A file holds records from its id up to the next file's id.
            if first >= commit || end.is_some_and(|e| e <= checkpoint) {
                continue;
            }
            let key = FileKey::RedoLog {
                shard: self.id.clone(),
                file: *file,
            };
            let bytes = self.read_file(&key).await?;
            for r in decode_redo(&bytes) {
                if r.offset >= checkpoint && r.offset < commit {
                    found.insert(r.offset, r);
                }
            }
        }
        let expected = commit.0.saturating_sub(checkpoint.0) as usize;
        if found.len() < expected {
            // The metastore says these records were committed, so a hole
            // means a redo file was lost: never serve what is left as if it
            // were whole. The caller replays from the upstream log, which
            // holds every committed record, and rewrites the local log.
            tracing::info!(
                table = %self.id.table,
                shard = %self.id.shard,
                expected,
                found = found.len(),
                "redo_log_gap_found"
            );
            return Ok(None);
        }
        let records: Vec<Record> = found.into_values().collect();
        self.apply_records(&records, true);
        self.mem.borrow_mut().redo = None;
        Ok(Some(records.len()))
    }

    /// Append `records` to the redo log, starting new files as they fill.
    async fn append_redo(&self, records: &[Record]) -> Result<(), StoreError> {
        let per_file = self.config.redo_file_records.max(1);
        if self.mem.borrow().redo.is_none() {
            self.drop_uncommitted_redo(records[0].offset).await?;
        }
        let mut i = 0;
        while i < records.len() {
            let cursor = self.mem.borrow().redo;
            let (file, used, mode) = match cursor {
                Some(c) if c.records < per_file => (c.file, c.records, OpenMode::Append),
                // A fresh file holds only records at or after the commit
                // offset, so truncating a leftover of that name loses nothing.
                _ => (records[i].offset.0 as i64, 0, OpenMode::Truncate),
            };
            let n = ((per_file - used) as usize).min(records.len() - i);
            let chunk = &records[i..i + n];
            let key = FileKey::RedoLog {
                shard: self.id.clone(),
                file,
            };
            let disk_err = |source| StoreError::Disk {
                key: key.clone(),
                source,
            };
            let mut bytes = Vec::new();
            encode_redo(chunk, &mut bytes);
            let mut f = self.env.disk().open(&key, mode).await.map_err(disk_err)?;
            f.write(&bytes).await.map_err(disk_err)?;
            f.sync().await.map_err(disk_err)?;
            self.mem.borrow_mut().redo = Some(RedoCursor {
                file,
                records: used + n as u64,
            });
            i += n;
        }
        Ok(())
    }

    /// Before a fresh redo file is begun at `from` (after a start, a
    /// recovery or a failed append), delete every redo file named at or
    /// after it. Such a file is the leftover of an append that failed (a
    /// write error, a failed sync, a full disk) or was lost in a crash: by
    /// its name it holds only records at or after `from`, none of them
    /// committed. Left in place, it would break the rule purge and recovery
    /// rely on, that a file holds the records from its name up to the next
    /// file's name: the fresh file's records past the leftover's name would
    /// count as the leftover's, and be purged with it or missed by recovery.
    async fn drop_uncommitted_redo(&self, from: Offset) -> Result<(), StoreError> {
        for file in self.redo_files() {
            if file >= 0 && file as u64 >= from.0 {
                let key = FileKey::RedoLog {
                    shard: self.id.clone(),
                    file,
                };
                self.delete_file(&key).await?;
            }
        }
        Ok(())
    }

    /// Apply ingested (or replayed) records to memory. During a replay a
    /// late fact record already covered by the backfill progress is skipped:
    /// it is in its archive batch.
    fn apply_records(&self, records: &[Record], replay: bool) {
        let mut mem = self.mem.borrow_mut();
        let cutoff = mem.meta.cutoff;
        let backfilled = redo_offset(mem.meta.backfill);
        let commit = mem.meta.commit_offset;
        for r in records {
            if self.is_fact() {
                if before_cutoff(r.day, cutoff) {
                    if replay && r.offset < backfilled {
                        continue;
                    }
                    mem.late.insert(*r);
                } else {
                    mem.live.insert(*r);
                }
            } else {
                let newer = mem.keys.get(&r.key).is_none_or(|o| *o < r.offset);
                if newer {
                    mem.keys.insert(r.key, r.offset);
                }
            }
        }
        debug_assert!(records.iter().all(|r| r.offset < commit));
    }

    /// Ids of the shard's redo-log files, ascending.
    pub(super) fn redo_files(&self) -> Vec<i64> {
        let mut files: Vec<i64> = self
            .env
            .disk()
            .list(&self.id)
            .into_iter()
            .filter_map(|k| match k {
                FileKey::RedoLog { file, .. } => Some(file),
                _ => None,
            })
            .collect();
        files.sort_unstable();
        files
    }

    /// The redo position of upstream offset `o`: the local redo file that
    /// holds it and the index within that file (or a position of its own
    /// when no local file does).
    pub(super) fn position_of(&self, o: Offset) -> RedoPosition {
        let file = self
            .redo_files()
            .into_iter()
            .filter(|f| *f >= 0 && (*f as u64) <= o.0)
            .max();
        match file {
            Some(f) => match u32::try_from(o.0 - f as u64) {
                Ok(offset) => RedoPosition { file: f, offset },
                Err(_) => RedoPosition {
                    file: o.0 as i64,
                    offset: 0,
                },
            },
            None => RedoPosition {
                file: o.0 as i64,
                offset: 0,
            },
        }
    }
}

/// The records of `read` that continue the log at `from` without a gap,
/// stopping before `until`.
fn contiguous_from(mut read: Vec<Record>, from: Offset, until: Option<Offset>) -> Vec<Record> {
    let mut next = from;
    let fit = read
        .iter()
        .take_while(|r| {
            let fits = r.offset == next && until.is_none_or(|u| r.offset < u);
            next = next.next();
            fits
        })
        .count();
    read.truncate(fit);
    read
}

/// The offset of the first record of redo file `file`.
fn file_offset(file: i64) -> Offset {
    Offset(file.max(0) as u64)
}
