//! Loading a scenario: parsing, validation that names the file, line and
//! field of the first problem ([`ScenarioError`]), and the views a run
//! derives from a valid scenario (quirk set, bootstrap options, bounds).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use shardboot::options::Options;
use shardboot::quirks::{Quirk, Quirks};
use thiserror::Error;
use toml::Spanned;

use crate::world::node_name::NodeName;

use super::step::Action;
use super::{POLLS_PER_VIRTUAL_SECOND, Scenario};

/// Why a scenario file cannot be used.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML, or not the format (unknown field, wrong type).
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but cannot be used (e.g. more replicas than hosts).
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line of the field.
        line: usize,
        /// The field, as written in the file (`cluster.replicas`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// 1-based line and column of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

impl Scenario {
    /// Load and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(path, &text)
    }

    /// Parse and validate scenario text; `file` names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let (line, column) = position(text, e.span().map_or(0, |s| s.start));
            ScenarioError::Parse {
                file: file.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        scenario.validate(file, text)?;
        Ok(scenario)
    }

    fn validate(&self, file: &Path, text: &str) -> Result<(), ScenarioError> {
        // The line of `field` in the table whose header starts at `span`
        // (toml spans a `[[step]]` by its header), else the header's line.
        let invalid = |span: Range<usize>, field: &str, message: String| {
            let rest = text.get(span.start..).unwrap_or_default();
            let end = rest
                .get(1..)
                .and_then(|r| r.find("\n["))
                .map_or(rest.len(), |i| i + 1);
            let within = &rest[..end];
            let offset = within
                .find(&format!("{field} ="))
                .map_or(span.start, |i| span.start + i);
            ScenarioError::Invalid {
                file: file.to_path_buf(),
                line: position(text, offset).0,
                field: field.to_string(),
                message,
            }
        };
        // Sections that carry no span are located by their header's text.
        let at = |needle: &str| {
            let i = text.find(needle).unwrap_or(0);
            i..i
        };
        if let Err(message) = self.buggify.validate() {
            return Err(invalid(at("buggify"), "buggify", message));
        }
        let c = &self.cluster;
        if c.nodes == 0 || c.shards == 0 || c.replicas == 0 {
            return Err(invalid(
                at("[cluster]"),
                "cluster",
                "nodes, shards and replicas must all be at least 1".into(),
            ));
        }
        if c.replicas > c.nodes as usize {
            return Err(invalid(
                at("replicas"),
                "cluster.replicas",
                format!(
                    "{} replicas need at least as many nodes (have {})",
                    c.replicas, c.nodes
                ),
            ));
        }
        let mut names = BTreeMap::new();
        for t in &self.tables {
            let here = || at(&format!("\"{}\"", t.name));
            if names.insert(t.name.clone(), ()).is_some() {
                return Err(invalid(
                    here(),
                    "table.name",
                    format!("table `{}` defined twice", t.name),
                ));
            }
            if t.columns == 0 {
                return Err(invalid(
                    here(),
                    "table.columns",
                    format!("table `{}` needs at least one column", t.name),
                ));
            }
        }
        for q in &self.quirks {
            q.get_ref()
                .parse::<Quirk>()
                .map_err(|e| invalid(q.span(), "quirks", e.to_string()))?;
        }
        if let Err(bad) = self.faults.validate() {
            return Err(invalid(
                at(&format!("[{}]", bad.section)),
                bad.field,
                format!("in [{}]: {}", bad.section, bad.message),
            ));
        }
        if let Err((field, message)) = self.options.validate() {
            return Err(invalid(
                at("[options]"),
                field,
                format!("in [options]: {message}"),
            ));
        }
        let all = c.all_nodes();
        let known = |n: &NodeName, span: Range<usize>, field: &str| {
            if all.contains(&n.0) {
                Ok(())
            } else {
                Err(invalid(
                    span,
                    field,
                    format!(
                        "{} is not a node of this scenario (n1..n{})",
                        n.0,
                        all.len()
                    ),
                ))
            }
        };
        for step in &self.steps {
            let span = step.span();
            match &step.get_ref().action {
                Action::AddNode { node }
                | Action::RemoveNode { node }
                | Action::Retry { node }
                | Action::Crash { node, .. }
                | Action::Pause { node, .. }
                | Action::RestartEmpty { node } => known(node, span, "node")?,
                Action::RestartWithDiskOf { node, from } => {
                    known(node, span.clone(), "node")?;
                    known(from, span.clone(), "from")?;
                    if node == from {
                        return Err(invalid(
                            span,
                            "from",
                            "a host cannot restart with a copy of its own disk".into(),
                        ));
                    }
                }
                Action::ReplaceNode { old, new } => {
                    known(old, span.clone(), "old")?;
                    known(new, span, "new")?;
                }
                Action::RaiseReplicas { replicas } => {
                    if *replicas > all.len() {
                        return Err(invalid(
                            span,
                            "replicas",
                            format!(
                                "{replicas} replicas need {replicas} nodes (have {})",
                                all.len()
                            ),
                        ));
                    }
                }
                Action::Fault(f) => f
                    .check(&all, |t| names.contains_key(t), c.shards)
                    .map_err(|(field, message)| invalid(span, field, message))?,
                Action::BootstrapAgain { node, table, shard } => {
                    known(node, span.clone(), "node")?;
                    if !names.contains_key(table) {
                        return Err(invalid(
                            span,
                            "table",
                            format!("no table `{table}` in this scenario"),
                        ));
                    }
                    if *shard >= c.shards {
                        return Err(invalid(
                            span,
                            "shard",
                            format!("shard {shard} is out of range (0..{})", c.shards),
                        ));
                    }
                }
            }
            if step.get_ref().at > self.duration {
                return Err(invalid(
                    step.span(),
                    "at",
                    "step is after the end of the run (`duration`)".into(),
                ));
            }
        }
        if let Some(l) = &self.liveness
            && l.heal_at + l.within > self.duration
        {
            return Err(invalid(
                at("[liveness]"),
                "liveness.within",
                "heal_at + within must fit in the run's `duration`".into(),
            ));
        }
        Ok(())
    }

    /// The step bound of a run (see the `max_polls` field).
    pub fn max_polls(&self) -> u64 {
        self.max_polls
            .unwrap_or_else(|| 5_000_000 + 5_000 * self.duration.as_secs())
    }

    /// About how many scheduling steps (polls) a run makes: what a PCT
    /// scheduler spreads its change points over when not told (`pct:D`
    /// rather than `pct:D:K`). Measured on scenarios/*.toml, runs make 25 to
    /// 90 polls per virtual second, most about 80 (a 1h30m run: 430,000);
    /// the step bound [`Scenario::max_polls`] is two orders of magnitude
    /// above that, so change points drawn from it would almost all fall
    /// after the end of the run.
    pub fn estimated_steps(&self) -> u64 {
        (POLLS_PER_VIRTUAL_SECOND * self.duration.as_secs()).max(1)
    }

    /// Switches `quirk` on (as `bootsim swarm --quirk` does), unless the
    /// file already names it. The new entry has no source position: it came
    /// from the command line, not from the file.
    pub fn switch_on(&mut self, quirk: Quirk) {
        if !self.quirk_set().on(quirk) {
            self.quirks.push(Spanned::new(0..0, quirk.to_string()));
        }
    }

    /// Switches `quirk` off: the inverse of [`Scenario::switch_on`], how the
    /// quirk regression suite shows a file's violation is the quirk's doing
    /// (the same run with the quirk off must pass).
    pub fn switch_off(&mut self, quirk: Quirk) {
        self.quirks
            .retain(|q| q.get_ref().parse::<Quirk>().ok() != Some(quirk));
    }

    /// The quirks switched on (validated at load).
    pub fn quirk_set(&self) -> Quirks {
        self.quirks
            .iter()
            .filter_map(|q| q.get_ref().parse::<Quirk>().ok())
            .collect()
    }

    /// Bootstrap options: upstream defaults, overridden by the scenario.
    pub fn bootstrap_options(&self) -> Options {
        let d = Options::default();
        let o = &self.options;
        Options {
            max_concurrent_table_shards: o
                .max_concurrent_table_shards
                .unwrap_or(d.max_concurrent_table_shards),
            max_concurrent_streams_per_table_shard: o
                .max_concurrent_streams_per_table_shard
                .unwrap_or(d.max_concurrent_streams_per_table_shard),
            session_ttl: o.session_ttl.unwrap_or(d.session_ttl),
            ingest_interval: o.ingest_interval.unwrap_or(d.ingest_interval),
            quirks: self.quirk_set(),
            ..d
        }
    }
}
