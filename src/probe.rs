//! Coverage probes: "sometimes" properties, after Antithesis's `sometimes`
//! assertions and FoundationDB's `TEST()` macro.
//!
//! A probe asserts nothing. It marks an interesting state — a copy fell over
//! to a second source, a job was refused its token, the day rolled over in
//! the middle of a copy — and records that a run got there, so that a swarm
//! can say which of these states its seeds reach and, more to the point,
//! which ones none reaches: a state no seed reaches is a state the swarm
//! never tests. `bootsim swarm` counts, per probe, the seeds that reached it
//! and warns about (or with `--require-coverage`, fails on) the others.
//!
//! The catalogue below is complete and static, so unreached probes can be
//! listed. It also names a few states of the world around the port (a source
//! crashed mid-copy, a restart on another host's disk): the environment
//! binding hits those — in simulation, the simulator's world — so that one
//! list says what a swarm must reach.
//!
//! A hit is a `tracing` event with target [`TARGET`] (`probe_reached`,
//! field `probe`), at `DEBUG`. It has no side effect on the code under test:
//! no await, no random draw, nothing stored. The simulator's recorder counts
//! probe events per run and keeps them out of the trace hash, so adding or
//! moving a probe never changes a recorded run.
//!
//! Adding one: a line in the catalogue (snake_case name, one sentence saying
//! what state was reached), then `Probe::Name.hit()` at the very place the
//! state happens, then make sure the default swarm reaches it.

/// The `tracing` target of probe events.
pub const TARGET: &str = "probe";

/// Defines [`Probe`] from one line per probe, so that the variants, their
/// names and descriptions and [`Probe::ALL`] cannot drift apart.
macro_rules! catalogue {
    ($( $variant:ident = $name:literal : $what:literal, )+) => {
        /// A named interesting state (see the module docs). The doc of each
        /// variant is the description reports show.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Probe {
            $( #[doc = $what] $variant, )+
        }

        impl Probe {
            /// Every probe, in catalogue order.
            pub const ALL: &'static [Probe] = &[$( Probe::$variant, )+];

            /// The snake_case name reports and traces use.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Probe::$variant => $name, )+
                }
            }

            /// What reaching it means, in one sentence.
            pub const fn what(self) -> &'static str {
                match self {
                    $( Probe::$variant => $what, )+
                }
            }
        }
    };
}

catalogue! {
    // The copying host (table_shard, copy workers).
    CopyFellOver = "copy_fell_over":
        "a peer copy failed on one source and was started again on the next source",
    KeepAliveLost = "keep_alive_lost":
        "a copying host's keep-alive stream failed while its copy was running",
    VectorPartyRetried = "vector_party_retried":
        "a vector party was copied on a later attempt after an attempt failed",
    RawDataStreamBrokeMidFile = "raw_data_stream_broke_mid_file":
        "a raw-data stream broke after part of the vector party was written locally",
    DayRolledOverDuringCopy = "day_rolled_over_during_copy":
        "the copying host's day changed between its metadata request and the end of its copy",
    CopySkippedNewPlacement = "copy_skipped_new_placement":
        "a copy was skipped because every replica of the shard was Initializing (a new placement)",
    BootstrapRefusedAlreadyRunning = "bootstrap_refused_already_running":
        "a second bootstrap of a table shard was refused because one was running",
    BootstrapRetriedAfterFailure = "bootstrap_retried_after_failure":
        "a table shard whose bootstrap had failed started bootstrapping again",
    RecoveryReplayedRedoLog = "recovery_replayed_redo_log":
        "a recovery replayed records from the host's own redo log",
    PreloadFileUnreadable = "preload_file_unreadable":
        "a preload left out a vector party it could not read",
    // The node (manager, data node).
    BootstrapPassRerun = "bootstrap_pass_rerun":
        "a node-wide bootstrap ran one more pass for a request that came while it ran",
    MarkAvailableRetried = "mark_available_retried":
        "a mark_available call succeeded after the node's previous call had failed",
    InitializingLeftoversPurged = "initializing_leftovers_purged":
        "an Initializing replica found local files of an earlier attempt or process and purged them",
    RemovalWaitedForCopySession = "removal_waited_for_copy_session":
        "a table shard leaving its host was still a copy source, so deleting its files waited",
    // The source (peer server).
    SessionAlreadyRunning = "session_already_running":
        "a source refused a copy session: the same caller already had one for the table shard",
    TokenRefused = "token_refused":
        "a job or a removal was refused a table shard's token: a copy session of it was open",
    SessionExpired = "session_expired":
        "a source swept a copy session whose keep-alives had stopped for longer than its ttl",
    BatchVersionChangedDuringCopy = "batch_version_changed_during_copy":
        "a copy streamed a batch version while a newer one was on the source's disk (a job replaced it)",
    // The world around the hosts (hit by the simulator).
    SourceCrashedMidCopy = "source_crashed_mid_copy":
        "a host's process died while it served an open copy session",
    SourcePausedMidCopy = "source_paused_mid_copy":
        "a host's process stalled while it served an open copy session",
    CopyingHostCrashed = "copying_host_crashed":
        "a host's process died while one of its table shards was copying from a peer",
    RestartedOnAnotherHostsDisk = "restarted_on_another_hosts_disk":
        "a host's process restarted on a copy of another host's disk",
}

impl Probe {
    /// Record that this run reached the probe's state.
    pub fn hit(self) {
        tracing::debug!(target: TARGET, probe = self.name(), "probe_reached");
    }

    /// The probe called `name`, if any.
    pub fn from_name(name: &str) -> Option<Probe> {
        Probe::ALL.iter().copied().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_capture::Capture;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        for (i, p) in Probe::ALL.iter().enumerate() {
            assert!(
                p.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{p}"
            );
            assert!(!p.what().is_empty());
            assert_eq!(Probe::from_name(p.name()), Some(*p));
            assert!(!Probe::ALL[..i].iter().any(|q| q.name() == p.name()));
        }
        assert_eq!(Probe::from_name("no_such_probe"), None);
    }

    #[test]
    fn a_hit_is_a_probe_event_naming_the_probe() {
        let capture = Capture::default();
        capture.run(|| Probe::SessionExpired.hit());
        assert_eq!(capture.probes(), ["session_expired"]);
    }
}
