//! The embedded store adapter: the same semantics as DynamoDB on one SQLite table.
//! Conditions are evaluated in code inside an immediate transaction, so check-and-write is
//! atomic even with several processes on the same file.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, Transaction, params, types::Value as SqlValue};
use serde_json::{Map, Value};

use super::{
    Condition, Cursor, Index, Item, Key, Page, Query, Store, StoreError, WriteOp, dedupe_last_wins, prefix_upper_bound,
    validate_transaction,
};
mod checkpoint;
mod database;
mod group_commit;
mod schema;

pub use checkpoint::{Checkpoint, WAL_BOUND_BYTES, WalPolicy, truncate_wal, wal_path};
pub use database::{DB_FILE, EmbeddedDb, EmbeddedError, partition_hash};
pub use schema::SCHEMA;

impl From<EmbeddedError> for StoreError {
    fn from(e: EmbeddedError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    db: EmbeddedDb,
}

impl SqliteStore {
    pub fn new(db: EmbeddedDb) -> Self {
        Self { db }
    }
}

/// The key columns of [`COLUMNS`], as a macro so that fixed statements are `concat!`ed
/// at compile time (a `format!` per point read was 1.7 % of a feedback event).
macro_rules! key_columns {
    () => {
        "pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, gsi3pk, gsi3sk, gsi4pk, gsi4sk, expires_at"
    };
}
const COLUMNS: &str = concat!(key_columns!(), ", version, data");
/// [`COLUMNS`] for a keys-only query: the row's data is neither read out nor decoded.
const KEY_COLUMNS: &str = concat!(key_columns!(), ", 0, NULL");

fn row_to_item(row: &Row<'_>) -> rusqlite::Result<Item> {
    let index = |n: usize| -> rusqlite::Result<Option<Key>> {
        let pk: Option<String> = row.get(2 + 2 * n)?;
        let sk: Option<String> = row.get(3 + 2 * n)?;
        Ok(pk.zip(sk).map(|(pk, sk)| Key { pk, sk }))
    };
    // NULL: a keys-only query or a condition check (the column is never NULL in the table).
    let data: Option<String> = row.get(12)?;
    let data: Map<String, Value> = match data {
        Some(data) => serde_json::from_str(&data)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(12, rusqlite::types::Type::Text, Box::new(e)))?,
        None => Map::new(),
    };
    Ok(Item {
        key: Key { pk: row.get(0)?, sk: row.get(1)? },
        indexes: [index(0)?, index(1)?, index(2)?, index(3)?],
        expires_at: row.get(10)?,
        version: row.get::<_, i64>(11)? as u64,
        data,
    })
}

/// The stored item under `key` without its data (not read, not decoded), to check a condition.
fn read_head(tx: &Transaction<'_>, key: &Key) -> Result<Option<Item>, StoreError> {
    Ok(tx
        .prepare_cached(concat!("SELECT ", key_columns!(), ", version, NULL FROM items WHERE pk = ?1 AND sk = ?2"))?
        .query_row(params![key.pk, key.sk], row_to_item)
        .optional()?)
}

/// One item by key, on a connection or inside a transaction (`Transaction` derefs to it).
fn read(conn: &rusqlite::Connection, key: &Key) -> Result<Option<Item>, StoreError> {
    Ok(conn
        .prepare_cached(concat!("SELECT ", key_columns!(), ", version, data FROM items WHERE pk = ?1 AND sk = ?2"))?
        .query_row(params![key.pk, key.sk], row_to_item)
        .optional()?)
}

/// Batch reads of up to this many keys run on the caller's thread (see `EmbeddedDb::read`).
const INLINE_READ_KEYS: usize = 8;
/// Queries of a page of at most this many rows, without a filter, run there too (a
/// workspace's webhooks, read on every feedback event that changes a lead).
const INLINE_QUERY_ROWS: usize = 50;

/// The items among `keys` (each once), from one snapshot.
fn read_many(conn: &mut rusqlite::Connection, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(keys.len());
    let mut seen = std::collections::HashSet::new();
    for key in keys.iter().filter(|k| seen.insert(*k)) {
        if let Some(item) = read(&tx, key)? {
            out.push(item);
        }
    }
    Ok(out)
}

/// An item as its row: encoded and checked before it is handed to the writer thread, so
/// that thread only runs SQL (and the item's JSON tree is freed on the caller's thread).
struct EncodedItem {
    key: Key,
    indexes: [Option<(i64, Key)>; 4],
    expires_at: Option<i64>,
    version: i64,
    data: String,
}

impl EncodedItem {
    fn encode(item: Item) -> Result<Self, StoreError> {
        super::check_storable(&item)?;
        let data = serde_json::to_string(&item.data).map_err(|e| StoreError::InvalidItem(e.to_string()))?;
        let size = item.key.pk.len() + item.key.sk.len() + data.len();
        if size > super::MAX_ITEM_BYTES {
            return Err(StoreError::Refused(format!(
                "{}/{}: item is {size} bytes, over DynamoDB's {} byte limit",
                item.key.pk,
                item.key.sk,
                super::MAX_ITEM_BYTES
            )));
        }
        let Item { key, indexes, expires_at, version, data: _ } = item;
        Ok(EncodedItem {
            key,
            indexes: indexes.map(|g| g.map(|k| (partition_hash(&k.pk), k))),
            expires_at,
            version: version as i64,
            data,
        })
    }
}

fn write(tx: &Transaction<'_>, row: &EncodedItem) -> Result<(), StoreError> {
    // Cached: a batch writes thousands of rows with these statements. A row that exists
    // with the same index columns (hashes included) and expiry gets its data and version
    // only: an upsert that assigns an index column makes SQLite delete and re-insert that
    // index entry, changed or not, each a page in the WAL (a feedback event's lead update
    // wrote 3 pages, not 1). The row (and its rowid) stays in place either way.
    let mut upsert = tx.prepare_cached(
        "INSERT INTO items (pk, sk, gsi1h, gsi1pk, gsi1sk, gsi2h, gsi2pk, gsi2sk, gsi3h, gsi3pk, gsi3sk,
                            gsi4h, gsi4pk, gsi4sk, expires_at, version, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (pk, sk) DO UPDATE SET version = excluded.version, data = excluded.data
         WHERE gsi1h IS excluded.gsi1h AND gsi1pk IS excluded.gsi1pk AND gsi1sk IS excluded.gsi1sk
           AND gsi2h IS excluded.gsi2h AND gsi2pk IS excluded.gsi2pk AND gsi2sk IS excluded.gsi2sk
           AND gsi3h IS excluded.gsi3h AND gsi3pk IS excluded.gsi3pk AND gsi3sk IS excluded.gsi3sk
           AND gsi4h IS excluded.gsi4h AND gsi4pk IS excluded.gsi4pk AND gsi4sk IS excluded.gsi4sk
           AND expires_at IS excluded.expires_at",
    )?;
    let [g1, g2, g3, g4] = &row.indexes;
    fn hash(g: &Option<(i64, Key)>) -> Option<i64> {
        g.as_ref().map(|(h, _)| *h)
    }
    fn pk(g: &Option<(i64, Key)>) -> Option<&str> {
        g.as_ref().map(|(_, k)| k.pk.as_str())
    }
    fn sk(g: &Option<(i64, Key)>) -> Option<&str> {
        g.as_ref().map(|(_, k)| k.sk.as_str())
    }
    let args = params![
        row.key.pk,
        row.key.sk,
        hash(g1),
        pk(g1),
        sk(g1),
        hash(g2),
        pk(g2),
        sk(g2),
        hash(g3),
        pk(g3),
        sk(g3),
        hash(g4),
        pk(g4),
        sk(g4),
        row.expires_at,
        row.version,
        row.data
    ];
    if upsert.execute(args)? == 0 {
        // The row exists and moves in some index, or its expiry changes.
        tx.prepare_cached(
            "UPDATE items SET gsi1h = ?3, gsi1pk = ?4, gsi1sk = ?5, gsi2h = ?6, gsi2pk = ?7, gsi2sk = ?8,
                              gsi3h = ?9, gsi3pk = ?10, gsi3sk = ?11, gsi4h = ?12, gsi4pk = ?13, gsi4sk = ?14,
                              expires_at = ?15, version = ?16, data = ?17
             WHERE pk = ?1 AND sk = ?2",
        )?
        .execute(args)?;
    }
    Ok(())
}

/// A transaction's operation as the writer thread runs it.
enum Op {
    Put(Condition, Box<EncodedItem>),
    Delete(Condition, Key),
    Check(Condition, Key),
    Increment(Key, Vec<(String, i64)>),
}

fn remove(tx: &Transaction<'_>, key: &Key) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?.execute(params![key.pk, key.sk])?;
    Ok(())
}

fn add_counters(tx: &Transaction<'_>, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
    let mut item = match read(tx, key)? {
        Some(item) => item,
        None => {
            Item { key: key.clone(), indexes: [None, None, None, None], expires_at: None, version: 0, data: Map::new() }
        }
    };
    for (name, delta) in counters {
        let current = item.data.get(name).and_then(Value::as_i64).unwrap_or(0);
        item.data.insert(name.clone(), Value::from(current + delta));
    }
    write(tx, &EncodedItem::encode(item)?)
}

fn check_counter_names(counters: &[(String, i64)]) -> Result<(), StoreError> {
    match counters.iter().find(|(name, _)| super::RESERVED_ATTRIBUTES.contains(&name.as_str())) {
        Some((name, _)) => Err(StoreError::InvalidItem(format!("counter `{name}` is reserved"))),
        None => Ok(()),
    }
}

fn filter_value(value: &Value) -> Result<SqlValue, StoreError> {
    Ok(match value {
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or_default()),
        },
        _ => {
            return Err(StoreError::InvalidRequest("filters compare strings, numbers or booleans".into()));
        }
    })
}

fn run_query(tx: &Transaction<'_>, q: &Query) -> Result<Page, StoreError> {
    let (pk_col, sk_col) = q.index.key_attrs();
    let columns = if q.keys_only { KEY_COLUMNS } else { COLUMNS };
    let mut sql = format!("SELECT {columns} FROM items WHERE {pk_col} = ?");
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(q.partition.clone())];
    if let Some(name) = q.index.name() {
        // The index is keyed by the partition's hash; the text comparison above settles collisions.
        sql.push_str(&format!(" AND {name}h = ?"));
        args.push(SqlValue::Integer(partition_hash(&q.partition)));
    }
    if let Some(prefix) = &q.sk_prefix {
        sql.push_str(&format!(" AND {sk_col} >= ?"));
        args.push(SqlValue::Text(prefix.clone()));
        if let Some(upper) = prefix_upper_bound(prefix) {
            sql.push_str(&format!(" AND {sk_col} < ?"));
            args.push(SqlValue::Text(upper));
        }
    }
    let cmp = if q.descending { "<" } else { ">" };
    if let Some(bound) = &q.sk_after {
        sql.push_str(&format!(" AND {sk_col} {cmp} ?"));
        args.push(SqlValue::Text(bound.clone()));
    }
    if let Some(cursor) = &q.cursor {
        cursor.check(q.index, &q.partition)?;
        match q.index {
            Index::Table => {
                sql.push_str(&format!(" AND sk {cmp} ?"));
                args.push(SqlValue::Text(cursor.sk.clone()));
            }
            _ => {
                // Index sort keys need not be unique: order by the table key after them.
                sql.push_str(&format!(" AND ({sk_col}, pk, sk) {cmp} (?, ?, ?)"));
                args.push(SqlValue::Text(cursor.isk.clone().unwrap_or_default()));
                args.push(SqlValue::Text(cursor.pk.clone()));
                args.push(SqlValue::Text(cursor.sk.clone()));
            }
        }
    }
    if let Some((field, value)) = &q.filter {
        sql.push_str(" AND json_extract(data, ?) = ?");
        args.push(SqlValue::Text(format!("$.\"{}\"", field.replace('"', ""))));
        args.push(filter_value(value)?);
    }
    let dir = if q.descending { "DESC" } else { "ASC" };
    match q.index {
        Index::Table => sql.push_str(&format!(" ORDER BY sk {dir}")),
        _ => sql.push_str(&format!(" ORDER BY {sk_col} {dir}, pk {dir}, sk {dir}")),
    }
    let limit = q.limit.max(1);
    sql.push_str(&format!(" LIMIT {}", limit + 1));
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut items = stmt.query_map(rusqlite::params_from_iter(args), row_to_item)?.collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| Cursor::after(last, q.index))
    } else {
        None
    };
    Ok(Page { items, next })
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.db.read(move |conn| read(conn, &key)).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        // A handful of keys is a point read; a long list (a page of leads) goes to a
        // blocking thread.
        let keys = keys.to_vec();
        if keys.len() <= INLINE_READ_KEYS {
            self.db.read(move |conn| read_many(conn, &keys)).await
        } else {
            self.db.run(move |conn| read_many(conn, &keys)).await
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let row = EncodedItem::encode(item)?;
        self.db
            .write(move |tx| {
                if condition != Condition::Always && !condition.holds(read_head(tx, &row.key)?.as_ref()) {
                    return Err(StoreError::ConditionFailed);
                }
                write(tx, &row)
            })
            .await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        let key = key.clone();
        self.db
            .write(move |tx| {
                if condition != Condition::Always && !condition.holds(read_head(tx, &key)?.as_ref()) {
                    return Err(StoreError::ConditionFailed);
                }
                remove(tx, &key)
            })
            .await
    }

    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        check_counter_names(counters)?;
        let (key, counters) = (key.clone(), counters.to_vec());
        self.db.write(move |tx| add_counters(tx, &key, &counters)).await
    }

    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        let counters = [(counter.to_owned(), by)];
        check_counter_names(&counters)?;
        let key = key.clone();
        self.db
            .write(move |tx| {
                let [(name, by)] = counters;
                let mut item = read(tx, &key)?.unwrap_or_else(|| Item {
                    key: key.clone(),
                    indexes: [None, None, None, None],
                    expires_at: Some(expires_at),
                    version: 0,
                    data: Map::new(),
                });
                let total = item.counter(&name).saturating_add(by);
                item.data.insert(name, Value::from(total));
                write(tx, &EncodedItem::encode(item)?)?;
                Ok(total)
            })
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        crate::store::validate_query(query)?;
        let query = query.clone();
        // A short page without a filter reads a bounded handful of rows: a point read.
        let inline = query.limit <= INLINE_QUERY_ROWS && query.filter.is_none();
        let work = move |conn: &mut rusqlite::Connection| {
            let tx = conn.transaction().map_err(StoreError::from)?;
            run_query(&tx, &query)
        };
        if inline { self.db.read(move |conn| work(conn)).await } else { self.db.run(move |conn| work(conn)).await }
    }

    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        for op in &ops {
            if let WriteOp::Increment { counters, .. } = op {
                check_counter_names(counters)?;
            }
        }
        // (condition, key, row to write): puts are encoded here, off the writer thread.
        let ops = ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Put { item, condition } => Ok(Op::Put(condition, Box::new(EncodedItem::encode(item)?))),
                WriteOp::Delete { key, condition } => Ok(Op::Delete(condition, key)),
                WriteOp::Check { key, condition } => Ok(Op::Check(condition, key)),
                WriteOp::Increment { key, counters } => Ok(Op::Increment(key, counters)),
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.db
            .write(move |tx| {
                // Check every condition first so nothing is written unless all hold.
                for (i, op) in ops.iter().enumerate() {
                    let (condition, key) = match op {
                        Op::Put(condition, row) => (*condition, &row.key),
                        Op::Delete(condition, key) | Op::Check(condition, key) => (*condition, key),
                        Op::Increment(key, _) => (Condition::Always, key),
                    };
                    if condition != Condition::Always && !condition.holds(read_head(tx, key)?.as_ref()) {
                        return Err(StoreError::TransactionCanceled { failed_op: Some(i) });
                    }
                }
                for op in &ops {
                    match op {
                        Op::Put(_, row) => write(tx, row)?,
                        Op::Delete(_, key) => remove(tx, key)?,
                        Op::Check(..) => {}
                        Op::Increment(key, counters) => add_counters(tx, key, counters)?,
                    }
                }
                Ok(())
            })
            .await
    }

    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let rows = dedupe_last_wins(items).into_iter().map(EncodedItem::encode).collect::<Result<Vec<_>, _>>()?;
        self.db
            .write(move |tx| {
                for row in &rows {
                    write(tx, row)?;
                }
                Ok(())
            })
            .await
    }

    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        let keys = keys.to_vec();
        self.db
            .write(move |tx| {
                for key in &keys {
                    remove(tx, key)?;
                }
                Ok(())
            })
            .await
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, StoreError> {
        self.db
            .write(move |tx| {
                Ok(tx.execute("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now])?)
            })
            .await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Frames in the WAL now (nothing is checkpointed but by hand here).
    fn wal_frames(conn: &rusqlite::Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).unwrap()
    }

    /// Frames one committed write adds to an emptied WAL.
    fn frames_of(conn: &mut rusqlite::Connection, work: impl FnOnce(&Transaction<'_>)) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let tx = conn.transaction().unwrap();
        work(&tx);
        tx.commit().unwrap();
        wal_frames(conn)
    }

    fn lead(version: u64, campaign: &str) -> EncodedItem {
        let item = Item::new(Key::new("W#w#LEAD#1", "LEAD"), &json!({"status": version}))
            .unwrap()
            .with_gsi1(format!("W#w#CMP#{campaign}#3"), "LEAD#1")
            .with_index(super::super::Index::Gsi4, "W#w#LEADS#3", "LEAD#1")
            .with_version(version);
        EncodedItem::encode(item).unwrap()
    }

    /// A feedback event's lead update keeps the lead's two listing entries: it writes the
    /// row's table page alone, where an upsert naming the index columns rewrote both index
    /// entries too (3 pages). A new campaign moves the gsi1 entry: table, gsi1, gsi4 pages.
    #[test]
    fn an_update_that_keeps_its_index_keys_writes_only_its_table_page() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;").unwrap();
        conn.execute_batch(schema::SCHEMA).unwrap();
        frames_of(&mut conn, |tx| write(tx, &lead(1, "c")).unwrap());

        let in_place = frames_of(&mut conn, |tx| write(tx, &lead(2, "c")).unwrap());
        let moved = frames_of(&mut conn, |tx| write(tx, &lead(3, "d")).unwrap());
        let back = frames_of(&mut conn, |tx| write(tx, &lead(4, "c")).unwrap());
        assert_eq!((in_place, moved, back), (1, 3, 3));
        let found: Vec<(String, i64, String)> = conn
            .prepare("SELECT gsi1pk, version, data FROM items WHERE gsi1h IS NOT NULL")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(found, [("W#w#CMP#c#3".to_owned(), 4, r#"{"status":4}"#.to_owned())]);
    }
}
