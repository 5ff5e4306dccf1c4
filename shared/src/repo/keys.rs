//! The key scheme every item kind follows, so that no partition key takes a workspace's
//! whole write load (DynamoDB: at most 1,000 WCU/s and 3,000 RCU/s per partition key value,
//! tables and indexes alike).
//!
//! - **Workspace configuration** (few items, rarely written: workspace, credentials,
//!   campaigns, webhooks, integrations, API requests, settings, workflows): partition
//!   `W#{ws}`, sort key `{KIND}#{id}`.
//! - **Growing kinds** (leads, events, pushes, deliveries, runs, enrichment results, jobs,
//!   caches): one partition per item, [`item_pk`] = `W#{ws}#{KIND}#{id}`, with sort key
//!   `{KIND}` for the item itself. An item's children (a lead's events and runs, a job's
//!   results) live in their parent's partition under their own sort-key prefix.
//! - **Listings of growing kinds** go through a secondary index whose partition is sharded
//!   by the item's id ([`sharded`]), and are read by scatter-gather over [`LIST_SHARDS`]
//!   partitions.
//! - **Counters many writers touch** are sharded the same way and summed on read.

use std::cmp::Ordering;

use crate::store::{Cursor, Index, Item, Key, Page, Query, Store, StoreError};
use crate::support::time::Timestamp;

pub use crate::store::keys::{LIST_SHARDS, all_shards, item_pk, shard_of, sharded};

/// The sort key of `item` in `index`.
fn sort_key(item: &Item, index: Index) -> &str {
    item.index_key(index).map(|k| k.sk.as_str()).unwrap_or_default()
}

/// How far a query's next page starts: the sort key of its cursor.
fn reached(cursor: &Cursor, index: Index) -> &str {
    match index {
        Index::Table => &cursor.sk,
        _ => cursor.isk.as_deref().unwrap_or_default(),
    }
}

/// One page of a sweep index (`gsi2`, keys only, sort keys `{due}#{rest}`, ascending): the
/// entries `is_due` accepts, each with its table key and the `rest` of its sort key, and the
/// cursor of the next page while due entries may remain (none once an entry is not due: the
/// rest of the shard is later). The sweeps of push markers and of pending deliveries read
/// their shards through this.
pub async fn due_entries(
    store: &dyn Store,
    shard: &str,
    limit: usize,
    cursor: Option<Cursor>,
    is_due: impl Fn(Timestamp) -> bool,
) -> Result<(Vec<(Key, String)>, Option<Cursor>), StoreError> {
    let page = store.query(&Query::index(Index::Gsi2, shard).limit(limit).keys_only().after(cursor)).await?;
    let mut due = Vec::new();
    for entry in page.items {
        let Some(sort) = entry.index_key(Index::Gsi2).map(|k| k.sk.clone()) else { continue };
        let (at, rest) = sort.split_once('#').unwrap_or((sort.as_str(), ""));
        if !Timestamp::parse(at).is_some_and(&is_due) {
            return Ok((due, None));
        }
        due.push((entry.key, rest.to_owned()));
    }
    Ok((due, page.next))
}

/// One page of a listing spread over `partitions` (the shards of [`all_shards`]), merged in
/// sort-key order as if it were one partition. `query` gives the index, prefix, filter,
/// direction and limit; its partition and cursor are ignored.
///
/// The cursor is one sort key, from which every shard resumes (`Query::sort_after`). A page
/// ends at the earliest point some shard has not read past, so nothing before the cursor is
/// ever skipped; `limit` counts distinct sort keys, so the parts of a sharded counter (one
/// per shard, same sort key) always arrive in the same page. Shards are read concurrently,
/// each for a little more than its share of the page; a page may hold fewer than `limit`
/// items while `next` is set, as with any filtered query.
pub async fn scatter_gather(
    store: &dyn Store,
    partitions: &[String],
    query: &Query,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    scatter_gather_within(store, partitions, query, cursor, usize::MAX).await
}

/// Responses must fit through Lambda's 6 MB payload once escaped into its JSON envelope:
/// a page of large items (leads of up to 64 KB) ends early at this many escaped bytes.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The bytes an item's data takes in a response, escaped as in a Lambda result.
pub fn response_bytes(item: &Item) -> usize {
    serde_json::to_vec(&item.data).map_or(usize::MAX, |json| crate::support::text::json_escaped_len(&json))
}

/// The cursor of a [`scatter_gather`] page of `partitions` that ends with `item`: for a
/// caller that shortens a page it was given (its own budget), so that the next page
/// starts right after `item`.
pub fn cursor_after(partitions: &[String], index: Index, item: &Item) -> Cursor {
    let tag = format!("SG#{}", partitions.first().map(String::as_str).unwrap_or_default());
    Cursor { pk: tag, sk: sort_key(item, index).to_owned(), ipk: None, isk: None }
}

/// [`scatter_gather`] whose page also ends, with `next` set, before its items' data
/// exceeds `max_bytes` ([`response_bytes`]); it always holds at least one sort key's items.
pub async fn scatter_gather_within(
    store: &dyn Store,
    partitions: &[String],
    query: &Query,
    cursor: Option<Cursor>,
    max_bytes: usize,
) -> Result<Page, StoreError> {
    let tag = format!("SG#{}", partitions.first().map(String::as_str).unwrap_or_default());
    let after = match cursor {
        Some(cursor) => {
            cursor.check(Index::Table, &tag)?;
            Some(cursor.sk)
        }
        None => None,
    };
    let limit = query.limit.max(1);
    let shards = partitions.len().max(1);
    let per_shard = limit.min(limit.div_ceil(shards) * 2 + 2);
    let reads = partitions.iter().map(|partition| {
        let shard = Query {
            partition: partition.clone(),
            cursor: None,
            sk_after: after.clone(),
            limit: per_shard,
            ..query.clone()
        };
        async move { store.query(&shard).await }
    });
    let pages = futures_util::future::try_join_all(reads).await?;

    let index = query.index;
    let order = |a: &str, b: &str| if query.descending { b.cmp(a) } else { a.cmp(b) };
    let earliest = |bound: Option<String>, candidate: &str| match bound {
        Some(b) if order(&b, candidate) != Ordering::Greater => Some(b),
        _ => Some(candidate.to_owned()),
    };
    let mut bound: Option<String> = None;
    let mut items = Vec::new();
    for page in pages {
        if let Some(next) = &page.next {
            bound = earliest(bound, reached(next, index));
        }
        items.extend(page.items);
    }
    items.sort_by(|a, b| order(sort_key(a, index), sort_key(b, index)).then_with(|| a.key.cmp(&b.key)));
    let mut distinct: Vec<&str> = items.iter().map(|i| sort_key(i, index)).collect();
    distinct.dedup();
    if distinct.len() > limit {
        let last = distinct[limit - 1].to_owned();
        bound = earliest(bound, &last);
    }
    if let Some(bound) = &bound {
        items.retain(|item| order(sort_key(item, index), bound) != Ordering::Greater);
    }
    if max_bytes < usize::MAX {
        let mut total = 0usize;
        let over = items.iter().position(|item| {
            total = total.saturating_add(response_bytes(item));
            total > max_bytes
        });
        if let Some(mut cut) = over {
            // Never split the items of one sort key (a sharded counter's parts), never
            // return an empty page.
            while cut > 0 && sort_key(&items[cut - 1], index) == sort_key(&items[cut], index) {
                cut -= 1;
            }
            if cut == 0 {
                let first = sort_key(&items[0], index).to_owned();
                cut = items.iter().position(|item| sort_key(item, index) != first).unwrap_or(items.len());
            }
            if cut < items.len() {
                bound = Some(sort_key(&items[cut - 1], index).to_owned());
                items.truncate(cut);
            }
        }
    }
    let next = bound.map(|sk| Cursor { pk: tag, sk, ipk: None, isk: None });
    Ok(Page { items, next })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::store::Key;

    /// Reads a whole sharded listing page by page.
    async fn collect(store: &dyn Store, partitions: &[String], query: &Query) -> (Vec<Item>, usize) {
        let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None);
        loop {
            let page = scatter_gather(store, partitions, query, cursor).await.unwrap();
            pages += 1;
            items.extend(page.items);
            cursor = page.next;
            if cursor.is_none() || pages > 200 {
                return (items, pages);
            }
        }
    }

    fn parts_item() -> Item {
        Item::new(Key::new("W#ws#C#00", "G#0"), &json!({"n": 1})).unwrap()
    }

    /// 120 items over 16 shards in an index, plus counter parts that share sort keys.
    async fn scatter_gather_pages_through_every_shard_once(store: Arc<dyn Store>) {
        let store = &*store;
        let ids: Vec<String> = (0..120).map(|i| format!("req_{i:04}")).collect();
        let items: Vec<Item> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Item::new(
                    Key::new(item_pk("ws", "T", id), "T"),
                    &json!({ "status": if i % 2 == 1 { "odd" } else { "even" } }),
                )
                .unwrap()
                .with_index(Index::Gsi4, sharded("W#ws#TS", id), format!("T#{id}"))
            })
            .collect();
        store.batch_put(items).await.unwrap();
        let shards: Vec<String> = all_shards("W#ws#TS").collect();
        let sorted = |items: &[Item]| -> Vec<String> {
            items.iter().map(|i| i.index_key(Index::Gsi4).unwrap().sk.clone()).collect()
        };
        let expected: Vec<String> = ids.iter().map(|id| format!("T#{id}")).collect();

        let (items, pages) = collect(store, &shards, &Query::index(Index::Gsi4, "").prefix("T#").limit(40)).await;
        assert_eq!(sorted(&items), expected);
        assert!((3..=5).contains(&pages), "{pages} pages of at most 40");
        let query = Query::index(Index::Gsi4, "").prefix("T#").limit(25).descending();
        let (items, _) = collect(store, &shards, &query).await;
        assert_eq!(sorted(&items), expected.iter().rev().cloned().collect::<Vec<_>>());
        let query = Query::index(Index::Gsi4, "").prefix("T#").filter_eq("status", json!("odd")).limit(30).descending();
        let (items, _) = collect(store, &shards, &query).await;
        assert_eq!(sorted(&items), expected.iter().skip(1).step_by(2).rev().cloned().collect::<Vec<_>>());

        // Counter parts: group g{n} has a part in n+1 shards; one page holds all of a group.
        let parts: Vec<Item> = (0..10u32)
            .flat_map(|n| {
                (0..=n).map(move |shard| {
                    Item::new(Key::new(format!("W#ws#C#{shard:02}"), format!("G#{n}")), &json!({"n": 1})).unwrap()
                })
            })
            .collect();
        store.batch_put(parts).await.unwrap();
        let shards: Vec<String> = all_shards("W#ws#C").collect();
        let mut cursor = None;
        let mut groups = Vec::new();
        for _ in 0..20 {
            let page = scatter_gather(store, &shards, &Query::table("").prefix("G#").limit(3), cursor).await.unwrap();
            let mut sks: Vec<&str> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
            let total = sks.len();
            sks.dedup();
            assert!(sks.len() <= 3);
            groups.extend(sks.iter().map(|sk| (*sk).to_owned()));
            let parts: usize = sks.iter().map(|sk| sk[2..].parse::<usize>().unwrap() + 1).sum();
            assert_eq!(total, parts, "every part of a group in one page");
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(groups, (0..10).map(|n| format!("G#{n}")).collect::<Vec<_>>());

        // A byte budget ends pages early, never splitting a group nor skipping anything.
        let budget = response_bytes(&parts_item()) * 4;
        let (mut cursor, mut groups, mut pages) = (None, Vec::new(), 0);
        while pages < 40 {
            let query = Query::table("").prefix("G#").limit(100);
            let page = scatter_gather_within(store, &shards, &query, cursor, budget).await.unwrap();
            pages += 1;
            let mut sks: Vec<&str> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
            let total = sks.len();
            sks.dedup();
            let parts: usize = sks.iter().map(|sk| sk[2..].parse::<usize>().unwrap() + 1).sum();
            assert_eq!(total, parts, "every part of a group in one page");
            assert!(total <= 4 || sks.len() == 1, "over budget only for one group: {sks:?}");
            groups.extend(sks.iter().map(|sk| (*sk).to_owned()));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(groups, (0..10).map(|n| format!("G#{n}")).collect::<Vec<_>>());
        assert_eq!(pages, 9, "G0+G1, then one group a page");

        // A cursor of another listing is refused.
        let page = scatter_gather(store, &shards, &Query::table("").prefix("G#").limit(1), None).await.unwrap();
        let other: Vec<String> = all_shards("W#ws#TS").collect();
        let err = scatter_gather(store, &other, &Query::index(Index::Gsi4, ""), page.next).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
    }

    #[cfg(feature = "embedded")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scatter_gather_pages_through_every_shard_once_embedded() {
        let (db, _dir) = crate::testing::embedded_db();
        scatter_gather_pages_through_every_shard_once(Arc::new(crate::store::sqlite::SqliteStore::new(db))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scatter_gather_pages_through_every_shard_once_dynamodb() {
        scatter_gather_pages_through_every_shard_once(crate::testing::dynamo_store().await).await;
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed by FNV-1a: a change here would orphan stored listings.
        assert_eq!(shard_of(""), 0x811c_9dc5 % LIST_SHARDS);
        assert_eq!(sharded("W#1#CMP#c", "lead_a"), format!("W#1#CMP#c#{:02}", shard_of("lead_a")));
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            seen.insert(shard_of(&format!("req_01HZ_{i:04}")));
        }
        assert_eq!(seen.len(), LIST_SHARDS as usize, "1000 ids reach every shard");
        assert_eq!(all_shards("P").count(), LIST_SHARDS as usize);
        assert_eq!(item_pk("ws", "LEAD", "l1"), "W#ws#LEAD#l1");
    }
}
