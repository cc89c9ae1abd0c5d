//! Defects planted in the *world* on purpose (`defects = [...]` in a
//! scenario), to show that the oracle notices what each causes.

/// A bug planted in the *world* (not in the code under test), to show that
/// the oracle notices what it causes. Each fires once. Scenarios name them
/// in snake_case (`defects = ["empty_first_fact_raw_data_stream"]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    /// The first raw-data stream of a fact vector party delivers no chunks
    /// at all, yet ends cleanly: a copied column silently loses its content.
    EmptyFirstFactRawDataStream,
    /// The first raw-data stream of a fact vector party arrives with one
    /// value changed (row structure intact): the copy holds data the
    /// upstream never had.
    AlteredFirstFactRawDataStream,
    /// Every host's view of the placement shows an extra `Available` replica
    /// of each shard on a host that is not in the placement (`n99`): the
    /// placement client lies.
    PhantomReplicaInView,
    /// The operator's automation marks every new `Initializing` replica
    /// `Available` the moment it is placed, before its host copied anything.
    AutoMarkAvailable,
    /// Right after a source lists a table shard's files to a copy session, a
    /// rogue cleanup on the source deletes the first listed file.
    DeleteFirstListedFile,
    /// The first copy to end forgets to end its session: its keep-alive
    /// stream stays open and silent, so the source keeps the session though
    /// its client is done with it (until the ttl runs out and a request
    /// sweeps it).
    LoseFirstSessionEnd,
    /// The first fact vector party a copy asks for fails on its first three
    /// requests (a flaky link during exactly that transfer).
    BreakFirstVectorPartyThrice,
    /// Every fact vector party of the table shard whose copy asks first
    /// fails on every request: that table shard can never be copied from
    /// any source (an unrecoverable world).
    BreakFirstVectorPartyForever,
    /// A second data-node process starts on the last (spare) host next to
    /// the first, at the same time (a deployment that launches the service
    /// twice); both bootstrap what the host is given.
    SecondProcessAtStart,
    /// A second data-node process starts on `n1` five minutes in, after the
    /// first has bootstrapped everything.
    SecondProcessLater,
    /// Five minutes in, every host loses the files and metadata of shard 0
    /// of every table (fact tables' shard 0 and every dimension table) at once: a correlated failure no fault plan may
    /// cause, after which no replica holds that data.
    WipeShardZeroEverywhere,
    /// When the run ends, the durable metadata of the first fact replica
    /// that archived anything re-lists its newest batch under the day its
    /// version (the archiving cutoff it was written at) starts: a metastore
    /// that misdates a batch, so the archive holds a day the cutoff had not
    /// passed.
    MisdatedArchiveBatch,
    /// Every archiving-cutoff write to `n2`'s metastore fails: its
    /// archiving job errors on every run, so its cutoff never advances.
    StuckArchivingCutoff,
    /// Network latency also depends on a process-wide counter, as a stray
    /// `static` would: the second run of a seed differs from the first (a
    /// test of the determinism self-check). Fires on every hop.
    ProcessGlobalLatency,
}
