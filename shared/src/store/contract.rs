//! The storage contract: every adapter must pass exactly these tests.
//! `sqlite` runs on a temporary file, `dynamodb` on the moto server `make test` starts.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use super::*;

fn item(pk: &str, sk: &str, data: serde_json::Value) -> Item {
    Item::new(Key::new(pk, sk), &data).expect("valid item")
}

pub async fn conditional_put_refuses_to_overwrite(store: Arc<dyn Store>) {
    let key = Key::new("P#cond", "A");
    store.put(item("P#cond", "A", json!({"n": 1})), Condition::NotExists).await.unwrap();
    let err = store.put(item("P#cond", "A", json!({"n": 2})), Condition::NotExists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert_eq!(store.get(&key).await.unwrap().unwrap().data["n"], 1);

    let missing = item("P#cond", "B", json!({}));
    let err = store.put(missing, Condition::Exists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert!(store.get(&Key::new("P#cond", "B")).await.unwrap().is_none());

    store.put(item("P#cond", "A", json!({"n": 3})), Condition::Always).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().data["n"], 3);

    let err = store.delete(&key, Condition::VersionIs(9)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    store.delete(&key, Condition::Exists).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
}

pub async fn optimistic_version_update_detects_lost_updates(store: Arc<dyn Store>) {
    let key = Key::new("P#ver", "A");
    store.put(item("P#ver", "A", json!({"v": "one"})), Condition::NotExists).await.unwrap();
    let current = store.get(&key).await.unwrap().unwrap();
    assert_eq!(current.version, 1);

    let next = item("P#ver", "A", json!({"v": "two"})).with_version(2);
    store.put(next, Condition::VersionIs(1)).await.unwrap();
    // A writer still holding version 1 must lose.
    let stale = item("P#ver", "A", json!({"v": "stale"})).with_version(2);
    let err = store.put(stale, Condition::VersionIs(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let stored = store.get(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.data["v"].clone()), (2, json!("two")));
}

pub async fn expired_items_count_as_absent_for_expiry_conditions(store: Arc<dyn Store>) {
    let key = Key::new("P#exp", "A");
    let now = 1_700_000_000;
    store
        .put(item("P#exp", "A", json!({"owner": "first"})).with_expiry(now + 60), Condition::NotExistsOrExpired { now })
        .await
        .unwrap();
    let err = store
        .put(item("P#exp", "A", json!({"owner": "second"})), Condition::NotExistsOrExpired { now: now + 59 })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    // Still stored after expiry (TTL is lazy): the condition, not deletion, lets us in.
    let stale = store.get(&key).await.unwrap().unwrap();
    assert!(stale.is_expired(now + 60));
    store
        .put(
            item("P#exp", "A", json!({"owner": "second"})).with_expiry(now + 120),
            Condition::NotExistsOrExpired { now: now + 60 },
        )
        .await
        .unwrap();
    let stored = store.get(&key).await.unwrap().unwrap();
    assert_eq!((stored.data["owner"].clone(), stored.expires_at), (json!("second"), Some(now + 120)));
}

async fn collect(store: &dyn Store, mut query: Query) -> (Vec<String>, usize) {
    let mut sks = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query(&query).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= query.limit, "page larger than limit");
        sks.extend(page.items.iter().map(|i| i.key.sk.clone()));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => return (sks, pages),
        }
        assert!(pages < 100, "pagination did not terminate");
    }
}

pub async fn query_pages_through_a_prefix_with_cursors(store: Arc<dyn Store>) {
    let mut items: Vec<Item> =
        (0..25).map(|i| item("P#q", &format!("A#{i:02}"), json!({"i": i, "even": i % 2 == 0}))).collect();
    items.extend((0..5).map(|i| item("P#q", &format!("B#{i:02}"), json!({"i": i}))));
    items.push(item("P#other", "A#00", json!({})));
    store.batch_put(items).await.unwrap();

    let expected: Vec<String> = (0..25).map(|i| format!("A#{i:02}")).collect();
    let (sks, pages) = collect(&*store, Query::table("P#q").prefix("A#").limit(10)).await;
    assert_eq!(sks, expected);
    assert_eq!(pages, 3);

    // Exactly a page's worth: no empty trailing page.
    let (sks, pages) = collect(&*store, Query::table("P#q").prefix("B#").limit(5)).await;
    assert_eq!((sks.len(), pages), (5, 1));

    let (sks, _) = collect(&*store, Query::table("P#q").prefix("A#").limit(7).descending()).await;
    assert_eq!(sks, expected.iter().rev().cloned().collect::<Vec<_>>());

    let (sks, _) = collect(&*store, Query::table("P#q").prefix("A#").filter_eq("even", json!(true)).limit(4)).await;
    assert_eq!(sks, (0..25).step_by(2).map(|i| format!("A#{i:02}")).collect::<Vec<_>>());

    let (sks, _) = collect(&*store, Query::table("P#q").limit(1000)).await;
    assert_eq!(sks.len(), 30);

    // A cursor from one listing is refused by another.
    let page = store.query(&Query::table("P#q").prefix("A#").limit(2)).await.unwrap();
    let foreign = Query::table("P#other").after(page.next);
    assert!(matches!(store.query(&foreign).await, Err(StoreError::InvalidCursor)));
}

pub async fn gsi_query_pages_by_the_second_key(store: Arc<dyn Store>) {
    let items: Vec<Item> = (0..12)
        .map(|i| {
            let campaign = if i % 3 == 0 { "C#x" } else { "C#y" };
            item("W#gsi", &format!("L#{i:02}"), json!({"i": i})).with_gsi1(campaign, format!("L#{i:02}"))
        })
        .collect();
    store.batch_put(items).await.unwrap();
    let (sks, pages) = collect(&*store, Query::gsi1("C#y").limit(3)).await;
    assert_eq!(sks.len(), 8);
    assert_eq!(pages, 3);
    let (sks, _) = collect(&*store, Query::gsi1("C#x").limit(10).descending()).await;
    assert_eq!(sks, vec!["L#09", "L#06", "L#03", "L#00"]);
    let page = store.query(&Query::gsi1("C#y").limit(2)).await.unwrap();
    assert_eq!(page.items[0].index_key(Index::Gsi1), Some(&Key::new("C#y", "L#01")));
    // Sparse lookup indexes: only items with a gsi2/gsi3 key are found there, and a cursor
    // from one index is refused by another.
    let tagged: Vec<Item> = (0..5)
        .map(|i| {
            let item =
                item("W#gsi", &format!("T#{i}"), json!({"i": i})).with_index(Index::Gsi2, "E#same", format!("T#{i}"));
            if i % 2 == 0 { item.with_index(Index::Gsi3, "L#even", format!("T#{i}")) } else { item }
        })
        .collect();
    store.batch_put(tagged).await.unwrap();
    let (sks, pages) = collect(&*store, Query::index(Index::Gsi2, "E#same").limit(2)).await;
    assert_eq!((sks.len(), pages), (5, 3));
    let (sks, _) = collect(&*store, Query::index(Index::Gsi3, "L#even").limit(10)).await;
    assert_eq!(sks, ["T#0", "T#2", "T#4"]);
    let page = store.query(&Query::index(Index::Gsi2, "E#same").limit(2)).await.unwrap();
    assert_eq!(page.items[0].index_key(Index::Gsi2), Some(&Key::new("E#same", "T#0")));
    let foreign = Query::index(Index::Gsi3, "L#even").after(page.next);
    assert!(matches!(store.query(&foreign).await, Err(StoreError::InvalidCursor)));

    // Keys only: the same keys and pages, no data; a filter still applies.
    let (sks, pages) = collect(&*store, Query::index(Index::Gsi2, "E#same").limit(2).keys_only()).await;
    assert_eq!((sks.len(), pages), (5, 3));
    for query in [Query::index(Index::Gsi2, "E#same").keys_only(), Query::gsi1("C#x").keys_only()] {
        let page = store.query(&query).await.unwrap();
        assert!(!page.items.is_empty());
        for found in &page.items {
            assert!(found.data.is_empty() && found.index_key(query.index).is_some(), "{found:?}");
            assert!(found.key.pk == "W#gsi", "{found:?}");
        }
    }
    let page = store.query(&Query::table("W#gsi").prefix("L#").filter_eq("i", json!(4)).keys_only()).await.unwrap();
    let keys: Vec<(&str, bool)> = page.items.iter().map(|i| (i.key.sk.as_str(), i.data.is_empty())).collect();
    assert_eq!(keys, [("L#04", true)]);
}

/// A listing index holds keys and `status` only (on DynamoDB), yet a query of it answers
/// whole items, in index order, filtered by status; a filter on a field it does not hold is
/// refused on every adapter (DynamoDB would silently match nothing).
pub async fn listing_indexes_answer_whole_items_and_filter_only_on_what_they_hold(store: Arc<dyn Store>) {
    let items: Vec<Item> = (0..6)
        .map(|i| {
            let data =
                json!({"status": if i % 2 == 0 { "new" } else { "pushed" }, "name": format!("Lead {i}"), "n": i});
            item("W#lst", &format!("L#{i}"), data).with_index(Index::Gsi4, "W#lst#LEADS", format!("LEAD#{i}"))
        })
        .collect();
    store.batch_put(items).await.unwrap();
    let page = store.query(&Query::index(Index::Gsi4, "W#lst#LEADS").descending()).await.unwrap();
    let names: Vec<&str> = page.items.iter().filter_map(|i| i.data.get("name").and_then(|n| n.as_str())).collect();
    assert_eq!(names, ["Lead 5", "Lead 4", "Lead 3", "Lead 2", "Lead 1", "Lead 0"]);
    assert!(page.items.iter().all(|i| i.version == 1 && i.data.len() == 3), "{:?}", page.items);
    let pushed = Query::index(Index::Gsi4, "W#lst#LEADS").filter_eq("status", json!("pushed")).limit(2);
    let (sks, _) = collect(&*store, pushed).await;
    assert_eq!(sks, ["L#1", "L#3", "L#5"]);
    let unheld = store.query(&Query::index(Index::Gsi4, "W#lst#LEADS").filter_eq("name", json!("Lead 1"))).await;
    assert!(matches!(&unheld, Err(StoreError::InvalidRequest(m)) if m.contains("`name`")), "{unheld:?}");
}

/// A checked update may keep its index keys and expiry (written in place on SQLite) or
/// move them; either way every index and the expiry answer for the new version only.
pub async fn checked_updates_keep_or_move_index_entries_and_expiry(store: Arc<dyn Store>) {
    let key = Key::new("P#moves", "A");
    let at = |v: u64, campaign: &str, expires_at: i64| {
        item("P#moves", "A", json!({"v": v}))
            .with_gsi1(campaign, "A")
            .with_index(Index::Gsi4, "ALL#moves", "A")
            .with_expiry(expires_at)
            .with_version(v)
    };
    let sks = |index: Index, partition: &'static str| {
        let store = store.clone();
        async move {
            let page = store.query(&Query::index(index, partition)).await.unwrap();
            page.items.iter().map(|i| (i.key.sk.clone(), i.data["v"].clone())).collect::<Vec<_>>()
        }
    };
    store.put(at(1, "C#one", 100), Condition::NotExists).await.unwrap();
    store.put(at(2, "C#one", 100), Condition::VersionIs(1)).await.unwrap();
    assert_eq!(sks(Index::Gsi1, "C#one").await, [("A".to_owned(), json!(2))]);
    assert_eq!(sks(Index::Gsi4, "ALL#moves").await, [("A".to_owned(), json!(2))]);

    // In a transaction, beside another write, a new campaign and a later expiry.
    store
        .transact_write(vec![
            WriteOp::Put { item: at(3, "C#two", 200), condition: Condition::VersionIs(2) },
            WriteOp::Put { item: item("P#moves", "B", json!({})), condition: Condition::NotExists },
        ])
        .await
        .unwrap();
    assert_eq!(sks(Index::Gsi1, "C#one").await, []);
    assert_eq!(sks(Index::Gsi1, "C#two").await, [("A".to_owned(), json!(3))]);
    assert_eq!(sks(Index::Gsi4, "ALL#moves").await, [("A".to_owned(), json!(3))]);
    let stored = store.get(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.expires_at), (3, Some(200)));
    // The old expiry no longer counts: at 150 the item is live.
    let err = store.put(item("P#moves", "A", json!({})), Condition::NotExistsOrExpired { now: 150 }).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
}

pub async fn transact_write_is_all_or_nothing(store: Arc<dyn Store>) {
    store.put(item("P#tx", "guard", json!({"v": 1})), Condition::Always).await.unwrap();
    let ops = vec![
        WriteOp::Put { item: item("P#tx", "a", json!({"n": 1})), condition: Condition::NotExists },
        WriteOp::Increment { key: Key::new("P#tx", "counter"), counters: vec![("hits".into(), 1)] },
        WriteOp::Check { key: Key::new("P#tx", "guard"), condition: Condition::VersionIs(7) },
    ];
    let err = store.transact_write(ops).await.unwrap_err();
    assert!(matches!(err, StoreError::TransactionCanceled { failed_op: Some(2) }), "{err:?}");
    assert!(store.get(&Key::new("P#tx", "a")).await.unwrap().is_none());
    assert!(store.get(&Key::new("P#tx", "counter")).await.unwrap().is_none());

    let ops = vec![
        WriteOp::Put { item: item("P#tx", "a", json!({"n": 1})), condition: Condition::NotExists },
        WriteOp::Increment { key: Key::new("P#tx", "counter"), counters: vec![("hits".into(), 2)] },
        WriteOp::Check { key: Key::new("P#tx", "guard"), condition: Condition::VersionIs(1) },
        WriteOp::Delete { key: Key::new("P#tx", "guard"), condition: Condition::Always }.clone(),
    ];
    // The same key twice is refused before anything is sent.
    assert!(matches!(store.transact_write(ops).await, Err(StoreError::InvalidRequest(_))));

    let ops = vec![
        WriteOp::Put { item: item("P#tx", "a", json!({"n": 1})), condition: Condition::NotExists },
        WriteOp::Increment { key: Key::new("P#tx", "counter"), counters: vec![("hits".into(), 2)] },
        WriteOp::Delete { key: Key::new("P#tx", "guard"), condition: Condition::VersionIs(1) },
    ];
    store.transact_write(ops).await.unwrap();
    assert_eq!(store.get(&Key::new("P#tx", "a")).await.unwrap().unwrap().data["n"], 1);
    assert_eq!(store.get(&Key::new("P#tx", "counter")).await.unwrap().unwrap().counter("hits"), 2);
    assert!(store.get(&Key::new("P#tx", "guard")).await.unwrap().is_none());
}

pub async fn batch_put_get_and_delete_handle_a_thousand_items(store: Arc<dyn Store>) {
    let items: Vec<Item> = (0..1000)
        .map(|i| {
            item("P#batch", &format!("I#{i:04}"), json!({"i": i, "name": format!("lead {i}"), "tags": ["a", "b"]}))
        })
        .collect();
    store.batch_put(items).await.unwrap();
    let mut keys: Vec<Key> = (0..1000).map(|i| Key::new("P#batch", format!("I#{i:04}"))).collect();
    keys.push(Key::new("P#batch", "missing"));
    keys.push(Key::new("P#batch", "I#0000")); // duplicates are read once
    let got = store.batch_get(&keys).await.unwrap();
    assert_eq!(got.len(), 1000);
    let seen: BTreeSet<i64> = got.iter().map(|i| i.data["i"].as_i64().unwrap()).collect();
    assert_eq!(seen.len(), 1000);
    let one = got.iter().find(|i| i.key.sk == "I#0421").unwrap();
    assert_eq!(one.data["name"], "lead 421");
    assert_eq!(one.data["tags"], json!(["a", "b"]));

    let doomed: Vec<Key> = (0..1000).filter(|i| i % 2 == 0).map(|i| Key::new("P#batch", format!("I#{i:04}"))).collect();
    store.batch_delete(&doomed).await.unwrap();
    let left = store.batch_get(&keys).await.unwrap();
    assert_eq!(left.len(), 500);
    assert!(left.iter().all(|i| i.data["i"].as_i64().unwrap() % 2 == 1));
}

pub async fn increments_are_atomic_under_concurrency(store: Arc<dyn Store>) {
    let key = Key::new("P#inc", "G");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.increment(&key, &[("a".into(), 1), ("b".into(), 2)]).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!((item.counter("a"), item.counter("b")), (20, 40));
    assert!(store.increment(&key, &[("version".into(), 1)]).await.is_err());
}

/// Concurrent adds each see a distinct total (what a rate limit admits on), and the
/// expiry is the first add's.
pub async fn add_and_read_returns_each_callers_own_total(store: Arc<dyn Store>) {
    let key = Key::new("P#window", "W#1");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.add_and_read(&key, "n", 1, 2_000_000_000 + i).await })
        })
        .collect();
    let mut totals = Vec::new();
    for task in tasks {
        totals.push(task.await.unwrap().unwrap());
    }
    totals.sort_unstable();
    assert_eq!(totals, (1..=20).collect::<Vec<i64>>());
    let item = store.get(&key).await.unwrap().unwrap();
    assert_eq!(item.counter("n"), 20);
    assert!((2_000_000_000..2_000_000_020).contains(&item.expires_at.unwrap()), "{:?}", item.expires_at);
    assert_eq!(store.add_and_read(&key, "n", -5, 0).await.unwrap(), 15);
    assert!(store.add_and_read(&key, "version", 1, 0).await.is_err());
}

pub async fn data_round_trips_exactly(store: Arc<dyn Store>) {
    let data = json!({
        "text": "Zoë — 東京", "empty": "", "null": null, "yes": true, "int": -42, "big": 9_007_199_254_740_993u64,
        "float": 1.5, "list": [1, "two", {"three": 3}], "nested": {"deep": {"deeper": [null, false]}}, "obj": {}
    });
    store
        .put(item("P#rt", "A", data.clone()).with_gsi1("G#rt", "A").with_expiry(2_000_000_000), Condition::Always)
        .await
        .unwrap();
    let got = store.get(&Key::new("P#rt", "A")).await.unwrap().unwrap();
    assert_eq!(serde_json::Value::Object(got.data.clone()), data);
    assert_eq!(got.index_key(Index::Gsi1), Some(&Key::new("G#rt", "A")));
    assert_eq!(got.index_key(Index::Gsi2), None);
    assert_eq!(got.expires_at, Some(2_000_000_000));
    assert_eq!(got.version, 1);
}

/// The fault-injecting wrapper fails chosen calls the way DynamoDB does, over any adapter,
/// and lets the rest through.
pub async fn injected_faults_fail_chosen_calls_only(store: Arc<dyn Store>) {
    use super::faulty::{Fault, FaultyStore, Op, Rule};
    let faulty = FaultyStore::new(store.clone())
        .inject(Rule::new(Op::Put, Fault::Timeout).on_keys_containing("P#flt"))
        .inject(Rule::new(Op::Put, Fault::TimeoutAfterWrite).on_keys_containing("P#flt").skip(1))
        .inject(Rule::new(Op::TransactWrite, Fault::Conflict).times(2))
        .inject(Rule::new(Op::Get, Fault::Throttle).on_keys_containing("hot"))
        .inject(Rule::new(Op::BatchPut, Fault::Invalid));

    // Timed out before the write: nothing stored.
    let err = faulty.put(item("P#flt", "a", json!({"n": 1})), Condition::NotExists).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)) && err.is_transient(), "{err:?}");
    assert!(store.get(&Key::new("P#flt", "a")).await.unwrap().is_none());
    // Timed out after the write: stored, yet an error came back.
    let err = faulty.put(item("P#flt", "a", json!({"n": 2})), Condition::NotExists).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert_eq!(store.get(&Key::new("P#flt", "a")).await.unwrap().unwrap().data["n"], 2);
    // Rules are spent: the retry meets our own write.
    let err = faulty.put(item("P#flt", "a", json!({"n": 3})), Condition::NotExists).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    // Other keys pass untouched.
    faulty.put(item("P#ok", "a", json!({})), Condition::NotExists).await.unwrap();

    let ops = || vec![WriteOp::Put { item: item("P#flt", "t", json!({})), condition: Condition::NotExists }];
    for _ in 0..2 {
        let err = faulty.transact_write(ops()).await.unwrap_err();
        assert!(matches!(err, StoreError::TransactionCanceled { failed_op: None }), "{err:?}");
        assert!(store.get(&Key::new("P#flt", "t")).await.unwrap().is_none());
    }
    faulty.transact_write(ops()).await.unwrap();

    let err = faulty.get(&Key::new("P#hot", "x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    let err = faulty.batch_put(vec![item("P#flt", "b", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)) && !err.is_transient(), "{err:?}");
    assert!(store.get(&Key::new("P#flt", "b")).await.unwrap().is_none());
    assert_eq!(faulty.injected(), 6);
    assert_eq!(faulty.kind(), store.kind());
}

pub async fn values_dynamodb_refuses_are_refused_at_its_limits(store: Arc<dyn Store>) {
    let nested = |levels: usize| (1..levels).fold(json!({"leaf": 1}), |inner, _| json!({"n": inner}));
    let put = |sk: &str, value: serde_json::Value| store.put(item("P#lim", sk, json!({"v": value})), Condition::Always);
    put("deep", nested(MAX_NESTING)).await.unwrap();
    assert_eq!(store.get(&Key::new("P#lim", "deep")).await.unwrap().unwrap().data["v"], nested(MAX_NESTING));
    let err = put("deeper", nested(MAX_NESTING + 1)).await.unwrap_err();
    assert!(matches!(&err, StoreError::Refused(text) if text.contains("nested")), "{err:?}");
    for ok in [json!(9.99999999999999e125), json!(1e-130), json!(-1e125), json!(u64::MAX)] {
        put("num", ok.clone()).await.unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    for bad in [json!(1e126), json!(-1e300), json!(1e-131)] {
        let err = put("num", bad.clone()).await.unwrap_err();
        assert!(matches!(&err, StoreError::Refused(text) if text.contains("range")), "{bad}: {err:?}");
    }
    // In a batch too: the whole batch is refused, never retried.
    let batch = vec![item("P#lim", "b1", json!({})), item("P#lim", "b2", json!({"v": nested(MAX_NESTING + 1)}))];
    assert!(matches!(store.batch_put(batch).await, Err(StoreError::Refused(_))));
    // Item size: well under 400 KB is stored, over it is refused.
    put("big", json!("x".repeat(MAX_ITEM_BYTES - 16 * 1024))).await.unwrap();
    let err = put("big", json!("x".repeat(MAX_ITEM_BYTES + 1))).await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)) && !err.is_transient(), "{err:?}");
}

macro_rules! contract_suite {
    ($($name:ident),* $(,)?) => {
        #[cfg(feature = "embedded")]
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, _dir) = crate::testing::embedded_db();
                    super::$name(std::sync::Arc::new(crate::store::sqlite::SqliteStore::new(db))).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::testing::dynamo_store().await).await;
                }
            )*
        }
    };
}

contract_suite!(
    conditional_put_refuses_to_overwrite,
    optimistic_version_update_detects_lost_updates,
    expired_items_count_as_absent_for_expiry_conditions,
    query_pages_through_a_prefix_with_cursors,
    gsi_query_pages_by_the_second_key,
    listing_indexes_answer_whole_items_and_filter_only_on_what_they_hold,
    checked_updates_keep_or_move_index_entries_and_expiry,
    transact_write_is_all_or_nothing,
    batch_put_get_and_delete_handle_a_thousand_items,
    increments_are_atomic_under_concurrency,
    add_and_read_returns_each_callers_own_total,
    data_round_trips_exactly,
    injected_faults_fail_chosen_calls_only,
    values_dynamodb_refuses_are_refused_at_its_limits,
);
