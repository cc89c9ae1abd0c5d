//! The scenario file format (TOML): a cluster, its tables, a workload, a
//! timeline of operator steps, options, quirks and what the run should give.
//! Documented for users in `scenarios/README.md`.
//!
//! Loading validates everything a run relies on and reports the file, line
//! and field of the first problem; a run never starts from a bad file.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardboot::model::{ColumnSchema, TableSchema};
use shardboot::types::{ColumnId, NodeId, TableKind};
use toml::Spanned;

use crate::engine::duration;
use crate::engine::executor::Scheduler;
use crate::world::buggify::BuggifyConfig;
use crate::world::faults::FaultConfig;
use crate::world::net::NetConfig;
use crate::world::state::Defect;
use crate::world::upstream::Workload;

mod load;
mod step;

pub use load::ScenarioError;
pub use step::{Action, Step};

/// A whole scenario file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in reports and artifacts.
    pub name: String,
    /// What the scenario is about, for readers.
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
    /// `crate::world::buggify`).
    #[serde(
        default,
        deserialize_with = "crate::world::buggify::deserialize_config",
        skip_serializing_if = "BuggifyConfig::is_default"
    )]
    pub buggify: BuggifyConfig,
    /// `[cluster]`: hosts, replicas, shards, start.
    pub cluster: ClusterSpec,
    /// `[[table]]`: the tables.
    #[serde(default, rename = "table")]
    pub tables: Vec<TableSpec>,
    /// `[workload]`: what the upstream log receives.
    #[serde(default)]
    pub workload: Workload,
    /// `[network]`: latency and bandwidth.
    #[serde(default)]
    pub network: NetConfig,
    /// Random faults the seed draws from (`[faults]`); default none.
    #[serde(default, skip_serializing_if = "FaultConfig::is_off")]
    pub faults: FaultConfig,
    /// `[options]`: bootstrap options changed from the defaults.
    #[serde(default)]
    pub options: OptionsSpec,
    /// `[[step]]`: the timeline (with their place in the file, for errors).
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
    /// `"pct:3"`, see `crate::engine::scheduler`) unless the command line names
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
    /// Replicas per shard.
    pub replicas: usize,
    /// Shards per table.
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
pub(super) const POLLS_PER_VIRTUAL_SECOND: u64 = 80;

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
    /// Table name.
    pub name: String,
    /// Fact or dimension.
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

/// The kind of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindSpec {
    /// Rows by event day, kept `retention_days`.
    Fact,
    /// Upserted by key, kept whole.
    Dimension,
}

impl TableSpec {
    /// The table's schema as the port sees it.
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

#[cfg(test)]
mod tests;
