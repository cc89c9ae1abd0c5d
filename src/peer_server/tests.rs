//! Unit tests of the peer-data server (docs/MODEL.md §8 items 3–7, every
//! validation error and every quirk switch), on the fake world. Each quirk
//! is tested both ways, so removing either branch fails a test.

use std::time::Duration;

use super::*;
use crate::env::{ChunkStream, Env, KeepAliveClient, PeerClient};
use crate::fake::{FakeEnv, FakeKeepAliveClient, FakeKeepAliveServer, FakeWorld};
use crate::model::{
    BatchMeta, ColumnSchema, Cutoff, FileKey, MetaWrite, RedoPosition, ShardMeta, SnapshotProgress,
    TableSchema,
};
use crate::options::Options;
use crate::placement::ClusterView;
use crate::protocol::{
    CHUNK_BYTES, KeepAlive, MetadataRequest, PeerError, RawDataRequest, SessionRef,
    StartSessionReply, StartSessionRequest, TableMetadata, TableShardMetadata, VectorPartyRef,
};
use crate::quirks::{Quirk, Quirks};
use crate::trace_capture::Capture;
use crate::types::{
    BatchId, ColumnId, Day, NodeId, Offset, SessionId, ShardId, TableKind, TableShardId,
};

const CALLER: NodeId = NodeId(1);
const SOURCE: NodeId = NodeId(2);
const OTHER: NodeId = NodeId(3);
const TTL: Duration = Duration::from_secs(5 * 60);
const TODAY: Day = Day(100);

fn table(name: &str, kind: TableKind, retention_days: u32) -> TableSchema {
    TableSchema {
        name: name.into(),
        kind,
        retention_days,
        columns: (0..3)
            .map(|i| ColumnSchema {
                id: ColumnId(i),
                deleted: false,
                preloading_days: 1,
            })
            .collect(),
    }
}

/// A world at day 100 with a fact table `trips` (retention 9 days) and a
/// dimension table `cities`, and a ready server on `SOURCE`.
fn world(quirks: &[Quirk]) -> (FakeWorld, PeerServer<FakeEnv>) {
    let w = FakeWorld::new(42);
    w.net()
        .set_now(TODAY.start().saturating_add(Duration::from_secs(3600)));
    w.net().cluster().update(|v: &mut ClusterView| {
        v.tables
            .insert("trips".into(), table("trips", TableKind::Fact, 9));
        v.tables
            .insert("cities".into(), table("cities", TableKind::Dimension, 0));
    });
    let options = Options {
        quirks: quirks.iter().copied().collect::<Quirks>(),
        ..Options::default()
    };
    let server = w.serve(SOURCE, options);
    (w, server)
}

fn trips(shard: u32) -> TableShardId {
    TableShardId::new("trips", ShardId(shard))
}

fn cities() -> TableShardId {
    TableShardId::new("cities", ShardId::DIMENSION)
}

fn start_req(shard: &TableShardId, node: Option<NodeId>) -> StartSessionRequest {
    StartSessionRequest {
        table: shard.table.clone(),
        shard: shard.shard,
        node,
        ttl: TTL,
    }
}

fn session_ref(session: SessionId, shard: &TableShardId) -> SessionRef {
    SessionRef {
        session: Some(session),
        node: Some(CALLER),
        table: shard.table.clone(),
        shard: shard.shard,
    }
}

fn metadata_req(session: SessionId, shard: &TableShardId) -> MetadataRequest {
    MetadataRequest {
        session: session_ref(session, shard),
        batches: None,
    }
}

fn keep_alive(session: SessionId) -> KeepAlive {
    KeepAlive {
        session: Some(session),
        node: Some(CALLER),
    }
}

async fn start(server: &PeerServer<FakeEnv>, shard: &TableShardId) -> SessionId {
    server
        .start_session(start_req(shard, Some(CALLER)))
        .await
        .expect("session starts")
        .session
}

/// Open a keep-alive stream on `server` (its serving task spawned) and bind
/// it to `session` with a first keep-alive.
fn bind_stream(
    w: &mut FakeWorld,
    server: &PeerServer<FakeEnv>,
    session: SessionId,
) -> (
    FakeKeepAliveClient,
    crate::fake::FakeJoin<Result<(), PeerError>>,
) {
    let (mut client, end) = FakeKeepAliveServer::pair(&w.net(), SOURCE);
    let s = server.clone();
    let task = w.spawn(async move { s.serve_keep_alive(end).await });
    let ttl = w.run(async {
        client.send(keep_alive(session)).await.expect("send");
        client.recv().await.expect("recv")
    });
    assert_eq!(ttl, Some(TTL));
    (client, task)
}

fn open_shards(server: &PeerServer<FakeEnv>) -> Vec<(TableShardId, NodeId)> {
    server
        .sessions()
        .into_iter()
        .map(|s| (s.shard, s.node))
        .collect()
}

// ---------------------------------------------------- §8 item 3: start ---

#[test]
fn start_session_checks_caller_and_table_and_refuses_a_second_session_from_the_same_node() {
    let (mut w, server) = world(&[]);
    w.run(async {
        assert_eq!(
            server.start_session(start_req(&trips(1), None)).await,
            Err(PeerError::CallerNotSet)
        );
        let unknown = TableShardId::new("nope", ShardId(1));
        assert_eq!(
            server
                .start_session(start_req(&unknown, Some(CALLER)))
                .await,
            Err(PeerError::UnknownTable("nope".into()))
        );
        let fact = start(&server, &trips(1)).await;
        assert!(fact.0 > 0);
        let dim = start(&server, &cities()).await;
        assert!(dim.0 > 0);
        assert_ne!(fact, dim);
        assert_eq!(
            server
                .start_session(start_req(&cities(), Some(CALLER)))
                .await,
            Err(PeerError::SessionAlreadyRunning)
        );
    });
    assert_eq!(
        open_shards(&server),
        vec![(trips(1), CALLER), (cities(), CALLER)]
    );
}

#[test]
fn session_ids_come_from_one_counter_starting_at_one() {
    let (mut w, server) = world(&[]);
    let ids = w.run(async {
        vec![
            start(&server, &trips(1)).await,
            start(&server, &trips(2)).await,
            start(&server, &cities()).await,
        ]
    });
    assert_eq!(ids, vec![SessionId(1), SessionId(2), SessionId(3)]);
}

#[test]
fn sessions_from_different_nodes_for_one_table_shard_coexist() {
    let (mut w, server) = world(&[]);
    w.run(async {
        start(&server, &trips(1)).await;
        server
            .start_session(start_req(&trips(1), Some(OTHER)))
            .await
            .expect("other node");
    });
    assert_eq!(
        open_shards(&server),
        vec![(trips(1), CALLER), (trips(1), OTHER)]
    );
}

#[test]
fn server_that_is_not_ready_reports_unhealthy_and_refuses_sessions() {
    let (mut w, server) = world(&[]);
    server.set_ready(false);
    assert!(!server.health());
    let r = w.run(server.start_session(start_req(&trips(1), Some(CALLER))));
    assert_eq!(r, Err(PeerError::NotReady));
    server.set_ready(true);
    assert!(server.health());
}

// ------------------------------------------------ §8 item 4: keep-alive ---

#[test]
fn keep_alives_are_answered_with_the_ttl_and_a_clean_close_removes_the_session() {
    let (mut w, server) = world(&[]);
    let id = w.run(start(&server, &trips(1)));
    let (mut client, task) = bind_stream(&mut w, &server, id);
    w.run(async {
        for _ in 0..10 {
            client.send(keep_alive(id)).await.expect("send");
            assert_eq!(client.recv().await, Ok(Some(TTL)));
        }
    });
    assert_eq!(server.sessions().len(), 1);
    client.close();
    assert_eq!(w.run(task), Ok(()));
    assert!(server.sessions().is_empty());
}

/// Drive one keep-alive stream whose first message is `first`; the result
/// of `serve_keep_alive` and what the client saw.
fn first_keep_alive(
    w: &mut FakeWorld,
    server: &PeerServer<FakeEnv>,
    first: KeepAlive,
) -> (
    Result<(), PeerError>,
    Result<Option<Duration>, crate::protocol::RpcError>,
) {
    let (mut client, end) = FakeKeepAliveServer::pair(&w.net(), SOURCE);
    let s = server.clone();
    let task = w.spawn(async move { s.serve_keep_alive(end).await });
    let seen = w.run(async {
        client.send(first).await.expect("send");
        client.recv().await
    });
    (w.run(task), seen)
}

#[test]
fn keep_alive_with_an_unknown_session_fails_and_ends_the_stream() {
    let (mut w, server) = world(&[]);
    let (served, seen) = first_keep_alive(&mut w, &server, keep_alive(SessionId(77)));
    assert_eq!(served, Err(PeerError::InvalidSession(SessionId(77))));
    assert_eq!(seen, Ok(None));
}

#[test]
fn keep_alive_without_a_caller_fails() {
    let (mut w, server) = world(&[]);
    let id = w.run(start(&server, &trips(1)));
    let msg = KeepAlive {
        session: Some(id),
        node: None,
    };
    assert_eq!(
        first_keep_alive(&mut w, &server, msg).0,
        Err(PeerError::CallerNotSet)
    );
    assert_eq!(server.sessions().len(), 1);
}

#[test]
fn keep_alive_without_a_session_id_fails() {
    let (mut w, server) = world(&[]);
    let msg = KeepAlive {
        session: None,
        node: Some(CALLER),
    };
    assert_eq!(
        first_keep_alive(&mut w, &server, msg).0,
        Err(PeerError::SessionNotSet)
    );
}

#[test]
fn keep_alive_from_another_node_does_not_match_the_session() {
    let (mut w, server) = world(&[]);
    let id = w.run(start(&server, &trips(1)));
    let msg = KeepAlive {
        session: Some(id),
        node: Some(OTHER),
    };
    assert_eq!(
        first_keep_alive(&mut w, &server, msg).0,
        Err(PeerError::Mismatch)
    );
}

#[test]
fn keep_alives_keep_a_session_from_expiring() {
    let (mut w, server) = world(&[]);
    let id = w.run(start(&server, &trips(1)));
    let (mut client, _task) = bind_stream(&mut w, &server, id);
    for _ in 0..6 {
        w.advance(TTL / 2);
        w.run(async {
            client.send(keep_alive(id)).await.expect("send");
            client.recv().await.expect("recv");
        });
        assert!(
            !server.acquire_token(&trips(1)),
            "the session is still open"
        );
    }
    assert_eq!(server.sessions().len(), 1);
}

// -------------------------------------------------- §8 item 5: metadata ---

fn vp(shard: &TableShardId, batch: i32, version: u32, seq: u32, column: u32) -> FileKey {
    FileKey::VectorParty {
        shard: shard.clone(),
        batch: BatchId(batch),
        version: Cutoff(version),
        seq,
        column: ColumnId(column),
    }
}

fn snap(shard: &TableShardId, redo: RedoPosition, batch: i32, column: u32) -> FileKey {
    FileKey::Snapshot {
        shard: shard.clone(),
        redo,
        batch: BatchId(batch),
        column: ColumnId(column),
    }
}

fn batch(version: u32, seq: u32, size: u32) -> BatchMeta {
    BatchMeta {
        version: Cutoff(version),
        seq,
        size,
    }
}

/// Fact shard on the source: batches 90 (outside retention), 92 and 100,
/// and files for them (plus a stale version of 92's column 0).
fn fact_fixture(w: &FakeWorld) -> TableShardId {
    let id = trips(1);
    let env = w.host(SOURCE);
    let mut meta = ShardMeta {
        commit_offset: Offset(20),
        checkpoint_offset: Offset(10),
        cutoff: Cutoff(10),
        backfill: RedoPosition {
            file: 10,
            offset: 10,
        },
        ..ShardMeta::default()
    };
    meta.batches.insert(BatchId(90), batch(9, 0, 4));
    meta.batches.insert(BatchId(92), batch(10, 1, 5));
    meta.batches.insert(BatchId(100), batch(10, 0, 7));
    env.metastore().set(id.clone(), meta);
    for c in 0..3 {
        env.disk().put(vp(&id, 90, 9, 0, c), vec![1]);
        env.disk().put(vp(&id, 92, 10, 1, c), vec![2]);
    }
    env.disk().put(vp(&id, 92, 8, 0, 0), vec![3]);
    env.disk().put(vp(&id, 100, 10, 0, 0), vec![4]);
    env.disk().put(vp(&id, 100, 10, 0, 2), vec![4]);
    id
}

fn batch_ids(m: &TableShardMetadata) -> Vec<(BatchId, BatchMeta, Vec<ColumnId>)> {
    let batches = match &m.table {
        TableMetadata::Fact { batches, .. } | TableMetadata::Dimension { batches, .. } => batches,
    };
    batches
        .iter()
        .map(|b| (b.id, b.meta, b.columns.clone()))
        .collect()
}

fn cols(ids: &[u32]) -> Vec<ColumnId> {
    ids.iter().copied().map(ColumnId).collect()
}

#[test]
fn fact_metadata_lists_batches_within_retention_with_their_columns_on_disk() {
    let (mut w, server) = world(&[]);
    let id = fact_fixture(&w);
    let m = w.run(async {
        let s = start(&server, &id).await;
        server
            .fetch_metadata(metadata_req(s, &id))
            .await
            .expect("metadata")
    });
    assert_eq!(
        (m.commit_offset, m.checkpoint_offset),
        (Offset(20), Offset(10))
    );
    match &m.table {
        TableMetadata::Fact {
            cutoff, backfill, ..
        } => {
            assert_eq!(*cutoff, Cutoff(10));
            assert_eq!(
                *backfill,
                RedoPosition {
                    file: 10,
                    offset: 10
                }
            );
        }
        other => panic!("expected fact metadata, got {other:?}"),
    }
    assert_eq!(
        batch_ids(&m),
        vec![
            (BatchId(92), batch(10, 1, 5), cols(&[0, 1, 2])),
            (BatchId(100), batch(10, 0, 7), cols(&[0, 2])),
        ]
    );
}

#[test]
fn fact_metadata_takes_the_intersection_of_retention_and_the_requested_range() {
    let (mut w, server) = world(&[]);
    let id = fact_fixture(&w);
    let (narrow, wide, empty) = w.run(async {
        let s = start(&server, &id).await;
        let mut req = metadata_req(s, &id);
        req.batches = Some(BatchId(95)..=BatchId(200));
        let narrow = server.fetch_metadata(req.clone()).await.expect("metadata");
        req.batches = Some(BatchId(0)..=BatchId(92));
        let wide = server.fetch_metadata(req.clone()).await.expect("metadata");
        req.batches = Some(BatchId(200)..=BatchId(300));
        let empty = server.fetch_metadata(req).await.expect("metadata");
        (narrow, wide, empty)
    });
    let ids = |m: &TableShardMetadata| batch_ids(m).into_iter().map(|b| b.0).collect::<Vec<_>>();
    assert_eq!(ids(&narrow), vec![BatchId(100)]);
    assert_eq!(ids(&wide), vec![BatchId(92)]);
    assert!(ids(&empty).is_empty());
}

#[test]
fn fact_metadata_without_retention_has_no_lower_bound() {
    let (mut w, server) = world(&[]);
    w.net().cluster().update(|v| {
        v.tables
            .insert("trips".into(), table("trips", TableKind::Fact, 0));
    });
    let id = fact_fixture(&w);
    let m = w.run(async {
        let s = start(&server, &id).await;
        server
            .fetch_metadata(metadata_req(s, &id))
            .await
            .expect("metadata")
    });
    let ids: Vec<_> = batch_ids(&m).into_iter().map(|b| b.0).collect();
    assert_eq!(ids, vec![BatchId(90), BatchId(92), BatchId(100)]);
}

#[test]
fn dimension_metadata_reports_the_snapshot_and_its_batches() {
    let (mut w, server) = world(&[]);
    let id = cities();
    let env = w.host(SOURCE);
    let redo = RedoPosition {
        file: 123,
        offset: 1,
    };
    let snapshot = SnapshotProgress {
        redo,
        last_batch: BatchId(-110),
        last_batch_size: 6,
    };
    env.metastore().set(
        id.clone(),
        ShardMeta {
            commit_offset: Offset(20),
            checkpoint_offset: Offset(10),
            snapshot,
            ..ShardMeta::default()
        },
    );
    for c in 0..3 {
        env.disk().put(snap(&id, redo, -110, c), vec![c as u8]);
    }
    env.disk().put(
        snap(
            &id,
            RedoPosition {
                file: 100,
                offset: 0,
            },
            -111,
            0,
        ),
        vec![9],
    );
    let m = w.run(async {
        let s = start(&server, &id).await;
        server
            .fetch_metadata(metadata_req(s, &id))
            .await
            .expect("metadata")
    });
    assert_eq!(
        (m.commit_offset, m.checkpoint_offset),
        (Offset(20), Offset(10))
    );
    assert!(matches!(&m.table, TableMetadata::Dimension { snapshot: s, .. } if *s == snapshot));
    assert_eq!(
        batch_ids(&m),
        vec![(BatchId(-110), BatchMeta::default(), cols(&[0, 1, 2]))]
    );
}

// -------------------------------------------------- §8 item 6: raw data ---

fn drain(
    w: &mut FakeWorld,
    vector_party: VectorPartyRef,
    session: SessionId,
    shard: &TableShardId,
) -> Vec<Vec<u8>> {
    let caller = w.host(CALLER);
    let req = RawDataRequest {
        session: session_ref(session, shard),
        vector_party,
    };
    w.run(async move {
        let peer = caller.dial(SOURCE).await.expect("dial");
        let mut stream = peer.fetch_raw_data(req).await.expect("stream");
        let mut chunks = Vec::new();
        while let Some(c) = stream.next().await.expect("chunk") {
            chunks.push(c);
        }
        chunks
    })
}

#[test]
fn raw_data_streams_the_file_in_chunks_of_at_most_32_kib() {
    let (mut w, server) = world(&[]);
    let fact = trips(1);
    let dim = cities();
    let redo = RedoPosition {
        file: 123,
        offset: 1,
    };
    let big: Vec<u8> = (0..2 * CHUNK_BYTES + 5000)
        .map(|i| (i % 251) as u8)
        .collect();
    let small = vec![7u8; 100];
    let env = w.host(SOURCE);
    env.disk().put(vp(&fact, 100, 10, 1, 2), big.clone());
    env.disk().put(snap(&dim, redo, -110, 1), small.clone());
    let (s1, s2) = w.run(async { (start(&server, &fact).await, start(&server, &dim).await) });

    let fact_ref = VectorPartyRef::Fact {
        batch: BatchId(100),
        version: Cutoff(10),
        seq: 1,
        column: ColumnId(2),
    };
    let chunks = drain(&mut w, fact_ref, s1, &fact);
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![CHUNK_BYTES, CHUNK_BYTES, 5000]
    );
    assert_eq!(chunks.concat(), big);

    let snap_ref = VectorPartyRef::Snapshot {
        redo,
        batch: BatchId(-110),
        column: ColumnId(1),
    };
    assert_eq!(drain(&mut w, snap_ref, s2, &dim), vec![small]);
}

#[test]
fn streaming_a_batch_version_a_job_has_since_replaced_reaches_the_probe() {
    let (mut w, server) = world(&[]);
    let fact = trips(1);
    let env = w.host(SOURCE);
    env.disk().put(vp(&fact, 100, 10, 0, 0), vec![1]);
    env.disk().put(vp(&fact, 100, 10, 1, 0), vec![2]);
    env.disk().put(vp(&fact, 100, 10, 0, 2), vec![3]);
    let s = w.run(start(&server, &fact));
    let fact_ref = |seq, column| VectorPartyRef::Fact {
        batch: BatchId(100),
        version: Cutoff(10),
        seq,
        column: ColumnId(column),
    };
    // The current version, and an old version whose column has no newer
    // file: nothing was replaced.
    let capture = Capture::default();
    capture.run(|| {
        drain(&mut w, fact_ref(1, 0), s, &fact);
        drain(&mut w, fact_ref(0, 2), s, &fact);
    });
    assert!(capture.probes().is_empty(), "{:?}", capture.probes());
    // Seq 0 of column 0 was superseded by seq 1 (a backfill).
    capture.run(|| drain(&mut w, fact_ref(0, 0), s, &fact));
    assert_eq!(capture.probes(), ["batch_version_changed_during_copy"]);
}

#[test]
fn raw_data_of_a_missing_file_fails_file_not_found() {
    let (mut w, server) = world(&[]);
    let fact = trips(1);
    let r = w.run(async {
        let s = start(&server, &fact).await;
        let vector_party = VectorPartyRef::Fact {
            batch: BatchId(100),
            version: Cutoff(10),
            seq: 0,
            column: ColumnId(0),
        };
        server
            .fetch_raw_data(RawDataRequest {
                session: session_ref(s, &fact),
                vector_party,
            })
            .await
    });
    assert_eq!(r, Err(PeerError::FileNotFound));
}

// ---------------------------------------------------- §8 item 7: tokens ---

#[test]
fn token_is_granted_only_while_no_session_is_open_for_the_table_shard() {
    let (mut w, server) = world(&[]);
    assert!(server.acquire_token(&trips(1)));
    server.release_token(&trips(1));
    let id = w.run(start(&server, &trips(1)));
    assert!(!server.acquire_token(&trips(1)));
    assert!(
        server.acquire_token(&trips(2)),
        "another table shard is free"
    );
    server.release_token(&trips(2));
    let (client, task) = bind_stream(&mut w, &server, id);
    client.close();
    w.run(task).expect("clean end");
    assert!(server.acquire_token(&trips(1)));
}

// --------------------------------------------------------- validation ---

/// Every session-bound request on a session of `trips/1` from `CALLER`,
/// with `r` replacing the session reference.
fn both_requests(w: &mut FakeWorld, server: &PeerServer<FakeEnv>, r: SessionRef) -> [PeerError; 2] {
    let meta = MetadataRequest {
        session: r.clone(),
        batches: None,
    };
    let vector_party = VectorPartyRef::Fact {
        batch: BatchId(100),
        version: Cutoff(0),
        seq: 0,
        column: ColumnId(0),
    };
    let raw = RawDataRequest {
        session: r,
        vector_party,
    };
    w.run(async {
        [
            server
                .fetch_metadata(meta)
                .await
                .expect_err("metadata refused"),
            server
                .fetch_raw_data(raw)
                .await
                .expect_err("raw data refused"),
        ]
    })
}

#[test]
fn requests_are_validated_caller_then_session_then_known_then_match() {
    let (mut w, server) = world(&[]);
    let id = w.run(start(&server, &trips(1)));
    let good = session_ref(id, &trips(1));
    let cases = [
        (
            SessionRef {
                node: None,
                session: None,
                ..good.clone()
            },
            PeerError::CallerNotSet,
        ),
        (
            SessionRef {
                session: None,
                ..good.clone()
            },
            PeerError::SessionNotSet,
        ),
        (
            SessionRef {
                session: Some(SessionId(99)),
                ..good.clone()
            },
            PeerError::InvalidSession(SessionId(99)),
        ),
        (
            SessionRef {
                node: Some(OTHER),
                ..good.clone()
            },
            PeerError::Mismatch,
        ),
        (
            SessionRef {
                table: "cities".into(),
                ..good.clone()
            },
            PeerError::Mismatch,
        ),
        (
            SessionRef {
                shard: ShardId(2),
                ..good.clone()
            },
            PeerError::Mismatch,
        ),
    ];
    for (r, expected) in cases {
        assert_eq!(
            both_requests(&mut w, &server, r.clone()),
            [expected.clone(), expected],
            "{r:?}"
        );
    }
}

#[test]
fn requests_for_a_table_dropped_from_the_schema_fail_unknown_table() {
    let (mut w, server) = world(&[]);
    let id = w.run(start(&server, &trips(1)));
    w.net().cluster().update(|v| {
        v.tables.remove("trips");
    });
    let expected = PeerError::UnknownTable("trips".into());
    assert_eq!(
        both_requests(&mut w, &server, session_ref(id, &trips(1))),
        [expected.clone(), expected]
    );
}

// ------------------------------------------------------------- quirks ---

/// Two concurrent starts from one node for one table shard.
fn concurrent_starts(
    quirks: &[Quirk],
) -> (
    Vec<Result<StartSessionReply, PeerError>>,
    PeerServer<FakeEnv>,
) {
    let (mut w, server) = world(quirks);
    let (a, b) = w.run(futures::future::join(
        server.start_session(start_req(&trips(1), Some(CALLER))),
        server.start_session(start_req(&trips(1), Some(CALLER))),
    ));
    (vec![a, b], server)
}

#[test]
fn q6_concurrent_starts_from_the_same_node_both_pass_the_split_check() {
    let (results, server) = concurrent_starts(&[Quirk::Q6]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        open_shards(&server),
        vec![(trips(1), CALLER), (trips(1), CALLER)]
    );
}

#[test]
fn concurrent_starts_from_the_same_node_admit_one_without_q6() {
    let (results, server) = concurrent_starts(&[]);
    assert!(results[0].is_ok());
    assert_eq!(results[1], Err(PeerError::SessionAlreadyRunning));
    assert_eq!(server.sessions().len(), 1);
}

/// Bind a stream, break it by dropping the client, and try to start again.
fn broken_stream_then_retry(
    quirks: &[Quirk],
) -> (
    FakeWorld,
    PeerServer<FakeEnv>,
    Result<StartSessionReply, PeerError>,
) {
    let (mut w, server) = world(quirks);
    let id = w.run(start(&server, &trips(1)));
    let (client, task) = bind_stream(&mut w, &server, id);
    drop(client);
    w.run(task).expect("broken stream is not a server error");
    let retry = w.run(server.start_session(start_req(&trips(1), Some(CALLER))));
    (w, server, retry)
}

#[test]
fn q7_broken_stream_leaves_the_session_until_a_token_request_reaps_it() {
    let (mut w, server, retry) = broken_stream_then_retry(&[Quirk::Q7]);
    assert_eq!(retry, Err(PeerError::SessionAlreadyRunning));
    w.advance(TTL + Duration::from_secs(1));
    // Expired, but requests do not sweep with Q7 on.
    let again = w.run(server.start_session(start_req(&trips(1), Some(CALLER))));
    assert_eq!(again, Err(PeerError::SessionAlreadyRunning));
    assert_eq!(server.sessions().len(), 1);
    assert!(
        server.acquire_token(&trips(1)),
        "acquire_token reaps the expired session"
    );
    assert!(server.sessions().is_empty());
}

#[test]
fn broken_stream_removes_the_session_without_q7() {
    let (_w, server, retry) = broken_stream_then_retry(&[]);
    assert!(retry.is_ok(), "{retry:?}");
    assert_eq!(server.sessions().len(), 1);
}

/// A session without keep-alives expires; then another request arrives.
fn expired_then_other_request(quirks: &[Quirk]) -> PeerServer<FakeEnv> {
    let (mut w, server) = world(quirks);
    w.run(start(&server, &trips(1)));
    w.advance(TTL + Duration::from_millis(1));
    w.run(start(&server, &trips(2)));
    server
}

#[test]
fn expired_sessions_are_swept_on_every_request_without_q7() {
    let server = expired_then_other_request(&[]);
    assert_eq!(open_shards(&server), vec![(trips(2), CALLER)]);
}

#[test]
fn q7_expired_sessions_survive_requests_other_than_token_requests() {
    let server = expired_then_other_request(&[Quirk::Q7]);
    assert_eq!(
        open_shards(&server),
        vec![(trips(1), CALLER), (trips(2), CALLER)]
    );
}

#[test]
fn session_is_not_expired_at_exactly_its_ttl() {
    let (mut w, server) = world(&[]);
    w.run(start(&server, &trips(1)));
    w.advance(TTL);
    assert!(!server.acquire_token(&trips(1)));
}

/// A bound session that misses its keep-alives is swept by a token request;
/// what the client then sees on its stream.
fn swept_session_stream(
    quirks: &[Quirk],
) -> (
    PeerServer<FakeEnv>,
    Result<Option<Duration>, crate::protocol::RpcError>,
) {
    let (mut w, server) = world(quirks);
    let id = w.run(start(&server, &trips(1)));
    let (mut client, _task) = bind_stream(&mut w, &server, id);
    w.advance(TTL + Duration::from_secs(1));
    assert!(server.acquire_token(&trips(1)));
    server.release_token(&trips(1));
    w.run_until_stalled();
    let seen = w.run(async {
        // Sending may fail once the server has ended the stream.
        let _ = client.send(keep_alive(id)).await;
        client.recv().await
    });
    (server, seen)
}

#[test]
fn server_ends_the_stream_of_a_swept_session_without_q3() {
    let (server, seen) = swept_session_stream(&[]);
    assert_eq!(seen, Ok(None));
    assert!(server.sessions().is_empty());
}

#[test]
fn q3_swept_session_stream_keeps_answering_so_the_client_believes_it_is_alive() {
    let (server, seen) = swept_session_stream(&[Quirk::Q3]);
    assert_eq!(seen, Ok(Some(TTL)));
    assert!(
        server.sessions().is_empty(),
        "the session is gone all the same"
    );
}

/// Start a metadata fetch, stop it at its first await point, archive
/// (advance cutoff, commit offset and rewrite batch 100), then let it finish.
fn metadata_with_archiving_in_between(quirks: &[Quirk]) -> TableShardMetadata {
    let (mut w, server) = world(quirks);
    let id = fact_fixture(&w);
    let s = w.run(start(&server, &id));
    let srv = server.clone();
    let req = metadata_req(s, &id);
    let task = w.spawn(async move { srv.fetch_metadata(req).await });
    w.run_until_stalled();
    let env = w.host(SOURCE);
    env.metastore()
        .apply(&id, MetaWrite::CommitOffset(Offset(30)));
    env.metastore()
        .apply(&id, MetaWrite::CheckpointOffset(Offset(25)));
    env.metastore()
        .apply(&id, MetaWrite::ArchivingCutoff(Cutoff(20)));
    env.metastore().apply(
        &id,
        MetaWrite::BatchVersion {
            batch: BatchId(100),
            meta: batch(20, 0, 9),
        },
    );
    env.disk().put(vp(&id, 100, 20, 0, 1), vec![5]);
    w.run(task).expect("metadata")
}

#[test]
fn q8_metadata_mixes_offsets_read_before_archiving_with_batches_read_after() {
    let m = metadata_with_archiving_in_between(&[Quirk::Q8]);
    assert_eq!(
        (m.commit_offset, m.checkpoint_offset),
        (Offset(20), Offset(10))
    );
    assert!(matches!(
        m.table,
        TableMetadata::Fact {
            cutoff: Cutoff(20),
            ..
        }
    ));
    assert_eq!(
        batch_ids(&m)[1],
        (BatchId(100), batch(20, 0, 9), cols(&[1]))
    );
}

#[test]
fn metadata_is_one_consistent_read_without_q8() {
    let m = metadata_with_archiving_in_between(&[]);
    assert_eq!(
        (m.commit_offset, m.checkpoint_offset),
        (Offset(20), Offset(10))
    );
    assert!(matches!(
        m.table,
        TableMetadata::Fact {
            cutoff: Cutoff(10),
            ..
        }
    ));
    assert_eq!(
        batch_ids(&m)[1],
        (BatchId(100), batch(10, 0, 7), cols(&[0, 2]))
    );
}

#[test]
fn granted_token_blocks_new_sessions_until_released_without_q9() {
    let (mut w, server) = world(&[]);
    assert!(server.acquire_token(&trips(1)));
    assert!(server.acquire_token(&trips(1)), "jobs may share a token");
    assert!(server.token_held(&trips(1)));
    let refused = w.run(server.start_session(start_req(&trips(1), Some(CALLER))));
    assert_eq!(refused, Err(PeerError::TokenHeld));
    server.release_token(&trips(1));
    assert!(server.token_held(&trips(1)), "one grant is still out");
    server.release_token(&trips(1));
    assert!(!server.token_held(&trips(1)));
    assert!(
        w.run(server.start_session(start_req(&trips(1), Some(CALLER))))
            .is_ok()
    );
}

#[test]
fn q9_token_reserves_nothing_and_a_session_starts_while_it_is_held() {
    let (mut w, server) = world(&[Quirk::Q9]);
    assert!(server.acquire_token(&trips(1)));
    assert!(!server.token_held(&trips(1)));
    let started = w.run(server.start_session(start_req(&trips(1), Some(CALLER))));
    assert!(started.is_ok(), "{started:?}");
    server.release_token(&trips(1));
    assert!(
        !server.acquire_token(&trips(1)),
        "the session now blocks the next job"
    );
}

/// A bound session whose next keep-alive arrives after its ttl (Q7 off, so
/// that very request sweeps it); what the client gets back.
fn late_keep_alive(
    quirks: &[Quirk],
) -> (
    PeerServer<FakeEnv>,
    Result<Option<Duration>, crate::protocol::RpcError>,
) {
    let (mut w, server) = world(quirks);
    let id = w.run(start(&server, &trips(1)));
    let (mut client, _task) = bind_stream(&mut w, &server, id);
    w.advance(TTL + Duration::from_secs(1));
    let seen = w.run(async {
        client.send(keep_alive(id)).await.expect("send");
        client.recv().await
    });
    (server, seen)
}

#[test]
fn keep_alive_arriving_after_expiry_ends_the_stream_without_q3() {
    let (server, seen) = late_keep_alive(&[]);
    assert_eq!(seen, Ok(None));
    assert!(server.sessions().is_empty());
}

#[test]
fn q3_keep_alive_arriving_after_expiry_is_answered_though_the_session_is_gone() {
    let (server, seen) = late_keep_alive(&[Quirk::Q3]);
    assert_eq!(seen, Ok(Some(TTL)));
    assert!(server.sessions().is_empty());
}
