//! The scenario file format (TOML): a cluster, its tables, a workload, a
//! timeline of operator steps, options, quirks and what the run should give.
//! Documented for users in `scenarios/README.md`.
//!
//! Loading validates everything a run relies on and reports the file, line
//! and field of the first problem; a run never starts from a bad file.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardboot::model::{ColumnSchema, TableSchema};
use shardboot::options::Options;
use shardboot::quirks::{Quirk, Quirks};
use shardboot::types::{ColumnId, NodeId, TableKind};
use thiserror::Error;
use toml::Spanned;

use crate::engine::duration;
use crate::engine::executor::Scheduler;
use crate::faults::steps::FaultAction;
use crate::world::buggify::BuggifyConfig;
use crate::world::faults::FaultConfig;
use crate::world::net::NetConfig;
use crate::world::node_name::NodeName;
use crate::world::state::Defect;
use crate::world::upstream::Workload;

/// A whole scenario file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What a run of this scenario must give (default: pass).
    #[serde(default)]
    pub expect: Expect,
    /// Virtual time the run lasts.
    #[serde(with = "duration")]
    pub duration: Duration,
    /// Upstream behaviours switched on (`["Q9"]`); default none.
    #[serde(default)]
    pub quirks: Vec<Spanned<String>>,
    /// BUGGIFY: `true`, or `{ enabled, activate, fire }`; default off (see
    /// [`crate::world::buggify`]).
    #[serde(
        default,
        deserialize_with = "crate::world::buggify::deserialize_config",
        skip_serializing_if = "BuggifyConfig::is_default"
    )]
    pub buggify: BuggifyConfig,
    pub cluster: ClusterSpec,
    #[serde(default, rename = "table")]
    pub tables: Vec<TableSpec>,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub network: NetConfig,
    /// Random faults the seed draws from (`[faults]`); default none.
    #[serde(default, skip_serializing_if = "FaultConfig::is_off")]
    pub faults: FaultConfig,
    #[serde(default)]
    pub options: OptionsSpec,
    #[serde(default, rename = "step")]
    pub steps: Vec<Spanned<Step>>,
    /// Whether `bootsim swarm` runs this scenario when no `--scenario` is
    /// given (default false: a scenario joins the swarm's mix by opting in).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swarm: bool,
    /// Bugs planted in the simulated world on purpose (tests of the oracle
    /// and of the swarm/replay/shrink pipeline), e.g.
    /// `["empty_first_fact_raw_data_stream"]`; default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defects: Vec<Defect>,
    /// Bound on scheduling steps (polls) for the whole run; reaching it
    /// ends the run with a `liveness` violation ("exceeded its step
    /// bound"). Default: 5,000,000 + 5,000 per virtual second — generous (a
    /// fault-free 2 h run makes well under a million), it only stops a run
    /// that spins without letting virtual time advance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_polls: Option<u64>,
    /// The liveness phase (after TigerBeetle's VOPR): at `heal_at` every
    /// fault stops and heals; then the cluster must converge within
    /// `within`. Absent: convergence is checked at the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessSpec>,
    /// The scheduler runs of this scenario use (`"random"`, `"fifo"`,
    /// `"pct:3"`, see [`crate::engine::scheduler`]) unless the command line names
    /// one; absent: random (the swarm draws one per seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<Scheduler>,
    /// How a recorded run is reproduced: set in failure artifacts and
    /// regression files (`[replay]`), absent in hand-written scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplaySpec>,
}

/// `[replay]`: the seed (and scheduler) a recorded run used, and its trace
/// hash. `bootsim run` and the regression suite use this seed when none is
/// given; `bootsim replay` also checks the hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    pub seed: u64,
    /// `random` (default), `fifo` or `pct:D:K` (see [`crate::engine::scheduler`]).
    #[serde(default)]
    pub scheduler: Scheduler,
    /// Trace hash of the recorded run (16 hex digits); changes whenever the
    /// code under test or the simulator changes what a run does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
}

/// When faults stop and how long convergence may take afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessSpec {
    /// From the start of the run.
    #[serde(with = "duration")]
    pub heal_at: Duration,
    /// Virtual-time bound for convergence after `heal_at`.
    #[serde(with = "duration")]
    pub within: Duration,
}

/// What the run must give.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every check holds.
    #[default]
    Pass,
    /// This named violation is reported (`{ violation = "data-loss" }`).
    Violation(String),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Pass => f.write_str("pass"),
            Expect::Violation(v) => write!(f, "violation: {v}"),
        }
    }
}

/// The cluster at the start of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Hosts in the initial placement: `n1..=nN`.
    pub nodes: u32,
    /// Hosts running but outside the placement (targets of add/replace
    /// steps): `n(N+1)..`.
    #[serde(default)]
    pub spare_nodes: u32,
    pub replicas: usize,
    pub shards: u32,
    /// `available`: an established cluster (every replica `Available`, no
    /// data yet); `new`: a brand-new placement (every replica
    /// `Initializing`).
    #[serde(default)]
    pub initial: InitialState,
    /// Day number (days since the epoch) the run starts on.
    #[serde(default = "default_start_day")]
    pub start_day: i32,
    /// Time of day the run starts at (e.g. `"23h30m"` to cross midnight).
    #[serde(default = "default_start_time", with = "duration")]
    pub start_time: Duration,
}

/// See [`Scenario::estimated_steps`].
const POLLS_PER_VIRTUAL_SECOND: u64 = 80;

fn default_start_day() -> i32 {
    20_000
}

fn default_start_time() -> Duration {
    Duration::from_secs(3600)
}

impl ClusterSpec {
    /// Every host of the run: placement nodes, then spares.
    pub fn all_nodes(&self) -> Vec<NodeId> {
        (1..=self.nodes + self.spare_nodes).map(NodeId).collect()
    }
}

/// Initial replica state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialState {
    #[default]
    Available,
    New,
}

/// One table.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: String,
    pub kind: KindSpec,
    /// Fact tables: days kept (0 = all).
    #[serde(default)]
    pub retention_days: u32,
    /// Fact tables: days preloaded into memory at bootstrap.
    #[serde(default)]
    pub preloading_days: u32,
    /// Number of columns.
    #[serde(default = "default_columns")]
    pub columns: u32,
}

fn default_columns() -> u32 {
    3
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindSpec {
    Fact,
    Dimension,
}

impl TableSpec {
    pub fn schema(&self) -> TableSchema {
        TableSchema {
            name: self.name.as_str().into(),
            kind: match self.kind {
                KindSpec::Fact => TableKind::Fact,
                KindSpec::Dimension => TableKind::Dimension,
            },
            retention_days: self.retention_days,
            columns: (0..self.columns)
                .map(|c| ColumnSchema {
                    id: ColumnId(c),
                    deleted: false,
                    preloading_days: self.preloading_days,
                })
                .collect(),
        }
    }
}

/// Bootstrap options that a scenario may change (unset = upstream default).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptionsSpec {
    pub max_concurrent_table_shards: Option<usize>,
    pub max_concurrent_streams_per_table_shard: Option<usize>,
    #[serde(with = "duration::option")]
    pub session_ttl: Option<Duration>,
    /// How often every bootstrapped table shard ingests from the upstream
    /// log: the batch period of the client that feeds the store.
    #[serde(with = "duration::option")]
    pub ingest_interval: Option<Duration>,
}

impl OptionsSpec {
    /// The first option set to zero, which upstream would never run with:
    /// no bootstrap or copy stream could start, keep-alives or ingestion
    /// would spin in one instant. `(field, message)`.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        let counts = [
            (
                "max_concurrent_table_shards",
                self.max_concurrent_table_shards,
            ),
            (
                "max_concurrent_streams_per_table_shard",
                self.max_concurrent_streams_per_table_shard,
            ),
        ];
        if let Some((field, _)) = counts.iter().find(|(_, v)| *v == Some(0)) {
            return Err((field, "must be at least 1".into()));
        }
        let periods = [
            ("session_ttl", self.session_ttl),
            ("ingest_interval", self.ingest_interval),
        ];
        if let Some((field, _)) = periods.iter().find(|(_, v)| *v == Some(Duration::ZERO)) {
            return Err((field, "must be longer than zero".into()));
        }
        Ok(())
    }
}

/// An operator action at a virtual time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// When, from the start of the run.
    pub at: Duration,
    pub action: Action,
}

/// By hand, as the action's fields next to `at` (a fault step's own).
impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = match &self.action {
            Action::Fault(f) => toml::Table::try_from(f),
            other => toml::Table::try_from(other),
        }
        .map_err(S::Error::custom)?;
        table.insert("at".into(), duration::format(self.at).into());
        table.serialize(s)
    }
}

/// By hand: serde's `flatten` cannot reject unknown fields, so `at` is taken
/// out first and the rest must be exactly one [`Action`] (a fault step is
/// told apart by its `do`).
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let at = table
            .remove("at")
            .ok_or_else(|| D::Error::missing_field("at"))?;
        let at = at
            .as_str()
            .ok_or_else(|| D::Error::custom("`at` must be a duration such as \"10m\""))
            .and_then(|s| duration::parse(s).map_err(D::Error::custom))?;
        let fault = table
            .get("do")
            .and_then(toml::Value::as_str)
            .is_some_and(|d| FaultAction::NAMES.contains(&d));
        let value = toml::Value::Table(table);
        let action = if fault {
            FaultAction::deserialize(value).map(Action::Fault)
        } else {
            Action::deserialize(value)
        }
        .map_err(|e| D::Error::custom(e.message()))?;
        Ok(Step { at, action })
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Add a host (a spare) to the placement.
    AddNode { node: NodeName },
    /// Take a host out of the placement.
    RemoveNode { node: NodeName },
    /// Move every replica of `old` to the spare `new`.
    ReplaceNode { old: NodeName, new: NodeName },
    /// Raise the replication factor.
    RaiseReplicas { replicas: usize },
    /// Ask a node for a manual bootstrap retry.
    Retry { node: NodeName },
    /// Start a second bootstrap of a table shard on `node` as soon as one is
    /// running there, and check that it is refused and changes nothing.
    BootstrapAgain {
        node: NodeName,
        table: String,
        shard: u32,
    },
    /// A fault step (`partition`, `clock_jump`, ...: see [`FaultAction`]).
    #[serde(skip)]
    Fault(FaultAction),
    /// Crash a host's process; it restarts on its own disk after
    /// `restart_after` (see [`crate::world::lifecycle`]).
    Crash {
        node: NodeName,
        #[serde(with = "duration")]
        restart_after: Duration,
    },
    /// Stall a host's process (a GC pause) `for` this long.
    Pause {
        node: NodeName,
        #[serde(rename = "for", with = "duration")]
        duration: Duration,
    },
    /// Restart a host's process at once on an erased disk.
    RestartEmpty { node: NodeName },
    /// Restart a host's process at once on a copy of `from`'s disk.
    RestartWithDiskOf { node: NodeName, from: NodeName },
}

/// Why a scenario file cannot be used.
#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}: field `{field}`: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        field: String,
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

#[cfg(test)]
mod tests;
