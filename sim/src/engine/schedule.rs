//! Recorded schedules: the list of scheduling decisions of one run, so that
//! the run can be made again decision by decision (`bootsim run
//! --record-schedule FILE`, then `--replay-schedule FILE`).
//!
//! A decision names the task that was picked by its [`TaskId`]: the order in
//! which it was spawned in its executor. That stays valid where an index
//! into the ready set would not: the order of the ready queue is the
//! recording scheduler's business (the random pick swaps entries around,
//! PCT scans it by priority), while spawn numbers depend only on what the
//! run did, which a replay reproduces. So a replay re-makes the same polls in
//! the same order, whatever scheduler recorded them, and the trace hash is
//! the same. Every pick is recorded, including the rare pick of a stale
//! queue entry (a task that was killed while queued), so the replay's ready
//! set empties, and time advances, exactly when the recorded run's did.
//!
//! A schedule that does not fit the run — it ends while tasks are ready, or
//! names a task that is not ready — stops the run with a [`ReplayError`]
//! (never a panic): the schedule comes from another scenario, seed or
//! version of the code.
//!
//! The file format is text: comment lines starting with `#`, then one
//! decimal task number per line.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A task, by the order it was spawned in its executor (0 is the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The decisions of one run, in order (cheap to clone and to send to
/// another thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    decisions: Arc<[TaskId]>,
}

/// Why a replayed schedule could not go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "the recorded schedule ran out after {decisions} decisions while tasks were ready ({}): \
         it was recorded from a shorter or another run",
        list(ready)
    )]
    Exhausted {
        decisions: usize,
        ready: Vec<TaskId>,
    },
    #[error(
        "decision {decision} of the recorded schedule picks task {task}, which is not ready \
         (ready: {}): the schedule comes from another scenario, seed or version",
        list(ready)
    )]
    NotReady {
        decision: usize,
        task: TaskId,
        ready: Vec<TaskId>,
    },
}

fn list(tasks: &[TaskId]) -> String {
    let shown: Vec<String> = tasks.iter().take(10).map(TaskId::to_string).collect();
    let more = tasks.len().saturating_sub(shown.len());
    match more {
        0 => shown.join(", "),
        n => format!("{}, and {n} more", shown.join(", ")),
    }
}

/// A schedule file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}:{line}: `{text}` is not a task number (a schedule file has one per line)", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

impl Schedule {
    /// A schedule of these decisions, in order.
    pub fn new(decisions: Vec<TaskId>) -> Schedule {
        Schedule {
            decisions: decisions.into(),
        }
    }

    /// The decisions, in order (one task per scheduling step).
    pub fn decisions(&self) -> &[TaskId] {
        &self.decisions
    }

    /// The file text: `header` lines as comments, then one task per line.
    pub fn to_text(&self, header: &[String]) -> String {
        let mut out = String::with_capacity(8 * self.decisions.len());
        for line in header {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        for task in self.decisions.iter() {
            out.push_str(&task.0.to_string());
            out.push('\n');
        }
        out
    }

    /// Parse a schedule file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Schedule, ScheduleFileError> {
        let mut decisions = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let task = line.parse().map_err(|_| ScheduleFileError::BadLine {
                path: path.to_path_buf(),
                line: i + 1,
                text: line.to_string(),
            })?;
            decisions.push(TaskId(task));
        }
        Ok(Schedule::new(decisions))
    }

    /// Read a schedule file (`--record-schedule` writes them).
    pub fn load(path: &Path) -> Result<Schedule, ScheduleFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Schedule::parse(path, &text)
    }

    /// Write the schedule to `path`, after `header` comment lines.
    pub fn save(&self, path: &Path, header: &[String]) -> Result<(), ScheduleFileError> {
        std::fs::write(path, self.to_text(header)).map_err(|source| ScheduleFileError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_bad_lines_are_named() {
        let s = Schedule::new(vec![TaskId(0), TaskId(7), TaskId(7), TaskId(12)]);
        let text = s.to_text(&["scenario x, seed 3".into()]);
        assert!(text.starts_with("# scenario x, seed 3\n0\n7\n"), "{text}");
        assert_eq!(Schedule::parse(Path::new("s.txt"), &text).unwrap(), s);
        let err = Schedule::parse(Path::new("s.txt"), "# h\n1\n\nname = \"x\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.txt:4: `name = \"x\"` is not a task number (a schedule file has one per line)"
        );
    }

    #[test]
    fn long_ready_lists_are_cut() {
        let e = ReplayError::Exhausted {
            decisions: 3,
            ready: (0..12).map(TaskId).collect(),
        };
        assert!(e.to_string().contains("#9, and 2 more"), "{e}");
    }
}
