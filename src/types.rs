//! Identifiers and plain data shared by every module: hosts, shards, tables,
//! batches, offsets and time. Each is a newtype so that a shard id can never be
//! passed where a batch id is expected, and time is never a bare integer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A data node (host) of the cluster. Displayed as `n1`, `n2`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A shard of the fact tables. Dimension tables always live in shard 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl ShardId {
    /// The shard every dimension table lives in.
    pub const DIMENSION: ShardId = ShardId(0);
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A table's name, shared rather than copied: every table shard id, file
/// key and metastore key carries one, and ingestion builds several of those
/// per second per replica. Reads, compares, displays and prints (`Debug`)
/// as the string it holds.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TableName(Arc<str>);

/// By the string; names of one table usually share their text, so that
/// (file and metastore maps compare names on every lookup) is checked first,
/// and two tables' names mostly differ in their first byte, which is
/// compared before the rest.
impl Ord for TableName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        match (a.first(), b.first()) {
            (Some(x), Some(y)) if x != y => x.cmp(y),
            _ => a.cmp(b),
        }
    }
}

impl PartialOrd for TableName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl TableName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TableName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TableName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for TableName {
    fn from(name: &str) -> Self {
        TableName(name.into())
    }
}

impl From<String> for TableName {
    fn from(name: String) -> Self {
        TableName(name.into())
    }
}

impl From<&TableName> for TableName {
    fn from(name: &TableName) -> Self {
        name.clone()
    }
}

impl PartialEq<&str> for TableName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One table shard: the unit of bootstrap. Displayed as `trips/2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableShardId {
    pub table: TableName,
    pub shard: ShardId,
}

impl TableShardId {
    pub fn new(table: impl Into<TableName>, shard: ShardId) -> Self {
        TableShardId {
            table: table.into(),
            shard,
        }
    }
}

impl fmt::Display for TableShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.table, self.shard)
    }
}

/// An archive batch. For fact tables the batch id is the event day
/// (days since the Unix epoch); dimension tables use their own (negative) ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(pub i32);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A column of a table, `0..columns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnId(pub u32);

impl fmt::Display for ColumnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Position in a table shard's upstream log (like a Kafka offset): the
/// record at offset `o` is the `o`-th record ever ingested for that shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub u64);

impl Offset {
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A reading of a host's clock: milliseconds since the Unix epoch.
///
/// Hosts only learn time through [`crate::env::Env::now`]; in simulation each
/// host's clock is the virtual clock plus that host's skew.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const MILLIS_PER_DAY: u64 = 86_400_000;

    pub fn from_secs(secs: u64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    pub fn secs(self) -> u64 {
        self.0 / 1000
    }

    /// The day number of this instant (days since the epoch), as upstream
    /// computes "today": clock seconds / 86400.
    pub fn day(self) -> Day {
        Day((self.0 / Self::MILLIS_PER_DAY) as i32)
    }

    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }

    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.as_millis() as u64))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A day number: days since the Unix epoch. Fact rows carry their event day
/// and fact batches are one per day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

impl Day {
    pub fn batch(self) -> BatchId {
        BatchId(self.0)
    }

    pub fn start(self) -> Timestamp {
        Timestamp(self.0.max(0) as u64 * Timestamp::MILLIS_PER_DAY)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "day{}", self.0)
    }
}

/// Peer-data session id, handed out by the source host from one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// The state of one replica of a shard in the placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShardState {
    /// Just assigned; has no data yet and must copy it from a peer.
    Initializing,
    /// Serving and complete.
    Available,
    /// Being replaced; still has its data and may serve as a copy source.
    Leaving,
}

impl fmt::Display for ShardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShardState::Initializing => "initializing",
            ShardState::Available => "available",
            ShardState::Leaving => "leaving",
        })
    }
}

/// Whether a table is a time-series fact table or a keyed dimension table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    Fact,
    Dimension,
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TableKind::Fact => "fact",
            TableKind::Dimension => "dimension",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_compare_and_print_as_their_text_shared_or_not() {
        let trips = TableName::from("trips");
        let copy = TableName::from(String::from("trips"));
        assert_eq!(trips.cmp(&trips.clone()), std::cmp::Ordering::Equal);
        assert_eq!(trips.cmp(&copy), std::cmp::Ordering::Equal);
        let cities = TableName::from("cities");
        assert_eq!(cities.cmp(&trips), std::cmp::Ordering::Less);
        assert_eq!(trips.cmp(&cities), std::cmp::Ordering::Greater);
        assert!(cities < trips && trips >= copy);
        // Any two names order as their text does (first bytes equal or not,
        // one a prefix of the other, empty).
        let names = ["trips", "tags", "trip", "", "t", "cities", "Trips"];
        for a in names {
            for b in names {
                assert_eq!(
                    TableName::from(a).cmp(&TableName::from(b)),
                    a.cmp(b),
                    "{a} {b}"
                );
            }
        }
        assert_eq!(trips, "trips");
        assert_ne!(trips, "cities");
        assert_eq!((trips.as_str(), &*cities), ("trips", "cities"));
        assert_eq!(format!("{trips} {trips:?}"), r#"trips "trips""#);
        let id = TableShardId::new(trips, ShardId(2));
        assert_eq!(
            format!("{id} {id:?}"),
            r#"trips/2 TableShardId { table: "trips", shard: ShardId(2) }"#
        );
    }
}
