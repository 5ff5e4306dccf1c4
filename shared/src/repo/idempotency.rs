//! Idempotency records, as in AWS Lambda Powertools: a key is claimed `in_progress` with a
//! short lease, then `completed` for the full window. Expiry is compared on every claim
//! (DynamoDB TTL deletes late), so a crashed request stops blocking when its lease ends
//! and a completed key is accepted again once its window has passed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::keys::item_pk;
use crate::store::{Condition, Item, Key, Store, StoreError, WriteOp};
use crate::support::secrets;
use crate::support::time::Timestamp;

/// A partition per record: `W#{ws}#IDEM#{scope}#{sha256(key)}`, sort key `IDEM`.
pub const KIND: &str = "IDEM";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyState {
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub key: String,
    pub request_id: String,
    pub state: IdempotencyState,
    /// Hash of the request body, to tell a retry from a reused key.
    pub payload_hash: String,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// The response to replay for a retry, where the route replays instead of refusing.
    pub response: Option<Value>,
    /// The stored version, to replace this record (resuming a dead claim).
    #[serde(skip)]
    pub version: u64,
    /// Ingest: how many leads this request writes (ids `{request_id}_0001` on), so a
    /// request that takes the key over from it once it died knows what it may have left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Ingest: dead requests this one took the key over from, whose leads it removes
    /// before writing its own; kept on the record so that, if this one dies too, the next
    /// owner removes them as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abandoned: Vec<Abandoned>,
}

/// A dead request's leads: ids `{request_id}_0001` to `{request_id}_{count}`, of which any
/// may have been written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abandoned {
    pub request_id: String,
    pub count: usize,
}

impl IdempotencyRecord {
    /// An in-progress claim whose lease has ended: the request that made it died (a
    /// crash, a timeout) without completing or releasing it.
    pub fn is_dead(&self, now: Timestamp, lease: Duration) -> bool {
        self.state == IdempotencyState::InProgress && self.created_at.plus(lease) <= now
    }
}

/// Names one idempotency record: a client's key, in one workspace, for one route.
#[derive(Debug, Clone, Copy)]
pub struct RecordKey<'a> {
    pub workspace_id: &'a str,
    /// One namespace per route, so the same key may be used on two routes.
    pub scope: &'a str,
    pub key: &'a str,
}

impl RecordKey<'_> {
    fn store_key(&self) -> Key {
        let id = format!("{}#{}", self.scope, secrets::hash(self.key));
        Key::new(item_pk(self.workspace_id, KIND, &id), KIND)
    }
}

#[derive(Debug)]
pub enum Claim {
    /// This request owns the key; finish with [`complete`] or [`release`].
    Claimed,
    /// The key is held by a live record (in progress, or completed within its window).
    Taken(IdempotencyRecord),
}

pub struct ClaimRequest<'a> {
    pub at: RecordKey<'a>,
    pub request_id: &'a str,
    pub payload_hash: String,
    pub now: Timestamp,
    pub lease: Duration,
    /// Keep an in-progress record this long instead of expiring it with its lease, so a
    /// retry of a request that died finds it ([`IdempotencyRecord::is_dead`]) and can
    /// resume it. `None`: an abandoned claim simply expires when its lease ends.
    pub keep_for: Option<Duration>,
    /// Replace the record stored at this version (resuming or taking over a dead claim)
    /// instead of requiring that none be live.
    pub replace: Option<u64>,
    /// See [`IdempotencyRecord::count`] and [`IdempotencyRecord::abandoned`].
    pub count: Option<usize>,
    pub abandoned: Vec<Abandoned>,
}

pub async fn claim(store: &dyn Store, req: ClaimRequest<'_>) -> Result<Claim, StoreError> {
    Ok(match claim_writing(store, req, Vec::new()).await? {
        Ok(_) => Claim::Claimed,
        Err(record) => Claim::Taken(record),
    })
}

/// A claim this request holds. Its version is random, so [`completion`] can check that the
/// key was not taken over (after the lease ended) without reading it first.
#[derive(Debug, Clone)]
pub struct Held {
    record: IdempotencyRecord,
    version: u64,
}

/// Claims the key and, in the same transaction, makes the writes `with` (all or none; at
/// most `MAX_TRANSACT_ITEMS - 1`). The key taken by a live record: `Ok(Err(record))`, and
/// nothing is written.
pub async fn claim_writing(
    store: &dyn Store,
    req: ClaimRequest<'_>,
    with: Vec<WriteOp>,
) -> Result<Result<Held, IdempotencyRecord>, StoreError> {
    let key = req.at.store_key();
    let record = IdempotencyRecord {
        key: req.at.key.to_owned(),
        request_id: req.request_id.to_owned(),
        state: IdempotencyState::InProgress,
        payload_hash: req.payload_hash,
        created_at: req.now,
        completed_at: None,
        response: None,
        version: 0,
        count: req.count,
        abandoned: req.abandoned,
    };
    let now = req.now.unix_seconds();
    // Below 2^53, so the version reads back exactly wherever numbers are doubles.
    let version = rand::random_range(1..1u64 << 53);
    let condition = match req.replace {
        Some(current) => Condition::VersionIs(current),
        None => Condition::NotExistsOrExpired { now },
    };
    let expires_at = req.now.plus(req.keep_for.unwrap_or(req.lease)).unix_seconds();
    // A few rounds cover a record that expires or is released between our write and our read.
    for _ in 0..3 {
        let item = Item::new(key.clone(), &record)?.with_expiry(expires_at).with_version(version);
        let result = if with.is_empty() {
            store.put(item, condition).await
        } else {
            let mut ops = vec![WriteOp::Put { item, condition }];
            ops.extend(with.iter().cloned());
            match store.transact_write(ops).await {
                Err(StoreError::TransactionCanceled { failed_op: Some(0) }) => Err(StoreError::ConditionFailed),
                // Another transaction got in the way: try again.
                Err(StoreError::TransactionCanceled { .. }) => continue,
                other => other,
            }
        };
        match result {
            Ok(()) => return Ok(Ok(Held { record, version })),
            Err(StoreError::ConditionFailed) => match store.get(&key).await? {
                Some(existing) if !existing.is_expired(now) => {
                    let mut taken: IdempotencyRecord = existing.parse()?;
                    taken.version = existing.version;
                    return Ok(Err(taken));
                }
                _ => continue,
            },
            Err(e @ StoreError::Backend(_)) => {
                undo_unknown_claim(store, &key, version, &with).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend("idempotency key kept changing while being claimed".into()))
}

/// A claim whose answer was lost (a timeout) may or may not have been written. If it was
/// (the record is ours: its version), the key is freed and the writes made with it are
/// removed, so a retry of the request starts clean; otherwise there is nothing to undo.
async fn undo_unknown_claim(store: &dyn Store, key: &Key, version: u64, with: &[WriteOp]) {
    match store.delete(key, Condition::VersionIs(version)).await {
        Ok(()) => {
            let keys: Vec<Key> = with.iter().map(|op| op.key().clone()).collect();
            if let Err(e) = store.batch_delete(&keys).await {
                tracing::error!(error = %e, writes = keys.len(), "could not undo the writes of a timed-out claim");
            }
        }
        Err(StoreError::ConditionFailed) => {}
        Err(e) => {
            tracing::error!(error = %e, "could not check a timed-out idempotency claim; it expires with its lease")
        }
    }
}

/// The write that marks a held key completed for `window` from its creation, for a
/// transaction of the caller's; it fails if the key was taken over meanwhile.
pub fn completion(at: RecordKey<'_>, held: Held, now: Timestamp, window: Duration) -> Result<WriteOp, StoreError> {
    let mut record = held.record;
    record.state = IdempotencyState::Completed;
    record.completed_at = Some(now);
    let item = Item::new(at.store_key(), &record)?
        .with_expiry(record.created_at.plus(window).unix_seconds())
        .with_version(held.version + 1);
    Ok(WriteOp::Put { item, condition: Condition::VersionIs(held.version) })
}

/// Marks a claimed key completed for `window` from now, optionally with a response to replay.
pub async fn complete(
    store: &dyn Store,
    at: RecordKey<'_>,
    request_id: &str,
    response: Option<Value>,
    now: Timestamp,
    window: Duration,
) -> Result<(), StoreError> {
    let record_key = at.store_key();
    let Some(current) = store.get(&record_key).await? else {
        return Err(StoreError::Backend("idempotency record vanished before completion".into()));
    };
    let mut record: IdempotencyRecord = current.parse()?;
    if record.request_id != request_id {
        return Err(StoreError::Backend("idempotency lease expired and was taken over before completion".into()));
    }
    record.state = IdempotencyState::Completed;
    record.completed_at = Some(now);
    record.response = response;
    let item = Item::new(record_key, &record)?
        .with_expiry(record.created_at.plus(window).unix_seconds())
        .with_version(current.version + 1);
    store.put(item, Condition::VersionIs(current.version)).await
}

/// Gives a claimed key back (the request failed before anything was stored).
pub async fn release(store: &dyn Store, at: RecordKey<'_>) -> Result<(), StoreError> {
    store.delete(&at.store_key(), Condition::Always).await
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;

    fn at(key: &str) -> RecordKey<'_> {
        RecordKey { workspace_id: "ws_1", scope: "ingest", key }
    }

    fn request<'a>(key: &'a str, request_id: &'a str, now: Timestamp) -> ClaimRequest<'a> {
        ClaimRequest {
            at: RecordKey { workspace_id: "ws_1", scope: "ingest", key },
            request_id,
            payload_hash: "h".into(),
            now,
            lease: Duration::from_secs(60),
            keep_for: None,
            replace: None,
            count: None,
            abandoned: Vec::new(),
        }
    }

    #[tokio::test]
    async fn completed_keys_block_for_the_window_then_free_up() {
        let (db, _dir) = crate::testing::embedded_db();
        let store = crate::store::sqlite::SqliteStore::new(db);
        let t0 = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let week = Duration::from_secs(7 * 24 * 3600);
        assert!(matches!(claim(&store, request("k", "req_a", t0)).await.unwrap(), Claim::Claimed));
        complete(&store, at("k"), "req_a", None, t0, week).await.unwrap();

        let almost = t0.plus(week - Duration::from_secs(1));
        match claim(&store, request("k", "req_b", almost)).await.unwrap() {
            Claim::Taken(record) => {
                assert_eq!((record.request_id.as_str(), record.state), ("req_a", IdempotencyState::Completed))
            }
            Claim::Claimed => panic!("key reused within its window"),
        }
        // The record is still stored (TTL is lazy); the explicit comparison lets the key go.
        assert!(matches!(claim(&store, request("k", "req_c", t0.plus(week))).await.unwrap(), Claim::Claimed));
    }

    #[tokio::test]
    async fn an_abandoned_claim_stops_blocking_when_its_lease_ends() {
        let (db, _dir) = crate::testing::embedded_db();
        let store = crate::store::sqlite::SqliteStore::new(db);
        let t0 = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        assert!(matches!(claim(&store, request("k", "req_crashed", t0)).await.unwrap(), Claim::Claimed));
        let during = t0.plus(Duration::from_secs(59));
        assert!(matches!(claim(&store, request("k", "req_b", during)).await.unwrap(), Claim::Taken(_)));
        let after = t0.plus(Duration::from_secs(60));
        assert!(matches!(claim(&store, request("k", "req_b", after)).await.unwrap(), Claim::Claimed));
        // The crashed request may not complete over the new owner.
        let err = complete(&store, at("k"), "req_crashed", None, after, Duration::from_secs(600)).await;
        assert!(err.is_err());
    }

    /// Ingest claims a key together with its first leads, and completes it without a read.
    #[tokio::test]
    async fn a_claim_writes_its_companions_only_when_it_wins_and_completes_only_its_own_key() {
        let (db, _dir) = crate::testing::embedded_db();
        let store = crate::store::sqlite::SqliteStore::new(db);
        let t0 = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
        let lead = |n: u32| WriteOp::Put {
            item: Item::new(Key::new(format!("L#{n}"), "L"), &serde_json::json!({"n": n})).unwrap(),
            condition: Condition::Always,
        };
        let held = claim_writing(&store, request("k", "req_a", t0), vec![lead(1)]).await.unwrap().unwrap();
        assert!(store.get(&Key::new("L#1", "L")).await.unwrap().is_some());
        let taken = claim_writing(&store, request("k", "req_b", t0), vec![lead(2)]).await.unwrap().unwrap_err();
        assert_eq!(taken.request_id, "req_a");
        assert!(store.get(&Key::new("L#2", "L")).await.unwrap().is_none(), "a refused key writes nothing");

        // Taken over after the lease ended: the first owner's completion must fail.
        let after = t0.plus(Duration::from_secs(60));
        let new_owner = claim_writing(&store, request("k", "req_c", after), vec![]).await.unwrap().unwrap();
        let stale = completion(at("k"), held, after, Duration::from_secs(600)).unwrap();
        assert!(store.transact_write(vec![stale]).await.is_err());
        let done = completion(at("k"), new_owner, after, Duration::from_secs(600)).unwrap();
        store.transact_write(vec![done]).await.unwrap();
        let record: IdempotencyRecord = store.get(&at("k").store_key()).await.unwrap().unwrap().parse().unwrap();
        assert_eq!((record.request_id.as_str(), record.state), ("req_c", IdempotencyState::Completed));
    }
}
