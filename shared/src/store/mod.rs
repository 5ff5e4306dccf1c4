//! The storage port: a small, generic single-table interface (see DESIGN.md).
//!
//! Items have string `pk`/`sk` keys, optional keys in up to four secondary indexes (sparse:
//! an item without a `gsiN` key is not in that index),
//! an optional `expires_at` (unix seconds; DynamoDB TTL only cleans up, so readers compare it
//! themselves), a `version` for optimistic updates and a JSON object of data. Domain
//! repositories (`crate::repo`) are written once on top of this trait; the adapters are
//! DynamoDB and embedded SQLite, and one contract suite (`contract`) runs against both.

// The capacity model for `make bench`'s unit rows and its own tests.
#[cfg(any(test, feature = "capacity"))]
pub mod capacity;
pub mod cursor;
pub mod dynamodb;
// Unit tests inject faults in code; `LEADPUSH_FAULTS` needs the `faults` feature.
#[cfg(any(test, feature = "faults"))]
pub mod faulty;
pub mod keys;
mod query;
pub mod sealed;
#[cfg(feature = "embedded")]
pub mod sqlite;

#[cfg(test)]
pub mod contract;

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

pub use cursor::Cursor;
pub(crate) use query::validate_query;
pub use query::{Index, LISTING_FIELDS, Page, Projection, Query};

/// Attribute names the adapters own; data fields may not use them.
pub const RESERVED_ATTRIBUTES: [&str; 12] = [
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
    "gsi3pk",
    "gsi3sk",
    "gsi4pk",
    "gsi4sk",
    "expires_at",
    "version",
];

/// DynamoDB's limits, honoured by every adapter so behaviour is the same everywhere.
pub const MAX_TRANSACT_ITEMS: usize = 100;
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// An item, keys and data together, may be at most 400 KB (DynamoDB counts attribute names
/// and values; the embedded store counts the keys and the data's JSON, slightly more).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Maps and lists may nest at most 32 levels (an attribute holding a map is level 1).
pub const MAX_NESTING: usize = 32;

/// Refuses data DynamoDB would refuse: nesting deeper than [`MAX_NESTING`] or a number out
/// of its range. Every adapter checks this before writing (moto does not), so the embedded
/// store and tests behave like DynamoDB.
pub fn check_storable(item: &Item) -> Result<(), StoreError> {
    fn walk(value: &Value, level: usize) -> Result<(), String> {
        match value {
            // Integers always fit (at most 20 digits of DynamoDB's 38); only others are spelled out.
            Value::Number(n) if !(n.is_i64() || n.is_u64() || crate::domain::storable_number(&n.to_string())) => {
                Err(format!("number {n} is out of DynamoDB's range"))
            }
            Value::Array(_) | Value::Object(_) if level > MAX_NESTING => {
                Err(format!("nested deeper than {MAX_NESTING} levels"))
            }
            Value::Array(items) => items.iter().try_for_each(|v| walk(v, level + 1)),
            Value::Object(map) => map.values().try_for_each(|v| walk(v, level + 1)),
            _ => Ok(()),
        }
    }
    for (name, value) in &item.data {
        walk(value, 1)
            .map_err(|e| StoreError::Refused(format!("{}/{} attribute `{name}`: {e}", item.key.pk, item.key.sk)))?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    /// Keys in the secondary indexes `gsi1`..`gsi4` (`gsiNpk` / `gsiNsk`).
    pub indexes: [Option<Key>; 4],
    /// Unix seconds after which the item counts as absent for expiry-aware conditions.
    pub expires_at: Option<i64>,
    pub version: u64,
    pub data: Map<String, Value>,
}

impl Item {
    /// Builds an item at version 1 from any serialisable value that is a JSON object.
    pub fn new(key: Key, data: &impl Serialize) -> Result<Self, StoreError> {
        let data = match serde_json::to_value(data) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(StoreError::InvalidItem("item data must be a JSON object".into()));
            }
            Err(e) => return Err(StoreError::InvalidItem(e.to_string())),
        };
        if let Some(name) = RESERVED_ATTRIBUTES.iter().find(|name| data.contains_key(**name)) {
            return Err(StoreError::InvalidItem(format!("data field `{name}` is reserved")));
        }
        Ok(Self { key, indexes: [None, None, None, None], expires_at: None, version: 1, data })
    }

    pub fn with_gsi1(self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.with_index(Index::Gsi1, pk, sk)
    }

    /// Puts the item in a secondary index under these keys (no-op for `Index::Table`).
    pub fn with_index(mut self, index: Index, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        if let Some(slot) = index.slot() {
            self.indexes[slot] = Some(Key::new(pk, sk));
        }
        self
    }

    /// The item's keys in `index` (`Index::Table`: its own key).
    pub fn index_key(&self, index: Index) -> Option<&Key> {
        match index.slot() {
            None => Some(&self.key),
            Some(slot) => self.indexes[slot].as_ref(),
        }
    }

    /// Drops top-level null fields. A missing `Option` field reads back as `None`, so
    /// records whose optional fields are mostly unset (a lead) pay for what is set: a stored
    /// lead's nulls were about 15% of its size and took it past 1 KB, DynamoDB's unit of
    /// write cost.
    pub fn without_nulls(mut self) -> Self {
        self.data.retain(|_, value| !value.is_null());
        self
    }

    pub fn with_expiry(mut self, expires_at: i64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// Decodes the data back into a domain type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        T::deserialize(Value::Object(self.data.clone()))
            .map_err(|e| StoreError::Corrupt(format!("{}/{}: {e}", self.key.pk, self.key.sk)))
    }

    /// Whether the item has expired at `now` (unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The value of a numeric counter maintained with [`Store::increment`].
    pub fn counter(&self, name: &str) -> i64 {
        self.data.get(name).and_then(Value::as_i64).unwrap_or(0)
    }
}

/// Conditions a write can carry; evaluated atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    NotExists,
    Exists,
    /// Absent, or present with `expires_at <= now`: an expired item counts as absent.
    NotExistsOrExpired {
        now: i64,
    },
    /// Present with exactly this version (optimistic concurrency).
    VersionIs(u64),
}

impl Condition {
    /// Evaluates the condition against the current item, for adapters that check in code.
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Condition::Always, _) => true,
            (Condition::NotExists, current) => current.is_none(),
            (Condition::Exists, current) => current.is_some(),
            (Condition::NotExistsOrExpired { now }, current) => current.is_none_or(|item| item.is_expired(*now)),
            (Condition::VersionIs(version), Some(item)) => item.version == *version,
            (Condition::VersionIs(_), None) => false,
        }
    }
}

// Puts are most of the operations written; boxing their item would allocate for each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    Check {
        key: Key,
        condition: Condition,
    },
    /// Atomically adds to numeric data fields, creating the item (and fields) if needed.
    Increment {
        key: Key,
        counters: Vec<(String, i64)>,
    },
}

impl WriteOp {
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put { item, .. } => &item.key,
            WriteOp::Delete { key, .. } | WriteOp::Check { key, .. } | WriteOp::Increment { key, .. } => key,
        }
    }

    /// About what the operation counts against a transaction's 4 MB (keys and, for a put,
    /// the data's JSON, which is at least what DynamoDB counts for it).
    pub fn size(&self) -> usize {
        let key = self.key().pk.len() + self.key().sk.len();
        match self {
            WriteOp::Put { item, .. } => key + serde_json::to_vec(&item.data).map_or(usize::MAX / 2, |json| json.len()),
            WriteOp::Increment { counters, .. } => {
                key + counters.iter().map(|(name, _)| name.len() + 21).sum::<usize>()
            }
            _ => key,
        }
    }
}

/// One operation as a single call, outside any transaction (half the write units of the
/// same operation in one). A `Check` reads the item and fails as a put's condition would.
pub async fn write_one(store: &dyn Store, op: WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Put { item, condition } => store.put(item, condition).await,
        WriteOp::Delete { key, condition } => store.delete(&key, condition).await,
        WriteOp::Increment { key, counters } => store.increment(&key, &counters).await,
        WriteOp::Check { key, condition } => {
            if condition.holds(store.get(&key).await?.as_ref()) {
                Ok(())
            } else {
                Err(StoreError::ConditionFailed)
            }
        }
    }
}

/// DynamoDB's limit on a transaction's total size.
pub const MAX_TRANSACT_BYTES: usize = 4 * 1024 * 1024;

/// Splits operations into transactions within DynamoDB's limits: at most
/// [`MAX_TRANSACT_ITEMS`] operations and [`MAX_TRANSACT_BYTES`] each.
pub fn transaction_chunks(ops: Vec<WriteOp>) -> Vec<Vec<WriteOp>> {
    let mut chunks: Vec<Vec<WriteOp>> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let size = op.size();
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < MAX_TRANSACT_ITEMS && bytes + size <= MAX_TRANSACT_BYTES => {
                bytes += size;
                chunk.push(op);
            }
            _ => {
                bytes = size;
                chunks.push(vec![op]);
            }
        }
    }
    chunks
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the write's condition did not hold")]
    ConditionFailed,
    /// Nothing was written. `failed_op` names the operation whose condition failed; `None`
    /// means a concurrent transaction got in the way and the whole thing may be retried.
    #[error("transaction cancelled (operation {failed_op:?})")]
    TransactionCanceled { failed_op: Option<usize> },
    #[error("invalid item: {0}")]
    InvalidItem(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The cursor does not belong to this listing (or was tampered with).
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("stored item could not be decoded: {0}")]
    Corrupt(String),
    /// The backend is throttling, or concurrent transactions kept getting in the way, even
    /// after the adapter's own jittered retries. Nothing was written; retry later (the API
    /// answers 503 with `Retry-After`, the dispatcher backs off without counting it as poison).
    #[error("storage busy: {0}")]
    Busy(String),
    /// The backend refused the request itself (an item over 400 KB, nesting deeper than 32
    /// levels, a number out of range): the same request will always fail, so never retry it.
    #[error("storage refused the request: {0}")]
    Refused(String),
    /// Anything else from the backend, including timeouts (the write may or may not have
    /// happened: retries must be idempotent).
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether the same call may succeed later: infrastructure trouble, not a bad request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Busy(_) | StoreError::Backend(_) | StoreError::TransactionCanceled { failed_op: None }
        )
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one item, strongly consistent.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Reads one item, eventually consistent (half the read units on DynamoDB; a write made
    /// within about a second may not show yet). For reads that tolerate that, such as the
    /// credential lookup every request makes. Stores that are always consistent keep this.
    async fn get_eventually(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.get(key).await
    }

    /// Reads many items (any count; chunked by the adapter). Missing keys are omitted; order
    /// is not guaranteed.
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError>;

    /// [`Store::batch_get`], eventually consistent: for reads whose staleness a later
    /// conditional write catches (a version check, a `NotExists`), at half the read units.
    async fn batch_get_eventually(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.batch_get(keys).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError>;

    /// Atomically adds to numeric data fields, creating the item if it does not exist.
    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError>;

    async fn query(&self, query: &Query) -> Result<Page, StoreError>;
    /// Adds `by` to `counter` of the item at `key` and returns the new total, in one atomic
    /// call. An absent item is created with `expires_at` (a rate-limit window or a monthly
    /// quota: the key names the period, the expiry only clears it away).
    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError>;

    /// All-or-nothing, at most [`MAX_TRANSACT_ITEMS`] operations on distinct keys.
    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Unconditional puts of any count (chunked by the adapter; not atomic as a whole).
    /// When a key appears twice, the last item wins.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError>;

    /// Unconditional deletes of any count (chunked; not atomic as a whole).
    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError>;

    /// Removes items expired at `now`. DynamoDB's TTL does this itself, so the default is a
    /// no-op; the embedded store overrides it. Readers never depend on it.
    async fn purge_expired(&self, _now: i64) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Which adapter this is, for health checks and logs.
    fn kind(&self) -> &'static str;
}

/// Checks shared by the adapters so a bad transaction fails the same way everywhere.
pub(crate) fn validate_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACT_ITEMS {
        return Err(StoreError::InvalidRequest(format!(
            "a transaction takes 1 to {MAX_TRANSACT_ITEMS} operations, got {}",
            ops.len()
        )));
    }
    let bytes: usize = ops.iter().map(WriteOp::size).fold(0, usize::saturating_add);
    if bytes > MAX_TRANSACT_BYTES {
        return Err(StoreError::InvalidRequest(format!(
            "a transaction may write at most {MAX_TRANSACT_BYTES} bytes, got about {bytes} (split it: \
             `store::transaction_chunks`)"
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        if !keys.insert(op.key()) {
            return Err(StoreError::InvalidRequest(format!(
                "a transaction may touch {}/{} only once",
                op.key().pk,
                op.key().sk
            )));
        }
    }
    Ok(())
}

/// The smallest string greater than every string starting with `prefix`, if there is one.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        while next <= char::MAX as u32 {
            if let Some(c) = char::from_u32(next) {
                chars.push(c);
                return Some(chars.into_iter().collect());
            }
            next += 1; // skip the surrogate gap
        }
    }
    None
}

/// Keeps the last item for each key, preserving first-seen order.
pub(crate) fn dedupe_last_wins(items: Vec<Item>) -> Vec<Item> {
    let mut position = std::collections::HashMap::new();
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    for item in items {
        match position.get(&item.key) {
            Some(&i) => out[i] = item,
            None => {
                position.insert(item.key.clone(), out.len());
                out.push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_split_by_count_and_by_bytes() {
        let put = |i: usize, bytes: usize| WriteOp::Put {
            item: Item::new(Key::new(format!("P#{i}"), "x"), &serde_json::json!({"v": "x".repeat(bytes)})).unwrap(),
            condition: Condition::Always,
        };
        let small: Vec<WriteOp> = (0..250).map(|i| put(i, 10)).collect();
        let sizes: Vec<usize> = transaction_chunks(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
        // 30 items of 300 KB: 13 fit in 4 MB.
        let big: Vec<WriteOp> = (0..30).map(|i| put(i, 300 * 1024)).collect();
        let chunks = transaction_chunks(big);
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [13, 13, 4]);
        for chunk in &chunks {
            validate_transaction(chunk).unwrap();
        }
        let too_big: Vec<WriteOp> = (0..14).map(|i| put(i, 300 * 1024)).collect();
        assert!(matches!(validate_transaction(&too_big), Err(StoreError::InvalidRequest(m)) if m.contains("bytes")));
    }

    #[test]
    fn prefix_upper_bound_increments_last_char() {
        assert_eq!(prefix_upper_bound("L#").as_deref(), Some("L$"));
        assert_eq!(prefix_upper_bound("").as_deref(), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
    }

    #[test]
    fn item_rejects_reserved_data_fields() {
        let err = Item::new(Key::new("a", "b"), &serde_json::json!({"version": 3})).unwrap_err();
        assert!(err.to_string().contains("`version` is reserved"), "{err}");
    }

    #[test]
    fn expired_items_count_as_absent_for_expiry_conditions() {
        let item = Item::new(Key::new("a", "b"), &serde_json::json!({})).unwrap().with_expiry(100);
        assert!(Condition::NotExistsOrExpired { now: 100 }.holds(Some(&item)));
        assert!(!Condition::NotExistsOrExpired { now: 99 }.holds(Some(&item)));
        assert!(Condition::NotExistsOrExpired { now: 0 }.holds(None));
    }

    #[test]
    fn dedupe_keeps_last_item_per_key() {
        let a1 = Item::new(Key::new("p", "a"), &serde_json::json!({"n": 1})).unwrap();
        let b = Item::new(Key::new("p", "b"), &serde_json::json!({"n": 2})).unwrap();
        let a2 = Item::new(Key::new("p", "a"), &serde_json::json!({"n": 3})).unwrap();
        let out = dedupe_last_wins(vec![a1, b, a2]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data["n"], 3);
    }
}
