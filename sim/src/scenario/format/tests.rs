//! Unit tests of [`super`] (`format`).

use std::path::Path;

use shardboot::quirks::Quirk;

use super::*;
use crate::world::node_name::NodeName;

const GOOD: &str = r#"
name = "t"
duration = "2h"
quirks = ["Q9"]

[cluster]
nodes = 3
spare_nodes = 1
replicas = 2
shards = 4

[[table]]
name = "trips"
kind = "fact"
retention_days = 7

[[step]]
at = "10m"
do = "replace_node"
old = "n1"
new = "n4"
"#;

fn err(text: &str) -> String {
    Scenario::parse(Path::new("s.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_good_file_loads_with_defaults() {
    let s = Scenario::parse(Path::new("s.toml"), GOOD).unwrap();
    assert_eq!(s.duration, Duration::from_secs(7200));
    assert_eq!(s.expect, Expect::Pass);
    assert!(s.quirk_set().on(Quirk::Q9));
    assert_eq!(s.cluster.all_nodes().len(), 4);
    assert_eq!(
        s.steps[0].get_ref().action,
        Action::ReplaceNode {
            old: NodeName(NodeId(1)),
            new: NodeName(NodeId(4))
        }
    );
    assert_eq!(
        s.bootstrap_options().max_concurrent_streams_per_table_shard,
        2
    );
}

#[test]
fn quirks_switch_on_and_off() {
    let mut s = Scenario::parse(Path::new("s.toml"), GOOD).unwrap();
    s.switch_on(Quirk::Q3);
    s.switch_on(Quirk::Q3);
    assert_eq!(s.quirks.len(), 2);
    s.switch_off(Quirk::Q9);
    assert_eq!(s.quirk_set().iter().collect::<Vec<_>>(), vec![Quirk::Q3]);
    s.switch_off(Quirk::Q3);
    assert!(s.quirks.is_empty());
}

#[test]
fn errors_name_file_line_and_field() {
    let e = err(&GOOD.replace("new = \"n4\"", "new = \"n9\""));
    assert_eq!(
        e,
        "s.toml:21: field `new`: n9 is not a node of this scenario (n1..n4)"
    );
    let e = err(&GOOD.replace("[\"Q9\"]", "[\"Q99\"]"));
    assert_eq!(
        e,
        "s.toml:4: field `quirks`: unknown quirk \"Q99\": expected one of Q1..Q14"
    );
    let e = err(&GOOD.replace("retention_days = 7", "retention_dayz = 7"));
    assert!(
        e.starts_with("s.toml:15:1: unknown field `retention_dayz`"),
        "{e}"
    );
    let e = err(&GOOD.replace("\"2h\"", "\"2 hours\""));
    assert!(
        e.starts_with("s.toml:3:12: `2 hours` is not a duration"),
        "{e}"
    );
    let e = err(&GOOD.replace("do = \"replace_node\"", "do = \"explode\""));
    assert!(e.contains("unknown variant `explode`"), "{e}");
    let e = err(&GOOD.replace("at = \"10m\"", "at = \"3h\""));
    assert_eq!(
        e,
        "s.toml:18: field `at`: step is after the end of the run (`duration`)"
    );
}

#[test]
fn options_are_set_from_the_file_and_zero_is_refused_at_its_line() {
    let with =
        |options: &str| GOOD.replace("[[step]]", &format!("[options]\n{options}\n\n[[step]]"));
    let s = Scenario::parse(Path::new("s.toml"), &with("ingest_interval = \"5s\"")).unwrap();
    assert_eq!(
        s.bootstrap_options().ingest_interval,
        Duration::from_secs(5)
    );
    let two = "max_concurrent_table_shards = 2\nmax_concurrent_streams_per_table_shard = 0";
    assert_eq!(
        err(&with(two)),
        "s.toml:19: field `max_concurrent_streams_per_table_shard`: in [options]: must be at least 1"
    );
    assert_eq!(
        err(&with("max_concurrent_table_shards = 0")),
        "s.toml:18: field `max_concurrent_table_shards`: in [options]: must be at least 1"
    );
    for field in ["session_ttl", "ingest_interval"] {
        assert_eq!(
            err(&with(&format!("{field} = \"0s\""))),
            format!("s.toml:18: field `{field}`: in [options]: must be longer than zero")
        );
    }
}

#[test]
fn durations_round_trip() {
    for s in ["2h", "1h30m", "90ms", "1d2h3m4s5ms"] {
        assert_eq!(duration::format(duration::parse(s).unwrap()), s);
    }
    assert!(duration::parse("").is_err());
    assert!(duration::parse("5").is_err());
    assert!(duration::parse("5x").is_err());
}
