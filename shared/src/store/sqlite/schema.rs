//! The embedded database's schema and its migrations, run when the file is opened.

use rusqlite::{Connection, TransactionBehavior};

use super::database::*;

/// Items live in a rowid table: secondary index entries then carry an 8-byte rowid instead
/// of the text primary key, and each index is keyed by a 64-bit hash of its partition (the
/// query re-checks the text), so entries are small and a batch of random inserts (email and
/// LinkedIn lookups) dirties far fewer pages. Rows are upserted in place (stable rowids).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1h INTEGER,
    gsi1pk TEXT,
    gsi1sk TEXT,
    gsi2h INTEGER,
    gsi2pk TEXT,
    gsi2sk TEXT,
    gsi3h INTEGER,
    gsi3pk TEXT,
    gsi3sk TEXT,
    gsi4h INTEGER,
    gsi4pk TEXT,
    gsi4sk TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS items_key ON items (pk, sk);
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1h, gsi1sk) WHERE gsi1h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2h, gsi2sk) WHERE gsi2h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi3 ON items (gsi3h, gsi3sk) WHERE gsi3h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_gsi4 ON items (gsi4h, gsi4sk) WHERE gsi4h IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    sent_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages (queue, visible_at_ms);
CREATE INDEX IF NOT EXISTS queue_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
";

/// Moves a data file written by an earlier build to the current table layout, in one
/// transaction: the first layout (a WITHOUT ROWID `items` table keyed by text) is copied
/// over; the second only lacks the `gsi4` columns. (Item keys move to the current key
/// scheme separately, through the store: `repo::migrate`.)
pub(super) fn migrate(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('items')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if columns.iter().any(|c| c == "gsi1h") && !columns.iter().any(|c| c == "gsi4h") {
        return conn.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE items ADD COLUMN gsi4h INTEGER;
             ALTER TABLE items ADD COLUMN gsi4pk TEXT;
             ALTER TABLE items ADD COLUMN gsi4sk TEXT;
             COMMIT;",
        );
    }
    if columns.is_empty() || columns.iter().any(|c| c == "gsi1h") {
        return Ok(());
    }
    let has = |name: &str| columns.iter().any(|c| c == name);
    let column = |name: &str| if has(name) { name.to_owned() } else { format!("NULL AS {name}") };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "ALTER TABLE items RENAME TO items_old;
         DROP INDEX IF EXISTS items_gsi1; DROP INDEX IF EXISTS items_gsi2;
         DROP INDEX IF EXISTS items_gsi3; DROP INDEX IF EXISTS items_gsi4;
         DROP INDEX IF EXISTS items_expiry;",
    )?;
    tx.execute_batch(SCHEMA)?;
    {
        let select = format!(
            "SELECT pk, sk, gsi1pk, gsi1sk, {}, {}, {}, {}, expires_at, version, data FROM items_old",
            column("gsi2pk"),
            column("gsi2sk"),
            column("gsi3pk"),
            column("gsi3sk")
        );
        let mut read = tx.prepare(&select)?;
        let mut write = tx.prepare(
            "INSERT INTO items (pk, sk, gsi1h, gsi1pk, gsi1sk, gsi2h, gsi2pk, gsi2sk, gsi3h, gsi3pk, gsi3sk, expires_at, version, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let text = |i: usize| row.get::<_, Option<String>>(i);
            let (g1, g2, g3) = (text(2)?, text(4)?, text(6)?);
            let hash = |g: &Option<String>| g.as_deref().map(partition_hash);
            write.execute(rusqlite::params![
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                hash(&g1),
                g1,
                text(3)?,
                hash(&g2),
                g2,
                text(5)?,
                hash(&g3),
                g3,
                text(7)?,
                row.get::<_, Option<i64>>(8)?,
                row.get::<_, i64>(9)?,
                row.get::<_, String>(10)?,
            ])?;
        }
    }
    tx.execute_batch("DROP TABLE items_old;")?;
    tx.commit()
}

/// Moves email lookup keys written by an earlier build (`gsi2` = `W#{ws}#E#{email}` /
/// `LEAD#{lead}`) to the domain listing (`W#{ws}#D#{domain}#{shard}` /
/// `{email}#LEAD#{lead}`, see `repo::lead_lookup`), once per data file.
pub(super) fn migrate_email_lookups(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    const NAME: &str = "gsi2_email_by_domain";
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)")?;
    let done: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM migrations WHERE name = ?1)", [NAME], |r| r.get(0))?;
    if !done {
        let old: Vec<(i64, String, String)> = tx
            .prepare(
                "SELECT id, gsi2pk, gsi2sk FROM items WHERE gsi2pk IS NOT NULL AND substr(gsi2sk, 1, 5) = 'LEAD#'",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut update = tx.prepare("UPDATE items SET gsi2h = ?2, gsi2pk = ?3, gsi2sk = ?4 WHERE id = ?1")?;
        for (id, pk, sk) in old {
            let Some((workspace, email)) = pk.strip_prefix("W#").and_then(|rest| rest.split_once("#E#")) else {
                continue;
            };
            let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
            let new_pk = crate::store::keys::sharded(&format!("W#{workspace}#D#{domain}"), email);
            update.execute(rusqlite::params![id, partition_hash(&new_pk), new_pk, format!("{email}#{sk}")])?;
        }
        drop(update);
        tx.execute("INSERT INTO migrations (name) VALUES (?1)", [NAME])?;
    }
    tx.commit()
}
