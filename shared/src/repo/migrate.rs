//! Moving items written under the first key layout (every item of a workspace under
//! `W#{ws}`) to the current one (see `keys`): leads, their events and counter markers,
//! event dedupe records, idempotency records, pushes and deliveries each get their own
//! partition;
//! insights and campaign lead counters become sharded counters.
//!
//! Works through the store port, so the same code migrates the embedded file (at start, see
//! `AppContext::from_config`) and a DynamoDB table (`leadpush migrate-keys`; see
//! docs/storage.md, "Migrating a DynamoDB table to this key layout"). Safe to interrupt and
//! run again: an item is written under its new key before its old key is deleted, and a
//! counter moves in one transaction (add to the new part, delete the old). A marker item
//! records that the layout is current, so later starts cost one read.

use serde_json::json;

use super::keys::item_pk;
use super::{campaigns, deliveries, feedback, idempotency, insights, leads, pushes, workspace_pk};
use crate::domain::delivery::Delivery;
use crate::domain::feedback::FeedbackEvent;
use crate::domain::lead::Lead;
use crate::store::{Condition, Item, Key, Query, Store, StoreError, WriteOp};

/// The key layout this build writes: 2 gave growing kinds their own partitions, 3 indexes
/// push sweep markers by due time.
pub const LAYOUT: i64 = 3;
const PAGE: usize = 100;

fn layout_key() -> Key {
    Key::new("LAYOUT", "LAYOUT")
}

/// What a migration moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub workspaces: usize,
    pub moved: usize,
    /// Push sweep markers given their due-time index entry.
    pub reindexed: usize,
}

/// Moves every item of the first layout; a no-op (one read) once the layout is current.
pub async fn rekey(store: &dyn Store) -> Result<Report, StoreError> {
    let current = store.get(&layout_key()).await?.map_or(0, |marker| marker.counter("layout"));
    if current >= LAYOUT {
        return Ok(Report::default());
    }
    let mut report = Report::default();
    if current < 2 {
        rekey_workspaces(store, &mut report).await?;
    }
    report.reindexed = super::push_sweep::index_unindexed(store).await?;
    let marker = Item::new(layout_key(), &json!({"layout": LAYOUT}))?;
    store.put(marker, Condition::Always).await?;
    if report.moved > 0 || report.reindexed > 0 {
        tracing::info!(
            workspaces = report.workspaces,
            moved = report.moved,
            reindexed = report.reindexed,
            "stored items moved to the current key layout"
        );
    }
    Ok(report)
}

async fn rekey_workspaces(store: &dyn Store, report: &mut Report) -> Result<(), StoreError> {
    let mut cursor = None;
    loop {
        let page = store.query(&Query::gsi1(super::workspaces::WORKSPACES_INDEX).limit(PAGE).after(cursor)).await?;
        for workspace in &page.items {
            if let Some(id) = workspace.key.pk.strip_prefix("W#") {
                report.moved += rekey_workspace(store, id).await?;
                report.workspaces += 1;
            }
        }
        cursor = page.next;
        if cursor.is_none() {
            return Ok(());
        }
    }
}

/// Rewrites every item holding a secret through `store` (a `store::sealed::SealedStore`),
/// which seals what an earlier build stored in plaintext; once per store (a marker item
/// records it). Returns how many items it rewrote; an item changed meanwhile was written
/// sealed by its writer and is skipped.
pub async fn seal_secrets(store: &dyn Store) -> Result<usize, StoreError> {
    let marker_key = Key::new("LAYOUT", "SEALED");
    if store.get(&marker_key).await?.is_some() {
        return Ok(0);
    }
    let mut rewritten = 0;
    let mut cursor = None;
    loop {
        let page = store.query(&Query::gsi1(super::workspaces::WORKSPACES_INDEX).limit(PAGE).after(cursor)).await?;
        for workspace in &page.items {
            for prefix in super::secrets::prefixes() {
                let mut inner = None;
                loop {
                    let items = store
                        .query(&Query::table(workspace.key.pk.clone()).prefix(prefix).limit(PAGE).after(inner))
                        .await?;
                    for item in items.items {
                        let version = item.version;
                        match store.put(item.with_version(version + 1), Condition::VersionIs(version)).await {
                            Ok(()) => rewritten += 1,
                            Err(StoreError::ConditionFailed) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    inner = items.next;
                    if inner.is_none() {
                        break;
                    }
                }
            }
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    store.put(Item::new(marker_key, &json!({"sealed": true}))?, Condition::Always).await?;
    if rewritten > 0 {
        tracing::info!(rewritten, "stored secrets sealed in place");
    }
    Ok(rewritten)
}

/// The old sort-key prefixes, in the order they move (leads before their children).
const OLD_PREFIXES: [&str; 9] = ["LEAD#", "FEVT#", "CNT#", "FDUP#", "IDEM#", "PUSH#", "DLV#", "INS#", "CMPSTAT#"];

async fn rekey_workspace(store: &dyn Store, workspace_id: &str) -> Result<usize, StoreError> {
    let mut moved = 0;
    for prefix in OLD_PREFIXES {
        // Moved items leave the partition, so the first page is always the next one.
        for _ in 0..usize::MAX {
            let page = store.query(&Query::table(workspace_pk(workspace_id)).prefix(prefix).limit(PAGE)).await?;
            if page.items.is_empty() {
                break;
            }
            moved += page.items.len();
            let old_keys: Vec<Key> = page.items.iter().map(|i| i.key.clone()).collect();
            let mut puts = Vec::new();
            for old in page.items {
                match moved_item(workspace_id, old)? {
                    Moved::Item(item) => puts.push(item),
                    Moved::Counter(key, old) => {
                        let counters = old.data.keys().map(|name| (name.clone(), old.counter(name))).collect();
                        let ops = vec![
                            WriteOp::Increment { key, counters },
                            WriteOp::Delete { key: old.key, condition: Condition::Exists },
                        ];
                        match store.transact_write(ops).await {
                            // Someone else moved it meanwhile.
                            Ok(()) | Err(StoreError::TransactionCanceled { failed_op: Some(1) }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            store.batch_put(puts).await?;
            store.batch_delete(&old_keys).await?;
        }
    }
    Ok(moved)
}

enum Moved {
    Item(Item),
    /// Counters add into the new part (first shard) instead of overwriting it.
    Counter(Key, Item),
}

/// The item under its current key; data, version and expiry are kept.
fn moved_item(workspace_id: &str, old: Item) -> Result<Moved, StoreError> {
    let sk = old.key.sk.clone();
    let rekeyed = |key: Key| Item { key, indexes: [None, None, None, None], ..old.clone() };
    let (kind, rest) = sk.split_once('#').unwrap_or((sk.as_str(), ""));
    Ok(match kind {
        "LEAD" => {
            let lead: Lead = old.parse()?;
            let mut item = leads::item(workspace_id, &lead)?.with_version(old.version);
            item.expires_at = old.expires_at;
            Moved::Item(item)
        }
        "FEVT" => {
            let event: FeedbackEvent = old.parse()?;
            Moved::Item(rekeyed(feedback::event_key(workspace_id, &event)))
        }
        "CNT" => {
            let (lead_id, marker) = rest.split_once('#').unwrap_or((rest, ""));
            Moved::Item(rekeyed(Key::new(leads::partition(workspace_id, lead_id), format!("CNT#{marker}"))))
        }
        "FDUP" => {
            Moved::Item(rekeyed(Key::new(item_pk(workspace_id, feedback::DEDUPE_KIND, rest), feedback::DEDUPE_KIND)))
        }
        "IDEM" => Moved::Item(rekeyed(Key::new(item_pk(workspace_id, idempotency::KIND, rest), idempotency::KIND))),
        "PUSH" => Moved::Item(rekeyed(pushes::key(workspace_id, rest))),
        "DLV" => {
            let delivery: Delivery = old.parse()?;
            let mut item = deliveries::item(workspace_id, &delivery)?.with_version(old.version);
            item.expires_at = old.expires_at;
            Moved::Item(item)
        }
        "INS" => {
            let partition = format!("{}#00", insights::counters_partition(workspace_id));
            Moved::Counter(Key::new(partition, sk.clone()), old)
        }
        "CMPSTAT" => Moved::Counter(campaigns::stats_part(workspace_id, rest, 0), old),
        _ => return Err(StoreError::Corrupt(format!("{}/{sk}: not an item of the first layout", old.key.pk))),
    })
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::domain::feedback::{EventSource, EventType};
    use crate::domain::lead::{LeadFields, LeadStatus};
    use crate::repo::insights::Dimension;
    use crate::repo::{lead_lookup, workspaces};
    use crate::support::time::Timestamp;

    /// Items as the first layout wrote them: all under `W#{ws}`.
    fn old(sk: &str, data: serde_json::Value) -> Item {
        Item::new(Key::new("W#ws_old", sk), &data).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn first_layout_items_move_to_their_own_partitions_and_keep_working() {
        let (db, _dir) = crate::testing::embedded_db();
        let store = crate::store::sqlite::SqliteStore::new(db);
        let now = Timestamp::parse("2026-05-02T12:00:00Z").unwrap();
        let ws = workspaces::create_workspace(&store, "Old", now).await.unwrap();
        assert_eq!(rekey(&store).await.unwrap(), Report { workspaces: 1, moved: 0, reindexed: 0 });
        store.delete(&layout_key(), Condition::Always).await.unwrap();

        let ws_old = Item::new(Key::new("W#ws_old", "META"), &json!({"id": "ws_old", "name": "Old"}))
            .unwrap()
            .with_gsi1(workspaces::WORKSPACES_INDEX, "ws_old");
        let fields = LeadFields { email: Some("ada@example.com".into()), ..LeadFields::default() };
        let mut lead = Lead::new("req_OLD_0001".into(), "cmp_1".into(), None, fields, now);
        lead.status = LeadStatus::Replied;
        let event = FeedbackEvent {
            id: "evt_1".into(),
            lead_id: lead.id.clone(),
            event_type: EventType::Reply,
            source: EventSource::Manual,
            content: None,
            meeting_url: None,
            occurred_at: now,
            received_at: now,
            metadata: None,
            event_id: None,
            mutated_lead: true,
            note: "replied".into(),
            lead_status: LeadStatus::Replied,
        };
        let mut items = vec![
            ws_old,
            old("LEAD#req_OLD_0001", serde_json::to_value(&lead).unwrap()).with_version(3),
            old(&format!("FEVT#req_OLD_0001#{:013}#evt_1", now.unix_millis()), serde_json::to_value(&event).unwrap()),
            old("CNT#req_OLD_0001#replied", json!({})),
            old("FDUP#abc", json!({"x": 1})).with_expiry(99),
            old("IDEM#ingest#def", json!({"y": 2})).with_expiry(98),
            old("PUSH#push_1", json!({"z": 3})),
            old(
                "DLV#wh_1#dlv_1",
                json!({"id": "dlv_1", "webhook_id": "wh_1", "event": "lead.saved", "message_id": "msg_1",
                       "lead_id": null, "target_url": null, "payload": {}, "status": "delivered", "attempts": [],
                       "next_attempt_at": null, "created_at": now, "updated_at": now}),
            )
            .with_expiry(97),
            old("INS#position#cto", json!({"pushed": 4, "replied": 1})),
            old("CMPSTAT#cmp_1", json!({"lead_count": 7})),
        ];
        // A counter the new layout already added to keeps both counts.
        items.push(
            Item::new(
                Key::new(format!("{}#00", insights::counters_partition("ws_old")), "INS#position#cto"),
                &json!({"pushed": 1}),
            )
            .unwrap(),
        );
        store.batch_put(items).await.unwrap();

        let report = rekey(&store).await.unwrap();
        assert_eq!(report, Report { workspaces: 2, moved: 9, reindexed: 0 });
        let left = store.query(&Query::table("W#ws_old")).await.unwrap();
        assert_eq!(left.items.iter().map(|i| i.key.sk.as_str()).collect::<Vec<_>>(), ["META"]);

        let moved = store.get(&leads::key("ws_old", &lead.id)).await.unwrap().unwrap();
        assert_eq!((moved.version, moved.parse::<Lead>().unwrap().status), (3, LeadStatus::Replied));
        let listed = leads::list(&store, "ws_old", &leads::LeadFilter::default(), 10, None).await.unwrap();
        assert_eq!(listed.items.len(), 1);
        let by_email = lead_lookup::find(
            &store,
            "ws_old",
            &crate::domain::providers::LeadRef { lead_id: None, linkedin: None, email: Some("ada@example.com".into()) },
        )
        .await
        .unwrap();
        assert_eq!(by_email.map(|l| l.id), Some(lead.id.clone()));
        let events = feedback::list_events(&store, "ws_old", &lead.id, 10, None).await.unwrap();
        assert_eq!(events.items[0].parse::<FeedbackEvent>().unwrap().id, "evt_1");
        let marker = Key::new(leads::partition("ws_old", &lead.id), "CNT#replied");
        assert!(store.get(&marker).await.unwrap().is_some());
        let dedupe = store.get(&Key::new(item_pk("ws_old", "FDUP", "abc"), "FDUP")).await.unwrap().unwrap();
        assert_eq!((dedupe.data["x"].clone(), dedupe.expires_at), (json!(1), Some(99)));
        assert!(store.get(&Key::new(item_pk("ws_old", "IDEM", "ingest#def"), "IDEM")).await.unwrap().is_some());
        assert!(store.get(&pushes::key("ws_old", "push_1")).await.unwrap().is_some());
        let listed = deliveries::list(&store, "ws_old", "wh_1", 10, None).await.unwrap();
        assert_eq!((listed.items.len(), listed.items[0].expires_at), (1, Some(97)));
        let groups = insights::list(&store, "ws_old", Dimension::Position, 10, None).await.unwrap();
        assert_eq!((groups.items[0].counter("pushed"), groups.items[0].counter("replied")), (5, 1));
        let counts = campaigns::lead_counts(&store, "ws_old", &["cmp_1"]).await.unwrap();
        assert_eq!(counts["cmp_1"], 7);

        // Done: the next start reads one marker and moves nothing.
        assert_eq!(rekey(&store).await.unwrap(), Report::default());
        let _ = ws;
    }
}
