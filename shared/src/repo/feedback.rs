//! The per-lead event log and the deduplication records of feedback events, and the one
//! transaction that applies an event: lead (versioned), log entry, dedupe record and
//! insights counters are written together or not at all.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | event log entry | `W#{ws}#LEAD#{lead}` (the lead's partition) | `FEVT#{occurred_at ms, 13 digits}#{evt id}` |
//! | dedupe record | `W#{ws}#FDUP#{sha256(event_id or Idempotency-Key)}` | `FDUP` (expires) |

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::item_pk;
use super::{insights::CountPlan, leads};
use crate::domain::feedback::FeedbackEvent;
use crate::domain::lead::Lead;
use crate::store::{Condition, Cursor, Item, Key, Page, Store, StoreError, WriteOp};
use crate::support::secrets;
use crate::support::time::Timestamp;

const EVENTS_PREFIX: &str = "FEVT#";

pub fn event_key(workspace_id: &str, event: &FeedbackEvent) -> Key {
    // Fixed-width millis (occurred_at is never before 2000) sort the log by event time.
    let millis = event.occurred_at.unix_millis().max(0);
    Key::new(leads::partition(workspace_id, &event.lead_id), format!("{EVENTS_PREFIX}{millis:013}#{}", event.id))
}

pub const DEDUPE_KIND: &str = "FDUP";

fn dedupe_key(workspace_id: &str, event_id: &str) -> Key {
    Key::new(item_pk(workspace_id, DEDUPE_KIND, &secrets::hash(event_id)), DEDUPE_KIND)
}

/// What a retry of the same event is answered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupeRecord {
    /// Hash of the request's fields, to tell a retry from a reused key.
    pub payload_hash: String,
    pub lead_id: String,
    pub event_log_id: String,
    /// The response body's `data`, replayed as is.
    pub response: Value,
    pub created_at: Timestamp,
}

/// The live dedupe record of an event id, if any.
pub async fn find_duplicate(
    store: &dyn Store,
    workspace_id: &str,
    event_id: &str,
    now: Timestamp,
) -> Result<Option<DedupeRecord>, StoreError> {
    match store.get(&dedupe_key(workspace_id, event_id)).await? {
        Some(item) if !item.is_expired(now.unix_seconds()) => Ok(Some(item.parse()?)),
        _ => Ok(None),
    }
}

/// Everything one event writes.
pub struct EventWrite<'a> {
    /// The updated lead and the version it was read at; `None` when the lead is unchanged.
    pub lead: Option<(&'a Lead, u64)>,
    pub event: &'a FeedbackEvent,
    /// `(event id, record, expires_at)` when the sender gave an id to deduplicate on.
    pub dedupe: Option<(&'a str, &'a DedupeRecord, i64)>,
    pub counts: CountPlan,
}

pub enum Committed {
    Done,
    /// The event id was recorded meanwhile by another delivery of the same event.
    Duplicate,
    /// The lead changed or a counter marker appeared since it was read: read and try again.
    Contended,
}

pub async fn commit(store: &dyn Store, workspace_id: &str, write: EventWrite<'_>) -> Result<Committed, StoreError> {
    let mut ops = Vec::new();
    if let Some((lead, version)) = write.lead {
        let item = leads::item(workspace_id, lead)?.with_version(version + 1);
        ops.push(WriteOp::Put { item, condition: Condition::VersionIs(version) });
    }
    let event_item = Item::new(event_key(workspace_id, write.event), write.event)?.without_nulls();
    ops.push(WriteOp::Put { item: event_item, condition: Condition::NotExists });
    let mut dedupe_op = None;
    if let Some((event_id, record, expires_at)) = write.dedupe {
        let created = record.created_at.unix_seconds();
        let item = Item::new(dedupe_key(workspace_id, event_id), record)?.with_expiry(expires_at);
        dedupe_op = Some(ops.len());
        ops.push(WriteOp::Put { item, condition: Condition::NotExistsOrExpired { now: created } });
    }
    ops.extend(write.counts.into_ops());
    // Most repeated opens and clicks write only their log entry: a plain conditional put.
    if let [WriteOp::Put { .. }] = ops.as_slice()
        && let Some(WriteOp::Put { item, condition }) = ops.pop()
    {
        return match store.put(item, condition).await {
            Ok(()) => Ok(Committed::Done),
            Err(StoreError::ConditionFailed) => Ok(Committed::Contended),
            Err(e) => Err(e),
        };
    }
    match store.transact_write(ops).await {
        Ok(()) => Ok(Committed::Done),
        Err(StoreError::TransactionCanceled { failed_op }) if failed_op.is_some() && failed_op == dedupe_op => {
            Ok(Committed::Duplicate)
        }
        Err(StoreError::TransactionCanceled { .. }) => Ok(Committed::Contended),
        Err(e) => Err(e),
    }
}

/// A lead's events, newest `occurred_at` first.
pub async fn list_events(
    store: &dyn Store,
    workspace_id: &str,
    lead_id: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<Page, StoreError> {
    super::newest_first(store, leads::partition(workspace_id, lead_id), EVENTS_PREFIX, limit, cursor).await
}
