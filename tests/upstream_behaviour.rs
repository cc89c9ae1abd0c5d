//! The upstream project's own tests (docs/MODEL.md §8, items 1–12),
//! re-expressed through the public API on a simulated cluster: a small
//! scenario for the world, [`Sim`] for the executor, fixtures written through
//! the `Disk` and `MetaStore` seams of a host's [`NodeDisk`], and the
//! component under test (`TableShard`, `PeerServer`, `PeerSource`,
//! `BootstrapManager`, `BootstrapDetails`, `MemStore`, `DataNode`) built by
//! its public constructor. Fixture values are our own; each item keeps the
//! upstream shape. Each test is named after the behaviour it pins and says
//! which item it stands for.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bootsim::NodeDisk;
use bootsim::Scenario;
use bootsim::Sim;
use bootsim::SimEnv;
use bootsim::SimPeer;
use bootsim::executor::{sleep, timeout};
use futures::future::join_all;
use shardboot::details::{BootstrapDetails, CopyStatus, Stage};
use shardboot::env::{
    ChunkStream, Disk, Env, KeepAliveClient, MetaStore, OpenMode, PeerClient, WriteFile,
};
use shardboot::manager::{BootstrapManager, PassErrors, Requested};
use shardboot::memstore::MemStore;
use shardboot::model::{
    BatchMeta, Cutoff, FileKey, MetaWrite, Record, RedoPosition, ShardMeta, SnapshotProgress,
    encode_vector_party,
};
use shardboot::options::Options;
use shardboot::peer_server::PeerServer;
use shardboot::peer_source::{NoPeerAvailable, PeerSource, PeerUnavailable};
use shardboot::placement::{ClusterView, Placement};
use shardboot::protocol::{
    BatchMetadata, CHUNK_BYTES, KeepAlive, MetadataRequest, PeerError, RawDataRequest, SessionRef,
    StartSessionRequest, TableMetadata, TableShardMetadata, VectorPartyRef,
};
use shardboot::quirks::Quirks;
use shardboot::store::{DIMENSION_KEY_COLUMN, encode_key_party};
use shardboot::table_shard::{BootstrapError, BootstrapState, TableShard};
use shardboot::types::{
    BatchId, ColumnId, Day, NodeId, Offset, SessionId, ShardId, ShardState, TableShardId, Timestamp,
};

// ------------------------------------------------------------- helpers ---

/// The host that bootstraps (or calls the peer-data server).
const ORIGIN: NodeId = NodeId(1);
/// The host that holds the data (and serves it).
const PEER: NodeId = NodeId(2);
/// The day every cluster starts on ("clock at day 1" upstream).
const TODAY: i32 = 19_000;
const SHARD0: ShardId = ShardId(0);
const SESSION_TTL: Duration = Duration::from_secs(5 * 60);

/// Two hosts holding one shard (`start_day` is `TODAY`); the workload fills the upstream logs so that
/// a copied shard can replay its offsets (`recovery` reads them upstream).
const TWO_HOSTS_WITH_LOG: &str = r#"
[cluster]
nodes = 2
replicas = 2
shards = 1
start_day = 19000

[workload]
rows_per_second = 100
upserts_per_second = 100
"#;

/// Two hosts holding one shard, and no workload: exact fixtures only.
const TWO_HOSTS_IDLE: &str = r#"
[cluster]
nodes = 2
replicas = 2
shards = 1
start_day = 19000

[workload]
rows_per_second = 0
upserts_per_second = 0
"#;

const TRIPS: &str = r#"
[[table]]
name = "trips"
kind = "fact"
retention_days = 10
preloading_days = 1
columns = 3
"#;

const CITIES: &str = r#"
[[table]]
name = "cities"
kind = "dimension"
columns = 3
"#;

/// A simulated cluster from scenario TOML (name and duration are added),
/// and the bootstrap options that scenario gives.
fn cluster(body: &str) -> (Sim, Rc<Options>) {
    let text = format!("name = \"upstream-behaviour\"\nduration = \"1d\"\n{body}");
    let scenario = Scenario::parse(Path::new("upstream_behaviour.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}"));
    (
        Sim::new(&scenario, 11),
        Rc::new(scenario.bootstrap_options()),
    )
}

/// Run `fut` as a task of `node` until it completes and return its output.
/// Fails the test if it panicked or took more than an hour of virtual time.
fn run<T: 'static>(sim: &mut Sim, node: NodeId, fut: impl Future<Output = T> + 'static) -> T {
    sim.block_on(Some(node), timeout(Duration::from_secs(3600), fut))
        .unwrap_or_else(|end| panic!("simulation ended first: {end}"))
        .expect("finishes within an hour of virtual time")
}

fn disk(sim: &Sim, node: NodeId) -> NodeDisk {
    sim.world().hosts[&node].disk.clone()
}

/// `node`'s clock now.
fn now(sim: &Sim, node: NodeId) -> Timestamp {
    let env = sim.env(node);
    sim.enter(|| env.now())
}

/// Write fixture files and `shard`'s metadata on `node` through its `Disk`
/// and `MetaStore` seams (files synced, as data that was there before).
fn put(
    sim: &mut Sim,
    node: NodeId,
    shard: &TableShardId,
    files: Vec<(FileKey, Vec<u8>)>,
    meta: Vec<MetaWrite>,
) {
    let disk = disk(sim, node);
    let shard = shard.clone();
    run(sim, node, async move {
        for (key, bytes) in files {
            let mut f = Disk::open(&disk, &key, OpenMode::Truncate)
                .await
                .expect("open");
            f.write(&bytes).await.expect("write");
            f.sync().await.expect("sync");
        }
        for write in meta {
            MetaStore::write(&disk, &shard, write)
                .await
                .expect("metastore write");
        }
    });
}

/// Synthetic rows at `offsets` (their values are a function of offset and
/// column, see `shardboot::model`).
fn rows(offsets: Range<u64>) -> Vec<Record> {
    offsets
        .map(|o| Record {
            offset: Offset(o),
            day: Day(TODAY),
            key: o as u32 % 7,
        })
        .collect()
}

fn vector_party(offsets: Range<u64>, column: u32) -> Vec<u8> {
    encode_vector_party(&rows(offsets), ColumnId(column))
}

fn fact_file(shard: &TableShardId, batch: i32, meta: BatchMeta, column: u32) -> FileKey {
    FileKey::VectorParty {
        shard: shard.clone(),
        batch: BatchId(batch),
        version: meta.version,
        seq: meta.seq,
        column: ColumnId(column),
    }
}

fn snapshot_file(
    shard: &TableShardId,
    redo: RedoPosition,
    batch: i32,
    column: ColumnId,
) -> FileKey {
    FileKey::Snapshot {
        shard: shard.clone(),
        redo,
        batch: BatchId(batch),
        column,
    }
}

/// The scenario's cluster view with `replicas` as the placement of `shard`.
fn view_with(sim: &Sim, shard: ShardId, replicas: &[(NodeId, ShardState)]) -> ClusterView {
    let base = sim.world().placement.view();
    ClusterView {
        version: base.version,
        placement: Placement {
            shards: [(shard, replicas.iter().copied().collect())].into(),
        },
        tables: base.tables.clone(),
    }
}

/// Bootstrap `ts` on its host (`origin`) against `view` (docs/MODEL.md §2).
fn bootstrap(
    sim: &mut Sim,
    options: &Rc<Options>,
    origin: NodeId,
    ts: &Rc<TableShard<SimEnv>>,
    view: ClusterView,
) -> Result<(), BootstrapError> {
    let source = PeerSource::new(sim.env(origin), Rc::clone(options), &view.placement);
    let (ts, options) = (Rc::clone(ts), Rc::clone(options));
    run(sim, origin, async move {
        ts.bootstrap(&source, origin, &view, &options).await
    })
}

/// A table shard of the scenario's `table` on `node`.
fn table_shard(
    sim: &Sim,
    options: &Options,
    node: NodeId,
    id: &TableShardId,
    needs_peer_copy: bool,
) -> Rc<TableShard<SimEnv>> {
    let schema = sim.world().placement.view().tables[&id.table].clone();
    Rc::new(TableShard::new(
        sim.env(node),
        id.clone(),
        schema,
        needs_peer_copy,
        options.store.clone(),
    ))
}

/// Bootstrap `id` on ORIGIN (`Initializing`), copying from PEER
/// (`Available`, serving through a hand-built server).
fn bootstrap_from_peer(
    sim: &mut Sim,
    options: &Rc<Options>,
    id: &TableShardId,
) -> (Rc<TableShard<SimEnv>>, Result<(), BootstrapError>) {
    serve(sim, PEER, options);
    let view = view_with(
        sim,
        id.shard,
        &[
            (ORIGIN, ShardState::Initializing),
            (PEER, ShardState::Available),
        ],
    );
    let ts = table_shard(sim, options, ORIGIN, id, true);
    let result = bootstrap(sim, options, ORIGIN, &ts, view);
    (ts, result)
}

/// A ready peer-data server on `node`, reachable over the simulated network.
fn serve(sim: &Sim, node: NodeId, options: &Rc<Options>) -> Rc<PeerServer<SimEnv>> {
    let server = Rc::new(PeerServer::new(sim.env(node), Rc::clone(options)));
    server.set_ready(true);
    sim.world().set_server(node, Some(Rc::clone(&server)));
    server
}

fn start_request(table: &str, node: Option<NodeId>) -> StartSessionRequest {
    StartSessionRequest {
        table: table.into(),
        shard: SHARD0,
        node,
        ttl: SESSION_TTL,
    }
}

/// Open a session for `table`/0 from ORIGIN directly on `server`.
fn open_session(sim: &mut Sim, server: &Rc<PeerServer<SimEnv>>, table: &str) -> SessionRef {
    let server = Rc::clone(server);
    let request = start_request(table, Some(ORIGIN));
    let reply = run(
        sim,
        PEER,
        async move { server.start_session(request).await },
    )
    .expect("session started");
    SessionRef {
        session: Some(reply.session),
        node: Some(ORIGIN),
        table: table.into(),
        shard: SHARD0,
    }
}

/// ORIGIN's connection to PEER's data server.
async fn dial_peer(env: SimEnv) -> SimPeer<SimEnv> {
    env.dial(PEER).await.expect("dial")
}

/// One keep-alive message and its answer: the ttl, or `None` when the
/// server ended the stream instead.
async fn keep_alive(
    stream: &mut impl KeepAliveClient,
    session: Option<SessionId>,
    node: Option<NodeId>,
) -> Option<Duration> {
    stream
        .send(KeepAlive { session, node })
        .await
        .expect("send");
    stream.recv().await.expect("stream not broken")
}

/// Every chunk of one raw-data stream from PEER, until its end.
async fn stream_all(env: SimEnv, session: SessionRef, vp: VectorPartyRef) -> Vec<Vec<u8>> {
    let mut stream = dial_peer(env)
        .await
        .fetch_raw_data(RawDataRequest {
            session,
            vector_party: vp,
        })
        .await
        .expect("raw data");
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await.expect("chunk") {
        chunks.push(chunk);
    }
    chunks
}

/// docs/MODEL.md §8 item 1 fixture on PEER: one batch of today, every column
/// on disk.
struct FactFixture {
    id: TableShardId,
    meta: ShardMeta,
    batch: BatchMeta,
    files: BTreeMap<ColumnId, Vec<u8>>,
}

fn fact_fixture_on_peer(sim: &mut Sim) -> FactFixture {
    let id = TableShardId::new("trips", SHARD0);
    let cutoff = Cutoff(Day(TODAY).start().secs() as u32);
    let batch = BatchMeta {
        version: cutoff,
        seq: 2,
        size: 5,
    };
    let files: BTreeMap<ColumnId, Vec<u8>> = (0..3)
        .map(|c| (ColumnId(c), vector_party(40..45, c)))
        .collect();
    let writes = vec![
        MetaWrite::CommitOffset(Offset(30)),
        MetaWrite::CheckpointOffset(Offset(24)),
        MetaWrite::ArchivingCutoff(cutoff),
        MetaWrite::BackfillProgress(RedoPosition {
            file: 24,
            offset: 4,
        }),
        MetaWrite::BatchVersion {
            batch: BatchId(TODAY),
            meta: batch,
        },
    ];
    let keyed = files
        .iter()
        .map(|(c, b)| (fact_file(&id, TODAY, batch, c.0), b.clone()))
        .collect();
    put(sim, PEER, &id, keyed, writes);
    // Let the workload fill the upstream log past the commit offset.
    sim.run_for(Duration::from_secs(1));
    FactFixture {
        meta: disk(sim, PEER).meta(&id),
        id,
        batch,
        files,
    }
}

// ---------------------------------- table shard bootstrap (§8 items 1, 2) ---

/// docs/MODEL.md §8 item 1: a fact table shard copied from its `Available`
/// peer.
#[test]
fn fact_table_copied_from_peer_is_bootstrapped_with_identical_vector_parties() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_WITH_LOG}{TRIPS}"));
    let fx = fact_fixture_on_peer(&mut sim);
    let (ts, result) = bootstrap_from_peer(&mut sim, &options, &fx.id);

    assert_eq!(result, Ok(()));
    assert!(!ts.needs_peer_copy(), "disk data is available");
    assert_eq!(ts.state(), BootstrapState::Bootstrapped);
    // Preloaded day: the peer's vector parties, byte for byte.
    assert_eq!(preloaded(&ts, TODAY), Some(fx.files.clone()));
    // Local metadata and files are the peer's.
    let local = disk(&sim, ORIGIN);
    assert_eq!(local.meta(&fx.id), fx.meta);
    for (column, bytes) in &fx.files {
        let key = fact_file(&fx.id, TODAY, fx.batch, column.0);
        assert_eq!(local.contents(&key).as_deref(), Some(bytes), "{key:?}");
    }
    // Progress: finished, from the peer, every vector party copied.
    let details = ts.details();
    assert_eq!(details.stage(), Stage::Finished);
    assert_eq!(details.source(), Some(PEER));
    assert_eq!(
        details.batches().get(&BatchId(TODAY)),
        Some(&vec![CopyStatus::CopyFinished; 3])
    );
    // The copy ended its session on the peer.
    sim.run_for(Duration::from_secs(1));
    let server = sim.world().server(PEER).expect("peer serving");
    assert_eq!(server.sessions(), vec![]);
}

/// The metastore writes ORIGIN makes while copying the fact fixture.
fn copied_fact_meta_writes(quirks: &str) -> (FactFixture, Vec<MetaWrite>) {
    let (mut sim, options) = cluster(&format!("{quirks}\n{TWO_HOSTS_WITH_LOG}{TRIPS}"));
    let fx = fact_fixture_on_peer(&mut sim);
    disk(&sim, ORIGIN).record_meta_writes();
    let (_, result) = bootstrap_from_peer(&mut sim, &options, &fx.id);
    assert_eq!(result, Ok(()));
    let writes = disk(&sim, ORIGIN).meta_writes(&fx.id);
    (fx, writes)
}

/// docs/MODEL.md §8 item 1, metadata order: upstream (quirk Q4) writes the
/// shard's metadata before any data, in the order commit, checkpoint, cutoff,
/// backfill, batch version.
#[test]
fn fact_table_copy_with_q4_writes_local_metadata_in_upstream_order() {
    let (fx, writes) = copied_fact_meta_writes("quirks = [\"Q4\"]");
    let m = &fx.meta;
    assert_eq!(
        writes,
        vec![
            MetaWrite::CommitOffset(m.commit_offset),
            MetaWrite::CheckpointOffset(m.checkpoint_offset),
            MetaWrite::ArchivingCutoff(m.cutoff),
            MetaWrite::BackfillProgress(m.backfill),
            MetaWrite::BatchVersion {
                batch: BatchId(TODAY),
                meta: fx.batch
            },
        ]
    );
}

/// docs/MODEL.md §8 item 1, metadata order with Q4 off (the fix): the data
/// first, then the batch versions, then the offsets that claim them.
#[test]
fn fact_table_copy_without_q4_writes_batch_versions_before_offsets() {
    let (fx, writes) = copied_fact_meta_writes("");
    let m = &fx.meta;
    assert_eq!(
        writes,
        vec![
            MetaWrite::BatchVersion {
                batch: BatchId(TODAY),
                meta: fx.batch
            },
            MetaWrite::CommitOffset(m.commit_offset),
            MetaWrite::CheckpointOffset(m.checkpoint_offset),
            MetaWrite::ArchivingCutoff(m.cutoff),
            MetaWrite::BackfillProgress(m.backfill),
        ]
    );
}

/// docs/MODEL.md §8 item 2: a dimension table shard copied from its peer:
/// snapshot progress as given, snapshot files under (redo file, offset,
/// batch, column), and the snapshot batch in memory byte-identical to the
/// peer's.
#[test]
fn dimension_table_copied_from_peer_is_bootstrapped_with_identical_snapshot() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_WITH_LOG}{CITIES}"));
    let id = TableShardId::new("cities", SHARD0);
    let redo = RedoPosition {
        file: 40,
        offset: 2,
    };
    let snapshot = SnapshotProgress {
        redo,
        last_batch: BatchId(-110),
        last_batch_size: 6,
    };
    let mut files: BTreeMap<ColumnId, Vec<u8>> = (0..3)
        .map(|c| (ColumnId(c), vector_party(30..36, c)))
        .collect();
    let keys: Vec<(u32, Offset)> = rows(30..36).iter().map(|r| (r.key, r.offset)).collect();
    files.insert(DIMENSION_KEY_COLUMN, encode_key_party(&keys));
    put(
        &mut sim,
        PEER,
        &id,
        files
            .iter()
            .map(|(c, b)| (snapshot_file(&id, redo, -110, *c), b.clone()))
            .collect(),
        vec![
            MetaWrite::CommitOffset(Offset(50)),
            MetaWrite::CheckpointOffset(Offset(42)),
            MetaWrite::SnapshotProgress(snapshot),
        ],
    );
    sim.run_for(Duration::from_secs(1));

    let (ts, result) = bootstrap_from_peer(&mut sim, &options, &id);

    assert_eq!(result, Ok(()));
    assert_eq!(ts.state(), BootstrapState::Bootstrapped);
    let local = disk(&sim, ORIGIN);
    assert_eq!(local.meta(&id).snapshot, snapshot);
    let copied: BTreeMap<FileKey, Vec<u8>> = local
        .file_names()
        .into_iter()
        .filter(|k| matches!(k, FileKey::Snapshot { .. }))
        .map(|k| {
            (
                k.clone(),
                local.contents(&k).map(|b| b.to_vec()).unwrap_or_default(),
            )
        })
        .collect();
    let expected: BTreeMap<FileKey, Vec<u8>> = files
        .iter()
        .map(|(c, b)| (snapshot_file(&id, redo, -110, *c), b.clone()))
        .collect();
    assert_eq!(copied, expected);
    // In memory: the live columns of batch -110, as the peer has them.
    files.remove(&DIMENSION_KEY_COLUMN);
    assert_eq!(preloaded(&ts, -110), Some(files));
}

/// The vector parties of `batch` a table shard holds in memory.
fn preloaded<E: Env>(ts: &TableShard<E>, batch: i32) -> Option<BTreeMap<ColumnId, Vec<u8>>> {
    let parties = ts.store().preloaded().remove(&BatchId(batch))?;
    Some(parties.into_iter().map(|(c, b)| (c, b.to_vec())).collect())
}

// -------------------------------------- peer data server (§8 items 3-7) ---

/// docs/MODEL.md §8 item 3.
#[test]
fn start_session_refuses_missing_caller_unknown_table_and_a_second_session_from_the_same_node() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}{CITIES}"));
    let server = serve(&sim, PEER, &options);
    let s = Rc::clone(&server);
    let replies = run(&mut sim, PEER, async move {
        let mut replies = Vec::new();
        for req in [
            start_request("trips", None),
            start_request("nope", Some(ORIGIN)),
            start_request("trips", Some(ORIGIN)),
            start_request("cities", Some(ORIGIN)),
            start_request("cities", Some(ORIGIN)),
        ] {
            replies.push(s.start_session(req).await);
        }
        replies
    });

    assert_eq!(replies[0], Err(PeerError::CallerNotSet));
    assert_eq!(replies[1], Err(PeerError::UnknownTable("nope".into())));
    let fact = replies[2].clone().expect("fact table session");
    let dim = replies[3].clone().expect("dimension table session");
    assert!(fact.session.0 > 0 && dim.session.0 > 0 && fact.session != dim.session);
    assert_eq!((fact.ttl, dim.ttl), (SESSION_TTL, SESSION_TTL));
    assert_eq!(replies[4], Err(PeerError::SessionAlreadyRunning));
    let held: Vec<(SessionId, TableShardId, NodeId)> = server
        .sessions()
        .into_iter()
        .map(|s| (s.id, s.shard, s.node))
        .collect();
    assert_eq!(
        held,
        vec![
            (fact.session, TableShardId::new("trips", SHARD0), ORIGIN),
            (dim.session, TableShardId::new("cities", SHARD0), ORIGIN),
        ]
    );
}

/// Quirk Q6 on the simulator's executor: two starts of one caller for one
/// table shard at once both pass the split check (the source yields between
/// check and insert, where upstream takes its second lock); without Q6 the
/// second is refused.
#[test]
fn q6_two_simultaneous_starts_from_one_node_both_open_a_session() {
    for (quirks, opened) in [("[\"Q6\"]", 2), ("[]", 1)] {
        let (mut sim, options) = cluster(&format!("quirks = {quirks}\n{TWO_HOSTS_IDLE}{TRIPS}"));
        let server = serve(&sim, PEER, &options);
        let s = Rc::clone(&server);
        let replies = run(&mut sim, PEER, async move {
            join_all([
                s.start_session(start_request("trips", Some(ORIGIN))),
                s.start_session(start_request("trips", Some(ORIGIN))),
            ])
            .await
        });
        let ok = replies.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            (ok, server.sessions().len()),
            (opened, opened),
            "quirks {quirks}: {replies:?}"
        );
    }
}

/// docs/MODEL.md §8 item 4: keep-alives over the simulated network.
#[test]
fn keep_alives_are_answered_with_the_session_ttl_and_a_clean_end_removes_the_session() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}"));
    let server = serve(&sim, PEER, &options);
    let session = open_session(&mut sim, &server, "trips").session;
    let (env, s) = (sim.env(ORIGIN), Rc::clone(&server));
    let (ttls, before_processed, after_processed) = run(&mut sim, ORIGIN, async move {
        let mut stream = dial_peer(env).await.keep_alive().await.expect("open");
        let mut ttls = Vec::new();
        for _ in 0..10 {
            ttls.push(keep_alive(&mut stream, session, Some(ORIGIN)).await);
        }
        stream.close();
        let before = s.sessions().len();
        sleep(Duration::from_secs(1)).await;
        (ttls, before, s.sessions().len())
    });

    assert_eq!(ttls, vec![Some(SESSION_TTL); 10]);
    assert_eq!(before_processed, 1, "the end is still in flight");
    assert_eq!(after_processed, 0, "a clean end removes the session");
}

/// docs/MODEL.md §8 item 4: the first message binds a stream; an unknown
/// session id or a missing caller id makes the server end it without an
/// answer, and the session it named is left alone.
#[test]
fn keep_alive_stream_with_unknown_session_or_without_caller_is_ended_by_the_server() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}"));
    let server = serve(&sim, PEER, &options);
    let session = open_session(&mut sim, &server, "trips").session;
    let unknown = session.map(|s| SessionId(s.0 + 100));
    let env = sim.env(ORIGIN);
    let answers = run(&mut sim, ORIGIN, async move {
        let peer = dial_peer(env).await;
        let mut answers = Vec::new();
        for (session, node) in [(unknown, Some(ORIGIN)), (session, None)] {
            let mut stream = peer.keep_alive().await.expect("open");
            answers.push(keep_alive(&mut stream, session, node).await);
        }
        answers
    });

    assert_eq!(
        answers,
        vec![None, None],
        "both streams ended by the server"
    );
    assert_eq!(server.sessions().len(), 1);
    assert_eq!(server.sessions()[0].id, session.expect("id"));
}

/// docs/MODEL.md §8 item 5, fact fixture: batches around a 5-day retention
/// window, one of them with a column missing on disk (and a stale file of it
/// at an older version), one in the future.
struct FactMetaFixture {
    meta: ShardMeta,
    /// The batches inside the window, as the server must list them.
    listed: Vec<BatchMetadata>,
}

fn fact_metadata_fixture(sim: &mut Sim) -> FactMetaFixture {
    let id = TableShardId::new("trips", SHARD0);
    let bm = |day: i32, seq| BatchMeta {
        version: Cutoff(Day(day + 1).start().secs() as u32),
        seq,
        size: 4,
    };
    // (day, meta, columns on disk)
    let batches: Vec<(i32, BatchMeta, Vec<u32>)> = [
        (TODAY - 9, bm(TODAY - 9, 0), vec![0, 1, 2]),
        (TODAY - 5, bm(TODAY - 5, 0), vec![0, 1, 2]),
        (TODAY - 4, bm(TODAY - 4, 1), vec![0, 1, 2]),
        (TODAY - 2, bm(TODAY - 2, 3), vec![0, 2]),
        (TODAY, bm(TODAY, 0), vec![0, 1, 2]),
        (TODAY + 1, bm(TODAY + 1, 0), vec![0, 1, 2]),
    ]
    .into();
    let mut files: Vec<(FileKey, Vec<u8>)> = batches
        .iter()
        .flat_map(|(day, meta, cols)| {
            cols.iter()
                .map(|c| (fact_file(&id, *day, *meta, *c), vector_party(0..4, *c)))
                .collect::<Vec<_>>()
        })
        .collect();
    // Column 1 of day -2 exists only at an older version: not present.
    files.push((
        fact_file(&id, TODAY - 2, bm(TODAY - 3, 2), 1),
        vector_party(0..4, 1),
    ));
    let mut writes = vec![
        MetaWrite::CommitOffset(Offset(77)),
        MetaWrite::CheckpointOffset(Offset(70)),
        MetaWrite::ArchivingCutoff(Cutoff(Day(TODAY).start().secs() as u32)),
        MetaWrite::BackfillProgress(RedoPosition {
            file: 64,
            offset: 5,
        }),
    ];
    writes.extend(
        batches
            .iter()
            .map(|(day, meta, _)| MetaWrite::BatchVersion {
                batch: BatchId(*day),
                meta: *meta,
            }),
    );
    put(sim, PEER, &id, files, writes);
    let listed = batches
        .iter()
        .filter(|(day, _, _)| (TODAY - 4..=TODAY).contains(day))
        .map(|(day, meta, cols)| BatchMetadata {
            id: BatchId(*day),
            meta: *meta,
            columns: cols.iter().map(|c| ColumnId(*c)).collect(),
        })
        .collect();
    FactMetaFixture {
        meta: disk(sim, PEER).meta(&id),
        listed,
    }
}

const TRIPS_5_DAYS: &str = r#"
[[table]]
name = "trips"
kind = "fact"
retention_days = 5
columns = 3
"#;

/// Ask PEER's server for metadata of `session`'s table shard.
fn metadata(
    sim: &mut Sim,
    server: &Rc<PeerServer<SimEnv>>,
    session: &SessionRef,
    batches: Option<std::ops::RangeInclusive<BatchId>>,
) -> TableShardMetadata {
    let (server, session) = (Rc::clone(server), session.clone());
    run(sim, PEER, async move {
        server
            .fetch_metadata(MetadataRequest { session, batches })
            .await
    })
    .expect("metadata")
}

/// docs/MODEL.md §8 item 5, fact table, with an explicit range.
#[test]
fn fact_metadata_lists_offsets_progress_and_batches_within_retention_with_columns_on_disk() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS_5_DAYS}"));
    let server = serve(&sim, PEER, &options);
    let fx = fact_metadata_fixture(&mut sim);
    let session = open_session(&mut sim, &server, "trips");

    let all = metadata(
        &mut sim,
        &server,
        &session,
        Some(BatchId(i32::MIN)..=BatchId(i32::MAX)),
    );
    assert_eq!(
        all,
        TableShardMetadata {
            commit_offset: fx.meta.commit_offset,
            checkpoint_offset: fx.meta.checkpoint_offset,
            table: TableMetadata::Fact {
                cutoff: fx.meta.cutoff,
                backfill: fx.meta.backfill,
                batches: fx.listed.clone(),
            },
        }
    );
    // A narrower range is honoured within the window.
    let narrow = metadata(
        &mut sim,
        &server,
        &session,
        Some(BatchId(TODAY - 3)..=BatchId(TODAY - 1)),
    );
    let TableMetadata::Fact { batches, .. } = narrow.table else {
        panic!("fact metadata expected");
    };
    assert_eq!(batches, vec![fx.listed[1].clone()]);
}

/// docs/MODEL.md §8 item 5: no range asked for means today back to the
/// retention.
#[test]
fn fact_metadata_request_without_range_gets_the_default_window() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS_5_DAYS}"));
    let server = serve(&sim, PEER, &options);
    let fx = fact_metadata_fixture(&mut sim);
    let session = open_session(&mut sim, &server, "trips");

    let TableMetadata::Fact { batches, .. } = metadata(&mut sim, &server, &session, None).table
    else {
        panic!("fact metadata expected");
    };
    let days: Vec<BatchId> = batches.iter().map(|b| b.id).collect();
    assert_eq!(
        days,
        vec![BatchId(TODAY - 4), BatchId(TODAY - 2), BatchId(TODAY)]
    );
    assert_eq!(batches, fx.listed);
}

/// docs/MODEL.md §8 item 5, dimension table: the snapshot the progress points
/// at, with the columns of each of its batches; an older snapshot's files are
/// not listed.
#[test]
fn dimension_metadata_lists_offsets_snapshot_progress_and_snapshot_batches() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{CITIES}"));
    let server = serve(&sim, PEER, &options);
    let id = TableShardId::new("cities", SHARD0);
    let redo = RedoPosition { file: 8, offset: 1 };
    let snapshot = SnapshotProgress {
        redo,
        last_batch: BatchId(-3),
        last_batch_size: 4,
    };
    let key = DIMENSION_KEY_COLUMN;
    let on_disk = [
        (redo, -4, ColumnId(0)),
        (redo, -4, ColumnId(1)),
        (redo, -4, ColumnId(2)),
        (redo, -4, key),
        (redo, -3, ColumnId(0)),
        (redo, -3, ColumnId(1)),
        (redo, -3, key),
        (RedoPosition { file: 4, offset: 0 }, -5, ColumnId(0)),
    ];
    put(
        &mut sim,
        PEER,
        &id,
        on_disk
            .iter()
            .map(|(r, b, c)| (snapshot_file(&id, *r, *b, *c), vector_party(0..4, 0)))
            .collect(),
        vec![
            MetaWrite::CommitOffset(Offset(12)),
            MetaWrite::CheckpointOffset(Offset(9)),
            MetaWrite::SnapshotProgress(snapshot),
        ],
    );
    let session = open_session(&mut sim, &server, "cities");

    let got = metadata(&mut sim, &server, &session, None);
    let batch = |id, columns: Vec<ColumnId>| BatchMetadata {
        id: BatchId(id),
        meta: BatchMeta::default(),
        columns,
    };
    assert_eq!(
        got,
        TableShardMetadata {
            commit_offset: Offset(12),
            checkpoint_offset: Offset(9),
            table: TableMetadata::Dimension {
                snapshot,
                batches: vec![
                    batch(-4, vec![ColumnId(0), ColumnId(1), ColumnId(2), key]),
                    batch(-3, vec![ColumnId(0), ColumnId(1), key]),
                ],
            },
        }
    );
}

/// docs/MODEL.md §8 item 6: both kinds of vector party, streamed over the
/// simulated network.
#[test]
fn raw_data_streams_fact_and_snapshot_vector_parties_in_chunks_of_at_most_32_kib() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}{CITIES}"));
    let server = serve(&sim, PEER, &options);
    let fact_id = TableShardId::new("trips", SHARD0);
    let dim_id = TableShardId::new("cities", SHARD0);
    let meta = BatchMeta {
        version: Cutoff(7),
        seq: 1,
        size: 0,
    };
    let redo = RedoPosition { file: 3, offset: 9 };
    // 2.5 chunks, and exactly 2 chunks.
    let fact_bytes: Vec<u8> = (0..CHUNK_BYTES * 5 / 2).map(|i| (i % 251) as u8).collect();
    let snap_bytes: Vec<u8> = (0..CHUNK_BYTES * 2).map(|i| (i % 13) as u8).collect();
    put(
        &mut sim,
        PEER,
        &fact_id,
        vec![
            (fact_file(&fact_id, TODAY, meta, 1), fact_bytes.clone()),
            (
                snapshot_file(&dim_id, redo, -2, ColumnId(0)),
                snap_bytes.clone(),
            ),
        ],
        vec![],
    );
    let fact_session = open_session(&mut sim, &server, "trips");
    let dim_session = open_session(&mut sim, &server, "cities");
    let env = sim.env(ORIGIN);
    let (fact_chunks, snap_chunks) = run(&mut sim, ORIGIN, async move {
        let fact = VectorPartyRef::Fact {
            batch: BatchId(TODAY),
            version: meta.version,
            seq: meta.seq,
            column: ColumnId(1),
        };
        let snap = VectorPartyRef::Snapshot {
            redo,
            batch: BatchId(-2),
            column: ColumnId(0),
        };
        (
            stream_all(env.clone(), fact_session, fact).await,
            stream_all(env, dim_session, snap).await,
        )
    });

    let sizes = |chunks: &[Vec<u8>]| chunks.iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(
        sizes(&fact_chunks),
        vec![CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES / 2]
    );
    assert_eq!(fact_chunks.concat(), fact_bytes);
    assert_eq!(sizes(&snap_chunks), vec![CHUNK_BYTES, CHUNK_BYTES]);
    assert_eq!(snap_chunks.concat(), snap_bytes);
}

/// Ask `server` for `shard`'s token as a background job does, giving a
/// granted one back at once (with Q9 off a grant holds the table shard).
fn token(sim: &Sim, server: &PeerServer<SimEnv>, shard: &TableShardId) -> bool {
    sim.enter(|| {
        let granted = server.acquire_token(shard);
        if granted {
            server.release_token(shard);
        }
        granted
    })
}

/// docs/MODEL.md §8 item 7: the tokens background jobs ask for before
/// deleting files.
#[test]
fn token_is_granted_without_sessions_refused_while_one_is_open_and_granted_after_it_is_removed() {
    let (mut sim, options) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}"));
    let server = serve(&sim, PEER, &options);
    let id = TableShardId::new("trips", SHARD0);

    assert!(token(&sim, &server, &id), "no session: granted");
    let session = open_session(&mut sim, &server, "trips").session;
    assert!(!token(&sim, &server, &id), "session open: refused");

    // End the session the way a copy does: a clean end of its keep-alive.
    let env = sim.env(ORIGIN);
    run(&mut sim, ORIGIN, async move {
        let mut stream = dial_peer(env).await.keep_alive().await.expect("open");
        assert_eq!(
            keep_alive(&mut stream, session, Some(ORIGIN)).await,
            Some(SESSION_TTL)
        );
        stream.close();
        sleep(Duration::from_secs(1)).await;
    });
    assert_eq!(server.sessions(), vec![]);
    assert!(token(&sim, &server, &id), "session removed: granted again");
}

// ---------------------------------------- progress details (§8 item 8) ---

/// docs/MODEL.md §8 item 8.
#[test]
fn bootstrap_details_track_stage_source_and_every_vector_party_copy() {
    let (mut sim, _) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}"));
    let mut d = BootstrapDetails::new();
    d.set_num_columns(10);
    assert_eq!(d.stage().to_string(), "waiting");
    assert_eq!(d.source(), None);
    assert!(d.batches().is_empty());

    sim.run_for(Duration::from_secs(90));
    let copy_began = now(&sim, ORIGIN);
    d.set_stage(Stage::PeerCopy, copy_began);
    d.set_source(PEER);
    for c in 0..10 {
        d.add_vector_party_to_copy(BatchId(0), ColumnId(c));
    }
    assert_eq!(d.stage().to_string(), "peercopy");
    assert_eq!(d.stage_time(), Some(copy_began));
    assert_eq!(d.source(), Some(PEER));
    let statuses = |d: &BootstrapDetails| -> Vec<String> {
        (0..10)
            .map(|c| d.status(BatchId(0), ColumnId(c)).to_string())
            .collect()
    };
    assert_eq!(statuses(&d), vec!["copy needed"; 10]);

    for c in 0..10 {
        d.mark_vector_party_finished(BatchId(0), ColumnId(c));
    }
    sim.run_for(Duration::from_secs(30));
    let finished = now(&sim, ORIGIN);
    d.set_stage(Stage::Finished, finished);
    assert_eq!(d.stage().to_string(), "finished");
    assert_eq!(statuses(&d), vec!["copy finished"; 10]);

    d.clear();
    assert_eq!(d.stage(), Stage::Waiting);
    assert_eq!(d.num_columns(), 0);
    assert!(d.batches().is_empty());
    assert_eq!(d.source(), Some(PEER), "the source is kept");
    assert_eq!(d.stage_time(), Some(finished), "the stage time is kept");
}

/// docs/MODEL.md §8 item 8: column ids at or past the column count are
/// ignored.
#[test]
fn bootstrap_details_ignore_column_ids_outside_the_column_count() {
    let mut d = BootstrapDetails::new();
    d.set_num_columns(10);
    d.add_vector_party_to_copy(BatchId(0), ColumnId(3));
    d.add_vector_party_to_copy(BatchId(0), ColumnId(10));
    d.mark_vector_party_finished(BatchId(0), ColumnId(12));
    let mut expected = vec![CopyStatus::NotApplicable; 10];
    expected[3] = CopyStatus::CopyNeeded;
    assert_eq!(d.batches().get(&BatchId(0)), Some(&expected));
    assert_eq!(
        d.status(BatchId(0), ColumnId(10)),
        CopyStatus::NotApplicable
    );
    assert!(!d.copy_complete());
}

// ------------------------ manager, peer source, data node (§8 items 9-12) ---

/// A node-wide bootstrap pass that takes one second, counts itself, and
/// fails with "pass N failed" when `fail` is set.
fn counting_pass(
    env: SimEnv,
    count: Rc<Cell<u32>>,
    fail: bool,
) -> impl AsyncFnMut() -> Result<(), String> + 'static {
    async move || {
        count.set(count.get() + 1);
        env.sleep(Duration::from_secs(1)).await;
        if fail {
            Err(format!("pass {} failed", count.get()))
        } else {
            Ok(())
        }
    }
}

/// Start `n` overlapping requests on `manager`, each with a counting pass.
fn overlapping_requests(
    sim: &Sim,
    manager: &Rc<BootstrapManager<SimEnv>>,
    count: &Rc<Cell<u32>>,
    n: usize,
    fail: bool,
) -> Vec<impl Future<Output = Result<Requested, PassErrors<String>>> + 'static> {
    (0..n)
        .map(|_| {
            let m = Rc::clone(manager);
            let pass = counting_pass(sim.env(ORIGIN), Rc::clone(count), fail);
            sim.spawn("bootstrap_request", Some(ORIGIN), async move {
                m.request(pass).await
            })
        })
        .collect()
}

/// docs/MODEL.md §8 item 9.
#[test]
fn ten_overlapping_bootstrap_requests_run_exactly_two_passes() {
    let (mut sim, _) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}"));
    let manager = Rc::new(BootstrapManager::new(sim.env(ORIGIN)));
    let count = Rc::new(Cell::new(0));
    let start = now(&sim, ORIGIN);
    let requests = overlapping_requests(&sim, &manager, &count, 10, false);

    sim.run_for(Duration::from_millis(500));
    assert!(manager.is_running() && manager.is_pending());
    assert!(!manager.is_bootstrapped());
    assert_eq!(manager.last_completed(), None);

    let outcomes = run(&mut sim, ORIGIN, join_all(requests));
    assert_eq!(count.get(), 2);
    assert_eq!(manager.passes(), 2);
    let ran: Vec<_> = outcomes
        .iter()
        .filter(|o| **o != Ok(Requested::Queued))
        .collect();
    assert_eq!(ran, vec![&Ok(Requested::Ran { passes: 2 })]);
    assert!(manager.is_bootstrapped());
    assert!(!manager.is_running() && !manager.is_pending());
    assert_eq!(
        manager.last_completed(),
        Some(start.saturating_add(Duration::from_secs(2)))
    );
}

/// docs/MODEL.md §8 item 9: errors go to the caller that ran the passes (a
/// queued caller only learns it was queued); the manager still reports
/// bootstrapped.
#[test]
fn failed_pass_errors_go_to_the_caller_that_ran_the_bootstrap() {
    let (mut sim, _) = cluster(&format!("{TWO_HOSTS_IDLE}{TRIPS}"));
    let manager = Rc::new(BootstrapManager::new(sim.env(ORIGIN)));
    let count = Rc::new(Cell::new(0));
    let requests = overlapping_requests(&sim, &manager, &count, 2, true);

    let mut outcomes = run(&mut sim, ORIGIN, join_all(requests));
    outcomes.sort_by_key(|o| *o == Ok(Requested::Queued));
    assert_eq!(
        outcomes,
        vec![
            Err(PassErrors(vec![
                "pass 1 failed".to_string(),
                "pass 2 failed".to_string()
            ])),
            Ok(Requested::Queued),
        ]
    );
    assert!(manager.is_bootstrapped());
}

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(9);

/// docs/MODEL.md §8 item 10: borrow a connection over `hosts` from n3, where
/// A serves but is not ready (unhealthy), B serves, and C is not a host of
/// the placement. What the borrow gave, and the hosts the callback ran on.
fn borrow_over(hosts: &'static [NodeId]) -> (Result<bool, NoPeerAvailable>, Vec<NodeId>) {
    let (mut sim, options) = cluster(&format!(
        "[cluster]\nnodes = 3\nreplicas = 3\nshards = 1\n{TRIPS}"
    ));
    serve(&sim, A, &options).set_ready(false);
    serve(&sim, B, &options);
    let origin = NodeId(3);
    let placement = sim.world().placement.view().placement.clone();
    let source = PeerSource::new(sim.env(origin), Rc::clone(&options), &placement);
    let calls = Rc::new(RefCell::new(Vec::new()));
    let c = Rc::clone(&calls);
    let result = run(&mut sim, origin, async move {
        source
            .borrow_connection(hosts, async |host, peer: &Rc<SimPeer<SimEnv>>| {
                c.borrow_mut().push(host);
                peer.health().await.expect("health")
            })
            .await
    });
    let calls = calls.borrow().clone();
    (result, calls)
}

/// docs/MODEL.md §8 item 10.
#[test]
fn borrow_connection_skips_unhealthy_and_unknown_hosts_and_runs_once_on_the_healthy_one() {
    let (result, calls) = borrow_over(&[A, B, C]);
    assert_eq!(result, Ok(true));
    assert_eq!(calls, vec![B]);
}

/// docs/MODEL.md §8 item 10.
#[test]
fn borrow_connection_without_a_healthy_host_fails_with_every_reason_and_never_runs() {
    let (result, calls) = borrow_over(&[A, C]);
    assert_eq!(
        result.map_err(|e| e.reasons),
        Err(vec![
            (A, PeerUnavailable::NotServing),
            (C, PeerUnavailable::Unknown)
        ])
    );
    assert_eq!(calls, vec![]);
}

/// docs/MODEL.md §8 item 11.
#[test]
fn only_the_shard_whose_every_fact_table_is_bootstrapped_is_ready() {
    let (mut sim, options) = cluster(
        "[cluster]\nnodes = 1\nreplicas = 1\nshards = 3\n\
         [workload]\nrows_per_second = 0\n\
         [[table]]\nname = \"orders\"\nkind = \"fact\"\n\
         [[table]]\nname = \"trips\"\nkind = \"fact\"\n",
    );
    let memstore = MemStore::new(sim.env(ORIGIN));
    let view = (*sim.world().placement.view()).clone();
    for (table, bootstrapped) in [("orders", &[1][..]), ("trips", &[0, 1, 2][..])] {
        for shard in 0..3 {
            let id = TableShardId::new(table, ShardId(shard));
            let ts = table_shard(&sim, &options, ORIGIN, &id, false);
            if bootstrapped.contains(&shard) {
                assert_eq!(
                    bootstrap(&mut sim, &options, ORIGIN, &ts, view.clone()),
                    Ok(())
                );
            }
            memstore.insert(ts);
        }
    }
    let ready: Vec<bool> = (0..3)
        .map(|s| memstore.shard_ready(ShardId(s), Quirks::default()))
        .collect();
    assert_eq!(ready, vec![false, true, false]);
}

/// docs/MODEL.md §8 item 12: on a data node that is copying its shard (n2
/// replaces n1 over a slow network), a retry request only marks the running
/// bootstrap pending; exactly one more pass follows, after the running one.
#[test]
fn retry_request_during_a_bootstrap_only_queues_one_more_pass() {
    let (mut sim, _) = cluster(&format!(
        "[cluster]\nnodes = 1\nspare_nodes = 1\nreplicas = 1\nshards = 1\n\
         [workload]\nrows_per_second = 0\n\
         [network]\nlatency_min = \"500ms\"\nlatency_max = \"500ms\"\n{TRIPS}"
    ));
    sim.start_all_nodes();
    sim.run_for(Duration::from_secs(15));
    // n2 gets an Initializing replica and copies it from n1 (Leaving). In
    // the simulation's context, so the wake-up of n2's placement watch lands.
    let placement = sim.world().placement.clone();
    sim.enter(|| placement.replace_node(NodeId(1), PEER))
        .expect("replace n1");
    sim.run_for(Duration::from_secs(2));
    let node = sim.node(PEER).expect("n2 runs");
    let id = TableShardId::new("trips", SHARD0);
    let ts = node.table_shard(&id).expect("trips/0 on n2");
    assert_eq!(ts.state(), BootstrapState::Bootstrapping);
    assert!(node.manager().is_running() && !node.manager().is_pending());
    let passes = node.manager().passes();

    sim.enter(|| node.retry());
    sim.run_for(Duration::from_millis(10));
    assert!(node.manager().is_pending(), "the retry is queued");
    assert_eq!(
        node.manager().passes(),
        passes,
        "no second bootstrap started"
    );
    assert_eq!(ts.state(), BootstrapState::Bootstrapping);

    // Until that bootstrap ends (later placement changes start new ones).
    let n = Rc::clone(&node);
    let after = run(&mut sim, PEER, async move {
        while n.manager().is_running() {
            sleep(Duration::from_millis(10)).await;
        }
        n.manager().passes()
    });
    assert_eq!(after, passes + 1, "exactly one more pass followed");
    assert!(!node.manager().is_pending());
    assert_eq!(ts.state(), BootstrapState::Bootstrapped);
}
