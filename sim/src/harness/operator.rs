//! Steps that do more than ask the placement service: the race check of
//! `bootstrap_again` (a second bootstrap of a running table shard must be
//! refused and change nothing) and the buggy operator automation of
//! [`Defect::AutoMarkAvailable`].

use crate::check::oracle::{Violation, ViolationKind};
use crate::engine::executor::{self};
use crate::world::state::SimEnv;
use crate::world::topology::PlacementService;
use shardboot::datanode::DataNode;
use shardboot::env::{Cluster, Env};
use shardboot::table_shard::{BootstrapError, BootstrapState};
use shardboot::types::{NodeId, ShardState, TableShardId};
use std::rc::Rc;
use std::time::Duration;

/// [`Defect::AutoMarkAvailable`]: every `Initializing` replica is marked
/// `Available` at once, as a buggy operator automation would.
pub(super) fn auto_mark_available(placement: &PlacementService) {
    let view = placement.view();
    for (shard, replicas) in &view.placement.shards {
        for (node, state) in replicas {
            if *state == ShardState::Initializing {
                let _ = placement.mark_available(*node, &[*shard]);
            }
        }
    }
}

/// Wait until `id` is bootstrapping on `node`, start a second bootstrap of it,
/// and check that it is refused and changes nothing.
pub(super) async fn bootstrap_again(
    dn: &Rc<DataNode<SimEnv>>,
    node: NodeId,
    id: &TableShardId,
) -> Option<Violation> {
    const POLL: Duration = Duration::from_millis(1);
    const PATIENCE: Duration = Duration::from_secs(600);
    let violation = |kind, detail: String| Violation {
        kind,
        node: Some(node),
        shard: Some(id.clone()),
        at: executor::now(),
        trace_index: None,
        detail,
    };
    let deadline = executor::now() + PATIENCE;
    let ts = loop {
        match dn.table_shard(id) {
            Some(ts) if ts.state() == BootstrapState::Bootstrapping => break ts,
            // Done before a poll saw it running (a drawn zero latency can
            // make a copy take no virtual time): nothing to race with, and
            // nothing wrong with the node.
            Some(ts) if ts.state() == BootstrapState::Bootstrapped => {
                tracing::info!(target: "sim::step", table = %id.table, shard = %id.shard,
                    "bootstrap_again_skipped");
                return None;
            }
            _ => {}
        }
        if executor::now() >= deadline {
            return Some(violation(
                ViolationKind::Liveness,
                "bootstrap_again: the table shard was never seen bootstrapping".into(),
            ));
        }
        executor::sleep(POLL).await;
    };
    let before = (ts.state(), ts.needs_peer_copy(), ts.details());
    let view = dn.env().cluster().view();
    let result = ts
        .bootstrap(dn.peer_source(), node, &view, dn.options())
        .await;
    let after = (ts.state(), ts.needs_peer_copy(), ts.details());
    match result {
        Err(BootstrapError::AlreadyBootstrapping) if before == after => None,
        Err(BootstrapError::AlreadyBootstrapping) => Some(violation(
            ViolationKind::BootstrapState,
            "the refused second bootstrap changed the table shard".into(),
        )),
        other => Some(violation(
            ViolationKind::ConcurrentBootstrap,
            format!("a second bootstrap was not refused: {other:?}"),
        )),
    }
}
