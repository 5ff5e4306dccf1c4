//! DynamoDB's capacity units, computed from the items each call writes or reads, so `make
//! bench` can say what an operation costs on AWS while running on moto (which does not
//! meter) or on the embedded store. A store decorator: every call goes to the inner store
//! unchanged; before a write, the item it replaces is read from the inner store (not
//! counted) to size the write and the index entries it changes.
//!
//! The rules, from DynamoDB's documentation:
//! - an item's size is the sum of its attribute names and values (strings: UTF-8 bytes;
//!   numbers: 1 byte per two significant digits + 1; booleans and null: 1; lists and maps:
//!   3 bytes + 1 per element + the elements, map keys included);
//! - a write costs 1 WCU per started KB of the larger of the old and the new item; a delete,
//!   of the deleted item; in a transaction every operation costs twice (`ConditionCheck`
//!   included);
//! - each secondary index entry written, replaced or deleted costs 1 WCU per started KB of
//!   its projected size (table keys, index keys and projected attributes). An update that
//!   changes an entry's keys is a delete and a put; one that changes no projected attribute
//!   costs the index nothing. Indexes are updated after a transaction commits, at the
//!   standard rate;
//! - a read costs 1 RCU per started 4 KB when strongly consistent, half when eventually
//!   consistent (indexes always are); a missing item costs the minimum; a query rounds the
//!   sum of the entries it returns, once per page.
//!
//! Approximations, all small for the figures this serves: a filtered query is sized by the
//! entries it returns (DynamoDB charges for those it examined too); a write whose condition
//! fails is charged for its item, without index entries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::{Condition, Index, Item, Key, Page, Projection, Query, Store, StoreError, WriteOp};

/// Units consumed, with where they went: `write_by` names the item kind (the sort key's
/// first segment, `CNT`, `LEAD`, ...) or the index (`gsi1`...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Units {
    pub write: f64,
    pub read: f64,
    pub write_by: BTreeMap<String, f64>,
}

impl Units {
    pub fn add(&mut self, other: &Units) {
        self.read += other.read;
        for (what, n) in &other.write_by {
            self.wrote(what, *n);
        }
    }

    /// Every figure divided by `n` (units per operation of a batch of `n`).
    pub fn per(&self, n: usize) -> Units {
        let n = n.max(1) as f64;
        Units {
            write: self.write / n,
            read: self.read / n,
            write_by: self.write_by.iter().map(|(what, units)| (what.clone(), units / n)).collect(),
        }
    }

    fn wrote(&mut self, what: &str, units: f64) {
        if units > 0.0 {
            self.write += units;
            *self.write_by.entry(what.to_owned()).or_default() += units;
        }
    }

    /// `"LEAD 4, gsi1 1, ..."`: where the write units went.
    pub fn breakdown(&self) -> String {
        let trim = |n: f64| {
            let text = format!("{n:.2}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        };
        self.write_by.iter().map(|(what, n)| format!("{what} {}", trim(*n))).collect::<Vec<_>>().join(", ")
    }
}

/// The store decorator that counts [`Units`].
pub struct CapacityMeter {
    inner: Arc<dyn Store>,
    /// Where the meter reads the items a write replaces: the same data as `inner`, through a
    /// client whose calls are not counted (the bench counts `inner`'s calls).
    shadow: Arc<dyn Store>,
    units: Mutex<Units>,
}

impl CapacityMeter {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self::with_shadow(inner.clone(), inner)
    }

    pub fn with_shadow(inner: Arc<dyn Store>, shadow: Arc<dyn Store>) -> Self {
        Self { inner, shadow, units: Mutex::new(Units::default()) }
    }

    /// The store the meter reads through uncounted, for reads that are not part of what is
    /// measured.
    pub fn unmetered(&self) -> &dyn Store {
        &*self.shadow
    }

    /// The units counted since the last call, and a fresh start.
    pub fn take(&self) -> Units {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Units> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the write of `new` over `old` (`None`: absent), `factor` 2 in a transaction.
    fn write(&self, old: Option<&Item>, new: Option<&Item>, factor: f64, succeeded: bool) {
        self.lock().add(&write_cost(old, new, factor, succeeded));
    }

    /// Each key of a batch read costs its item's units; a missing one, the minimum.
    fn read_batch(&self, keys: &[Key], found: &[Item], consistent: bool) {
        let unique: std::collections::HashSet<&Key> = keys.iter().collect();
        let missing = unique.len().saturating_sub(found.len());
        self.read(found.iter().map(item_size).chain(std::iter::repeat_n(0, missing)), consistent);
    }

    fn read(&self, sizes: impl IntoIterator<Item = usize>, consistent: bool) {
        let per = if consistent { 1.0 } else { 0.5 };
        let units: f64 = sizes.into_iter().map(|size| per * read_units(size)).sum();
        self.lock().read += units;
    }

    async fn current(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.shadow.get(key).await
    }
}

/// What writing `new` over `old` costs (`None`: absent; both `None` costs nothing here, the
/// meter charges a delete of nothing itself), `factor` 2 in a transaction; `indexes`: whether index entries are
/// written (not when the write's condition failed). Floors in `make bench` are priced with
/// this, on the same items our code writes.
pub fn write_cost(old: Option<&Item>, new: Option<&Item>, factor: f64, indexes: bool) -> Units {
    let mut units = Units::default();
    let Some(any) = new.or(old) else { return units };
    let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
    units.wrote(kind_of(&any.key), factor * write_units(size));
    if !indexes {
        return units;
    }
    for index in Index::SECONDARY {
        let before = old.and_then(|item| entry(item, index));
        let after = new.and_then(|item| entry(item, index));
        let cost = match (before, after, old, new) {
            (Some((_, size)), None, ..) | (None, Some((_, size)), ..) => write_units(size),
            (Some((old_key, old_size)), Some((new_key, new_size)), Some(old), Some(new)) => {
                if old_key != new_key {
                    write_units(old_size) + write_units(new_size)
                } else if projected_changed(index.projection(), old, new) {
                    write_units(old_size.max(new_size))
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        units.wrote(index.name().unwrap_or_default(), cost);
    }
    units
}

/// The item as it is after adding `counters` to `old` (or to nothing).
fn incremented(key: &Key, old: Option<&Item>, counters: &[(String, i64)]) -> Item {
    let mut item = old.cloned().unwrap_or_else(|| Item {
        key: key.clone(),
        indexes: [None, None, None, None],
        expires_at: None,
        version: 1,
        data: serde_json::Map::new(),
    });
    for (name, by) in counters {
        let total = item.counter(name) + by;
        item.data.insert(name.clone(), Value::from(total));
    }
    item
}

/// The first segment of a sort key (`LEAD`, `FEVT`, `CNT`, `INS`...), to say where units went.
fn kind_of(key: &Key) -> &str {
    key.sk.split('#').next().unwrap_or(&key.sk)
}

fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

fn read_units(size: usize) -> f64 {
    size.div_ceil(4096).max(1) as f64
}

/// An item's size as DynamoDB counts it, with the attributes the DynamoDB adapter writes:
/// keys, index keys, `expires_at`, `version` and each data field at the top level.
pub fn item_size(item: &Item) -> usize {
    let mut size = key_size(&item.key);
    for index in Index::SECONDARY {
        if let Some(key) = item.index_key(index) {
            let (pk, sk) = index.key_attrs();
            size += pk.len() + key.pk.len() + sk.len() + key.sk.len();
        }
    }
    if let Some(at) = item.expires_at {
        size += "expires_at".len() + number_size(&at.to_string());
    }
    size += "version".len() + number_size(&item.version.to_string());
    size + item.data.iter().map(|(name, value)| name.len() + value_size(value)).sum::<usize>()
}

fn key_size(key: &Key) -> usize {
    "pk".len() + key.pk.len() + "sk".len() + key.sk.len()
}

/// The item's entry in `index` (its keys there and its projected size), if it is in it.
fn entry(item: &Item, index: Index) -> Option<(Key, usize)> {
    let key = item.index_key(index)?.clone();
    let (pk, sk) = index.key_attrs();
    let keys = key_size(&item.key) + pk.len() + key.pk.len() + sk.len() + key.sk.len();
    let projected = match index.projection() {
        // Every attribute, other indexes' keys included.
        Projection::All => item_size(item) - key_size(&item.key) - (pk.len() + key.pk.len() + sk.len() + key.sk.len()),
        Projection::KeysOnly => 0,
        Projection::Include(names) => {
            names.iter().filter_map(|name| item.data.get(*name).map(|value| name.len() + value_size(value))).sum()
        }
    };
    Some((key, keys + projected))
}

fn projected_changed(projection: Projection, old: &Item, new: &Item) -> bool {
    match projection {
        Projection::KeysOnly => false,
        Projection::Include(names) => names.iter().any(|name| old.data.get(*name) != new.data.get(*name)),
        Projection::All => old.data != new.data || old.version != new.version || old.expires_at != new.expires_at,
    }
}

fn number_size(text: &str) -> usize {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => number_size(&n.to_string()),
        Value::String(s) => s.len(),
        Value::Array(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
    }
}

#[async_trait]
impl Store for CapacityMeter {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let found = self.inner.get(key).await?;
        self.read([found.as_ref().map_or(0, item_size)], true);
        Ok(found)
    }

    async fn get_eventually(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let found = self.inner.get_eventually(key).await?;
        self.read([found.as_ref().map_or(0, item_size)], false);
        Ok(found)
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let found = self.inner.batch_get(keys).await?;
        self.read_batch(keys, &found, true);
        Ok(found)
    }

    async fn batch_get_eventually(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let found = self.inner.batch_get_eventually(keys).await?;
        self.read_batch(keys, &found, false);
        Ok(found)
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let old = self.current(&item.key).await?;
        let result = self.inner.put(item.clone(), condition).await;
        self.write(old.as_ref(), Some(&item), 1.0, result.is_ok());
        result
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let old = self.current(key).await?;
        let result = self.inner.delete(key, condition).await;
        if old.is_some() {
            self.write(old.as_ref(), None, 1.0, result.is_ok());
        } else {
            self.lock().wrote(kind_of(key), 1.0);
        }
        result
    }

    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        let old = self.current(key).await?;
        let result = self.inner.increment(key, counters).await;
        self.write(old.as_ref(), Some(&incremented(key, old.as_ref(), counters)), 1.0, result.is_ok());
        result
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let page = self.inner.query(query).await?;
        // A keys-only read of an index that projects more still reads whole entries.
        let mut size = 0;
        for item in &page.items {
            let full = if query.keys_only {
                self.shadow.get(&item.key).await?.unwrap_or_else(|| item.clone())
            } else {
                item.clone()
            };
            size += match query.index {
                Index::Table => item_size(&full),
                index => entry(&full, index).map_or(0, |(_, size)| size),
            };
        }
        self.read([size], query.consistent && query.index == Index::Table);
        Ok(page)
    }

    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        let old = self.current(key).await?;
        let result = self.inner.add_and_read(key, counter, by, expires_at).await;
        let mut new = incremented(key, old.as_ref(), &[(counter.to_owned(), by)]);
        new.expires_at = new.expires_at.or(Some(expires_at));
        self.write(old.as_ref(), Some(&new), 1.0, result.is_ok());
        result
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let mut before = Vec::with_capacity(ops.len());
        for op in &ops {
            before.push(self.current(op.key()).await?);
        }
        let result = self.inner.transact_write(ops.clone()).await;
        for (op, old) in ops.iter().zip(&before) {
            let new = match op {
                WriteOp::Put { item, .. } => Some(item.clone()),
                WriteOp::Delete { .. } => None,
                WriteOp::Check { .. } => old.clone(),
                WriteOp::Increment { key, counters } => Some(incremented(key, old.as_ref(), counters)),
            };
            match (old, &new) {
                (None, None) => self.lock().wrote(kind_of(op.key()), 2.0),
                _ => {
                    let indexes = result.is_ok() && !matches!(op, WriteOp::Check { .. });
                    self.write(old.as_ref(), new.as_ref(), 2.0, indexes);
                }
            }
        }
        result
    }

    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let keys: Vec<Key> = items.iter().map(|item| item.key.clone()).collect();
        let old: BTreeMap<Key, Item> =
            self.shadow.batch_get(&keys).await?.into_iter().map(|item| (item.key.clone(), item)).collect();
        let result = self.inner.batch_put(items.clone()).await;
        for item in super::dedupe_last_wins(items) {
            self.write(old.get(&item.key), Some(&item), 1.0, result.is_ok());
        }
        result
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        let old = self.shadow.batch_get(keys).await?;
        let result = self.inner.batch_delete(keys).await;
        for item in &old {
            self.write(Some(item), None, 1.0, result.is_ok());
        }
        result
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.inner.purge_expired(now).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use serde_json::json;

    use super::*;

    fn meter() -> (CapacityMeter, tempfile::TempDir) {
        let (db, dir) = crate::testing::embedded_db();
        (CapacityMeter::new(Arc::new(crate::store::sqlite::SqliteStore::new(db))), dir)
    }

    fn item(sk: &str, text_bytes: usize) -> Item {
        Item::new(Key::new("P", sk), &json!({"text": "x".repeat(text_bytes)})).unwrap()
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        // pk "P" (2+1), sk "A" (2+1), version 1 (7+2), "n": 12345 (1 + 3 + 1), "b": true (1+1),
        // "l": ["ab"] (1 + 3 + 1 + 2), "m": {"k": null} (1 + 3 + 1 + 1 + 1).
        let item =
            Item::new(Key::new("P", "A"), &json!({"n": 12345, "b": true, "l": ["ab"], "m": {"k": null}})).unwrap();
        assert_eq!(item_size(&item), 3 + 3 + 9 + 5 + 2 + 7 + 7);
        assert_eq!(number_size("1000000"), 2, "trailing zeros are not significant");
        assert_eq!(number_size("-12.5"), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_cost_per_started_kilobyte_of_the_larger_item_and_double_in_a_transaction() {
        let (meter, _dir) = meter();
        meter.put(item("A", 100), Condition::Always).await.unwrap();
        assert_eq!(meter.take().write, 1.0);
        // Replacing a small item by a 1.5 KB one costs the larger: 2.
        meter.put(item("A", 1500), Condition::Always).await.unwrap();
        assert_eq!(meter.take().write, 2.0);
        // Shrinking it back still costs the larger (the item replaced).
        meter.put(item("A", 10), Condition::Always).await.unwrap();
        assert_eq!(meter.take().write, 2.0);
        let ops = vec![
            WriteOp::Put { item: item("B", 10), condition: Condition::NotExists },
            WriteOp::Increment { key: Key::new("P", "C"), counters: vec![("n".into(), 1)] },
            WriteOp::Check { key: Key::new("P", "A"), condition: Condition::Exists },
        ];
        meter.transact_write(ops).await.unwrap();
        let units = meter.take();
        assert_eq!(units.write, 6.0, "{units:?}");
        assert_eq!(units.breakdown(), "A 2, B 2, C 2");
        // A failed condition still costs its item.
        assert!(meter.put(item("B", 10), Condition::NotExists).await.is_err());
        assert_eq!(meter.take().write, 1.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn index_entries_cost_by_projection_and_only_when_they_change() {
        let (meter, _dir) = meter();
        // gsi1 projects `status` (and keys); gsi2 keys only.
        assert_eq!(Index::Gsi2.projection(), Projection::KeysOnly);
        let with = |status: &str, gsi2: &str| {
            Item::new(Key::new("P", "L"), &json!({"status": status, "blob": "x".repeat(1500)}))
                .unwrap()
                .with_gsi1("G1", "L")
                .with_index(Index::Gsi2, gsi2, "L")
        };
        meter.put(with("new", "a"), Condition::Always).await.unwrap();
        let units = meter.take();
        assert_eq!((units.write_by["L"], units.write_by["gsi1"], units.write_by["gsi2"]), (2.0, 1.0, 1.0), "{units:?}");
        // The same keys and status: only the table item.
        meter.put(with("new", "a"), Condition::Always).await.unwrap();
        assert_eq!(meter.take().breakdown(), "L 2");
        // A changed gsi2 key is a delete and a put; a changed status rewrites gsi1's entry.
        meter.put(with("pushed", "b"), Condition::Always).await.unwrap();
        assert_eq!(meter.take().breakdown(), "L 2, gsi1 1, gsi2 2");
        meter.delete(&Key::new("P", "L"), Condition::Always).await.unwrap();
        assert_eq!(meter.take().breakdown(), "L 2, gsi1 1, gsi2 1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_cost_per_started_four_kilobytes_half_when_eventually_consistent() {
        let (meter, _dir) = meter();
        meter.put(item("A", 5000), Condition::Always).await.unwrap();
        meter.put(item("B", 10), Condition::Always).await.unwrap();
        meter.take();
        meter.get(&Key::new("P", "A")).await.unwrap();
        assert_eq!(meter.take().read, 2.0);
        meter.get(&Key::new("P", "missing")).await.unwrap();
        assert_eq!(meter.take().read, 1.0, "a missing item costs the minimum");
        meter.batch_get(&[Key::new("P", "A"), Key::new("P", "B"), Key::new("P", "Z")]).await.unwrap();
        assert_eq!(meter.take().read, 4.0);
        // A query rounds the page once: 5 KB + a few bytes, eventually consistent.
        meter.query(&Query::table("P")).await.unwrap();
        assert_eq!(meter.take().read, 1.0);
        meter.query(&Query::table("P").consistent()).await.unwrap();
        assert_eq!(meter.take().read, 2.0);
    }
}
