//! Storage port figures: our adapters beside the raw engine doing the same work.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures_util::{StreamExt, TryStreamExt, stream};
use leadpush::store::dynamodb::DynamoStore;
use leadpush::store::sqlite::SqliteStore;
use leadpush::store::{Condition, Item, Key, Query, Store};
use rusqlite::params;

use crate::aws_counter::{CallCounter, clients};
use crate::table::Row;

const AREA: &str = "storage";

fn payload(i: usize) -> serde_json::Value {
    serde_json::json!({"name": format!("Lead {i}"), "email": format!("lead{i}@example.com"), "company": "Example Corp",
        "notes": "x".repeat(800), "score": i})
}

fn item(pk: &str, i: usize) -> Item {
    Item::new(Key::new(pk, format!("I#{i:06}")), &payload(i)).expect("item")
}

/// The floor: the same SQLite file settings, rows written by hand.
fn raw_sqlite(dir: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("raw.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS items (pk TEXT NOT NULL, sk TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;",
    )
    .expect("schema");
    conn
}

fn per_op_us(started: Instant, ops: usize) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / ops as f64
}

pub async fn run(moto: &str) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let dir = tempfile::tempdir()?;
    let db = leadpush::store::sqlite::EmbeddedDb::open(dir.path())?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::new(db));
    let raw_dir = dir.path().to_path_buf();

    // Conditional single puts.
    const PUTS: usize = 2000;
    let started = Instant::now();
    for i in 0..PUTS {
        store.put(item("P#put", i), Condition::NotExists).await?;
    }
    let ours = per_op_us(started, PUTS);
    let floor = tokio::task::spawn_blocking(move || {
        let mut conn = raw_sqlite(&raw_dir);
        let started = Instant::now();
        for i in 0..PUTS {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
            let exists: bool = tx
                .query_row(
                    "SELECT 1 FROM items WHERE pk = ?1 AND sk = ?2",
                    params!["P#put", format!("I#{i:06}")],
                    |_| Ok(true),
                )
                .unwrap_or(false);
            if !exists {
                tx.execute(
                    "INSERT INTO items VALUES (?1, ?2, ?3)",
                    params!["P#put", format!("I#{i:06}"), payload(i).to_string()],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        per_op_us(started, PUTS)
    })
    .await?;
    rows.push(Row::time(
        AREA,
        "SQLite conditional put, 1 KB item",
        ours / 1000.0,
        floor / 1000.0,
        "per op; floor: check + INSERT + commit by hand",
    ));

    // Gets.
    const GETS: usize = 5000;
    let started = Instant::now();
    for i in 0..GETS {
        store.get(&Key::new("P#put", format!("I#{:06}", i % PUTS))).await?;
    }
    let ours = per_op_us(started, GETS);
    let raw_dir = dir.path().to_path_buf();
    let floor = tokio::task::spawn_blocking(move || {
        let conn = raw_sqlite(&raw_dir);
        let mut stmt = conn.prepare("SELECT data FROM items WHERE pk = ?1 AND sk = ?2").unwrap();
        let started = Instant::now();
        for i in 0..GETS {
            let data: String = stmt.query_row(params!["P#put", format!("I#{:06}", i % PUTS)], |r| r.get(0)).unwrap();
            let _: serde_json::Value = serde_json::from_str(&data).unwrap();
        }
        per_op_us(started, GETS)
    })
    .await?;
    rows.push(Row::time(
        AREA,
        "SQLite get",
        ours / 1000.0,
        floor / 1000.0,
        "per op; floor: prepared SELECT + JSON parse",
    ));

    // Batch puts of 1000.
    const REPS: usize = 10;
    let started = Instant::now();
    for rep in 0..REPS {
        store.batch_put((0..1000).map(|i| item(&format!("P#batch{rep}"), i)).collect()).await?;
    }
    let ours = started.elapsed().as_secs_f64() * 1000.0 / REPS as f64;
    let raw_dir = dir.path().to_path_buf();
    let floor = tokio::task::spawn_blocking(move || {
        let mut conn = raw_sqlite(&raw_dir);
        let started = Instant::now();
        for rep in 0..REPS {
            let tx = conn.transaction().unwrap();
            for i in 0..1000 {
                tx.execute(
                    "INSERT OR REPLACE INTO items VALUES (?1, ?2, ?3)",
                    params![format!("P#batch{rep}"), format!("I#{i:06}"), payload(i).to_string()],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        started.elapsed().as_secs_f64() * 1000.0 / REPS as f64
    })
    .await?;
    rows.push(Row::time(
        AREA,
        "SQLite batch_put of 1000 items",
        ours,
        floor,
        "per batch; floor: one transaction by hand",
    ));

    // Query pages.
    const QUERIES: usize = 500;
    let started = Instant::now();
    for _ in 0..QUERIES {
        store.query(&Query::table("P#batch0").prefix("I#").limit(100)).await?;
    }
    let ours = per_op_us(started, QUERIES);
    let raw_dir = dir.path().to_path_buf();
    let floor = tokio::task::spawn_blocking(move || {
        let conn = raw_sqlite(&raw_dir);
        let mut stmt = conn
            .prepare("SELECT sk, data FROM items WHERE pk = ?1 AND sk >= 'I#' AND sk < 'I$' ORDER BY sk LIMIT 101")
            .unwrap();
        let started = Instant::now();
        for _ in 0..QUERIES {
            let rows: Vec<(String, serde_json::Value)> = stmt
                .query_map(params!["P#batch0"], |r| {
                    Ok((r.get(0)?, serde_json::from_str(&r.get::<_, String>(1)?).unwrap()))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows.len(), 101);
        }
        per_op_us(started, QUERIES)
    })
    .await?;
    rows.push(Row::time(
        AREA,
        "SQLite query, page of 100",
        ours / 1000.0,
        floor / 1000.0,
        "per page; floor: prepared range SELECT",
    ));

    // DynamoDB on moto: batch put 1000 and get.
    let counter = CallCounter::default();
    let (dynamo, _) = clients(moto, &counter).await;
    let table = format!("bench-{}", std::process::id());
    leadpush::aws::ensure_table(&dynamo, &table).await?;
    let store = DynamoStore::new(dynamo.clone(), &table);
    counter.take();
    let started = Instant::now();
    store.batch_put((0..1000).map(|i| item("P#dyn", i)).collect()).await?;
    let ours = started.elapsed().as_secs_f64() * 1000.0;
    let calls = counter.take();
    let requests: Vec<Vec<WriteRequest>> = (0..1000)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|i| {
                    let mut attrs = std::collections::HashMap::from([
                        ("pk".to_owned(), AttributeValue::S("P#raw".into())),
                        ("sk".to_owned(), AttributeValue::S(format!("I#{i:06}"))),
                    ]);
                    for (k, v) in payload(*i).as_object().unwrap() {
                        attrs.insert(
                            k.clone(),
                            match v {
                                serde_json::Value::Number(n) => AttributeValue::N(n.to_string()),
                                other => AttributeValue::S(other.as_str().unwrap_or_default().to_owned()),
                            },
                        );
                    }
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(attrs)).build().unwrap())
                        .build()
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    stream::iter(requests)
        .map(|batch| {
            let dynamo = dynamo.clone();
            let table = table.clone();
            async move { dynamo.batch_write_item().request_items(table, batch).send().await }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    let floor = started.elapsed().as_secs_f64() * 1000.0;
    rows.push(Row::time(
        AREA,
        "DynamoDB (moto) batch_put of 1000 items",
        ours,
        floor,
        format!("{} calls; floor: 40 raw BatchWriteItem, same concurrency", calls.values().sum::<u64>()),
    ));
    Ok(rows)
}
