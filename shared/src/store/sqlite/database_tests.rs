use super::*;
use crate::store::sqlite::SqliteStore;
use crate::store::{Key, Query, Store};

fn insert(tx: &Transaction<'_>, id: &str) -> Result<(), EmbeddedError> {
    tx.execute(
        "INSERT INTO queue_messages (id, queue, body, visible_at_ms, sent_at_ms) VALUES (?1, 't', '', 0, 0)",
        [id],
    )?;
    Ok(())
}

fn stored(db: &EmbeddedDb) -> Vec<String> {
    let conn = db.pool.get().unwrap();
    let mut stmt = conn.prepare("SELECT id FROM queue_messages WHERE queue = 't' ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Writes queued while the writer is busy share the next commit; one that fails (or
/// panics) in that group is rolled back alone and reports its own error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_together_share_one_commit_and_a_failing_one_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    let before = db.commits();
    let (started, running) = tokio::sync::oneshot::channel();
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let busy = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |tx| {
                let _ = started.send(());
                let _ = hold.recv();
                insert(tx, "a-first")
            })
            .await
        }
    });
    running.await.unwrap();
    // Queued (first poll) while the writer is inside the first write.
    let mut ok = Box::pin(db.write(|tx| insert(tx, "b-kept")));
    let mut failing = Box::pin(db.write(|tx| {
        insert(tx, "c-rolled-back")?;
        Err::<(), _>(EmbeddedError::Join("refused by the test".into()))
    }));
    let mut panicking = Box::pin(db.write(|tx| -> Result<(), EmbeddedError> {
        insert(tx, "d-rolled-back")?;
        panic!("a bug in a write")
    }));
    let mut last = Box::pin(db.write(|tx| insert(tx, "e-kept")));
    assert!(futures_util::poll!(&mut ok).is_pending());
    assert!(futures_util::poll!(&mut failing).is_pending());
    assert!(futures_util::poll!(&mut panicking).is_pending());
    assert!(futures_util::poll!(&mut last).is_pending());
    release.send(()).unwrap();

    busy.await.unwrap().unwrap();
    ok.await.unwrap();
    assert_eq!(failing.await.unwrap_err().to_string(), "sqlite worker failed: refused by the test");
    assert!(panicking.await.unwrap_err().to_string().contains("panicked"));
    last.await.unwrap();
    assert_eq!(stored(&db), ["a-first", "b-kept", "e-kept"]);
    assert_eq!(db.commits() - before, 2, "the four queued writes shared one commit");
    // The writer goes on after a panic.
    db.write(|tx| insert(tx, "f-after")).await.unwrap();
    assert_eq!(stored(&db).len(), 4);
    // A lone write (no savepoint) that fails is rolled back with its transaction.
    let commits = db.commits();
    let refused = db.write(|tx| {
        insert(tx, "g-alone")?;
        Err::<(), _>(EmbeddedError::Join("alone and refused".into()))
    });
    assert_eq!(refused.await.unwrap_err().to_string(), "sqlite worker failed: alone and refused");
    assert_eq!((stored(&db).len(), db.commits()), (4, commits));
}

#[tokio::test]
async fn data_files_of_the_first_layout_are_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The layout the first builds wrote: WITHOUT ROWID, text keys, one index.
        let old = Connection::open(dir.path().join(DB_FILE)).unwrap();
        old.execute_batch(
            "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT, expires_at INTEGER,
                 version INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;
             CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
             INSERT INTO items VALUES ('W#1', 'LEAD#a', 'C#1', 'LEAD#a', NULL, 3, '{\"name\":\"A\"}');
             INSERT INTO items VALUES ('W#1', 'IDEM#x', NULL, NULL, 99, 1, '{}');",
        )
        .unwrap();
    }
    let store = SqliteStore::new(EmbeddedDb::open(dir.path()).unwrap());
    let lead = store.get(&Key::new("W#1", "LEAD#a")).await.unwrap().unwrap();
    assert_eq!((lead.version, lead.data["name"].as_str()), (3, Some("A")));
    assert_eq!(store.get(&Key::new("W#1", "IDEM#x")).await.unwrap().unwrap().expires_at, Some(99));
    let page = store.query(&Query::gsi1("C#1")).await.unwrap();
    assert_eq!(page.items.len(), 1);
    // Opening again is a no-op.
    drop(store);
    let store = SqliteStore::new(EmbeddedDb::open(dir.path()).unwrap());
    assert_eq!(store.query(&Query::table("W#1")).await.unwrap().items.len(), 2);
}

fn wal_size(dir: &Path) -> u64 {
    std::fs::metadata(wal_path(&dir.join(DB_FILE))).map(|m| m.len()).unwrap_or(0)
}

/// A reader that holds an old snapshot stops every checkpoint short; PASSIVE ones alone
/// then let the WAL grow without bound, and it never shrank afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_after_a_long_reader_and_is_truncated_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let policy = WalPolicy { restart_at: 512 * 1024, size_limit: 1024 * 1024 };
    let store = SqliteStore::new(EmbeddedDb::open_with(dir.path(), policy).unwrap());
    let blob = "x".repeat(4000);
    let put = |i: usize| {
        let item = crate::store::Item::new(
            Key::new(format!("P#{}", i % 50), format!("S#{i}")),
            &serde_json::json!({"b": blob}),
        )
        .unwrap();
        store.put(item, crate::store::Condition::Always)
    };
    put(0).await.unwrap();
    // An old snapshot, held while ~4 MB are written.
    let reader = Connection::open(dir.path().join(DB_FILE)).unwrap();
    reader.execute_batch("BEGIN; SELECT COUNT(*) FROM items;").unwrap();
    for i in 1..1000 {
        put(i).await.unwrap();
    }
    let grown = wal_size(dir.path());
    assert!(grown > 3 * 1024 * 1024, "the held snapshot should have kept the WAL growing ({grown} bytes)");
    reader.execute_batch("COMMIT;").unwrap();
    // Bursts of writes beside a busy reader: after each, checkpoints complete and the
    // WAL comes back under its limit (it never shrank before).
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reading = {
        let (store, busy) = (store.clone(), busy.clone());
        tokio::spawn(async move {
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                store.query(&Query::table("P#1")).await.unwrap();
            }
        })
    };
    let mut i = 1000;
    for burst in 0..3 {
        for _ in 0..300 {
            put(i).await.unwrap();
            i += 1;
        }
        let limit = tokio::time::Instant::now() + Duration::from_secs(30);
        while wal_size(dir.path()) > policy.size_limit {
            assert!(tokio::time::Instant::now() < limit, "burst {burst}: WAL still {} bytes", wal_size(dir.path()));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    reading.await.unwrap();
    // Quiet: truncated to nothing.
    let quiet = tokio::time::Instant::now() + Duration::from_secs(30);
    while wal_size(dir.path()) > 0 {
        assert!(tokio::time::Instant::now() < quiet, "WAL not truncated when quiet: {} bytes", wal_size(dir.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = (0..i).filter(|n| n % 50 == 7).count();
    assert_eq!(store.query(&Query::table("P#7")).await.unwrap().items.len(), written, "nothing lost");
}

#[tokio::test]
async fn email_lookup_keys_of_earlier_builds_move_to_the_domain_listing() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(dir.path()).unwrap();
    db.run(|conn| {
        conn.execute_batch(
            "INSERT INTO items (pk, sk, gsi2h, gsi2pk, gsi2sk, version, data)
             VALUES ('W#1', 'LEAD#a', 1, 'W#1#E#jane@acme.com', 'LEAD#a', 1, '{}');
             DELETE FROM migrations;",
        )
        .map_err(EmbeddedError::from)
    })
    .await
    .unwrap();
    drop(db);
    let store = SqliteStore::new(EmbeddedDb::open(dir.path()).unwrap());
    let partition = crate::repo::lead_lookup::email_partition("1", "jane@acme.com");
    let page = store.query(&Query::index(crate::store::Index::Gsi2, partition)).await.unwrap();
    let key = page.items[0].index_key(crate::store::Index::Gsi2).unwrap();
    assert_eq!(key.sk, "jane@acme.com#LEAD#a");
    assert!(key.pk.starts_with("W#1#D#acme.com#"), "{}", key.pk);
}

#[test]
fn partition_hashes_are_fnv1a_and_stable() {
    assert_eq!(partition_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
    assert_eq!(partition_hash("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
    assert_ne!(partition_hash("W#1#E#a@b.co"), partition_hash("W#1#E#a@b.cp"));
}
