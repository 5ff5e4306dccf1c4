//! Recording one outcome event, shared by our own route and the provider webhooks:
//! deduplicate, fold into the lead by the precedence rules, write lead + log entry + dedupe
//! record + insights counters in one transaction (re-reading on any race), then announce
//! the change (`save_lead`) if an endpoint of the workspace listens for it.

use super::{FeedbackError, FeedbackResult, LeadSnapshot};
use crate::context::AppContext;
use crate::domain::feedback::{self, EventSource, EventType, FeedbackEvent, Outcome};
use crate::domain::lead::Lead;
use crate::domain::webhook::EventType as WebhookEvent;
use crate::queue;
use crate::repo::feedback::{self as log, Committed, DedupeRecord, EventWrite};
use crate::repo::{self, insights, leads, webhooks};
use crate::store::{Key, StoreError};
use crate::support::ids;
use crate::support::time::Timestamp;

/// Rounds before a request gives up on a lead that many writers update at once.
const ATTEMPTS: usize = 60;

/// A validated event for one lead.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    pub source: EventSource,
    pub content: Option<String>,
    pub meeting_url: Option<String>,
    pub occurred_at: Timestamp,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The id to deduplicate retries on, if the sender gave one (or a provider payload did).
    pub event_id: Option<String>,
    /// Hash of what the sender asked for, to tell a retry from a reused id.
    pub payload_hash: String,
}

/// Answers a retry with the first delivery's response (and announces the lead again if
/// that delivery changed it: `save_lead` is at-least-once).
async fn replay(
    ctx: &AppContext,
    workspace_id: &str,
    event: &NewEvent,
    record: DedupeRecord,
) -> Result<FeedbackResult, FeedbackError> {
    if record.payload_hash != event.payload_hash {
        return Err(FeedbackError::ReusedEventId(event.event_id.clone().unwrap_or_default()));
    }
    let result: FeedbackResult =
        serde_json::from_value(record.response).map_err(|e| FeedbackError::Internal(e.to_string()))?;
    if result.mutated_lead {
        announce(ctx, workspace_id, &result.lead_id).await?;
    }
    tracing::info!(event_log_id = record.event_log_id, "duplicate feedback event answered from its first delivery");
    Ok(result)
}

/// `save_lead` for a lead an event changed, when some endpoint of the workspace listens for
/// it. Events come one lead at a time, so the check (one read of the workspace's few
/// endpoints) is cheaper than what it saves when nobody listens, as in most workspaces: a
/// message, its receive, its delete and the fan-out's own read of the endpoints (three of
/// the four writes a feedback event cost on the embedded store). An endpoint added later
/// hears of later changes, as it would had the message been sent.
async fn announce(ctx: &AppContext, workspace_id: &str, lead_id: &str) -> Result<(), FeedbackError> {
    if webhooks::subscribed(&*ctx.store, workspace_id, WebhookEvent::SaveLead).await?.is_empty() {
        return Ok(());
    }
    Ok(queue::emit_leads_saved(&*ctx.queue, workspace_id, &[lead_id.to_owned()]).await?)
}

fn snapshot(lead: &Lead) -> LeadSnapshot {
    LeadSnapshot {
        id: lead.id.clone(),
        status: lead.status,
        replied_at: lead.replied_at,
        meeting_booked_at: lead.meeting_booked_at,
        feedback: lead.feedback,
        feedback_reason: lead.feedback_reason.clone(),
    }
}

/// Records `event` for the lead `lead_id` of this workspace.
pub async fn record(
    ctx: &AppContext,
    workspace_id: &str,
    lead_id: &str,
    event: NewEvent,
) -> Result<FeedbackResult, FeedbackError> {
    let store = &*ctx.store;
    let received_at = ctx.now();
    if let Some(event_id) = &event.event_id
        && let Some(found) = log::find_duplicate(store, workspace_id, event_id, received_at).await?
    {
        return replay(ctx, workspace_id, &event, found).await;
    }
    let outcome = Outcome {
        event_type: event.event_type,
        content: event.content.clone(),
        meeting_url: event.meeting_url.clone(),
        occurred_at: event.occurred_at,
    };
    let kinds = event.event_type.outcome_kinds();
    let channel = event.source.as_str();
    let event_log_id = ids::new_id(ids::EVENT);
    let markers = insights::marker_keys(workspace_id, lead_id, kinds, channel);
    let mut counted = ctx.known_markers.among(&markers);
    let lead_key = leads::key(workspace_id, lead_id);
    for attempt in 0..ATTEMPTS {
        // The lead and the insight markers not yet seen in one read (one BatchGetItem on
        // DynamoDB). Markers only ever appear, so once all exist there is nothing left to
        // re-read.
        let item = if counted.len() < markers.len() {
            let mut keys = Vec::with_capacity(markers.len() + 1);
            keys.push(lead_key.clone());
            keys.extend(markers.iter().filter(|k| !counted.contains(*k)).cloned());
            // Eventually consistent on the first round (half the read units): a stale lead
            // fails the write's version check and a missed marker its `NotExists`, and the
            // rounds after a contended one read strongly consistent.
            let mut found =
                if attempt == 0 { store.batch_get_eventually(&keys).await? } else { store.batch_get(&keys).await? };
            let lead = found.iter().position(|i| i.key == lead_key).map(|at| found.swap_remove(at));
            let seen: Vec<Key> = found.into_iter().map(|i| i.key).filter(|k| markers.contains(k)).collect();
            ctx.known_markers.remember(&seen);
            counted.extend(seen);
            lead
        } else {
            if attempt == 0 { store.get_eventually(&lead_key).await? } else { store.get(&lead_key).await? }
        };
        let Some(item) = item else {
            return Err(FeedbackError::LeadNotFound);
        };
        let version = item.version;
        let mut lead: Lead = item.parse()?;
        let applied = feedback::apply(&mut lead, &outcome, received_at);
        let mut counts = insights::CountPlan::default();
        counts.add(workspace_id, &lead, channel, kinds, &counted)?;

        let entry = FeedbackEvent {
            id: event_log_id.clone(),
            lead_id: lead.id.clone(),
            event_type: event.event_type,
            source: event.source,
            content: event.content.clone(),
            meeting_url: event.meeting_url.clone(),
            occurred_at: event.occurred_at,
            received_at,
            metadata: event.metadata.clone(),
            event_id: event.event_id.clone(),
            mutated_lead: applied.mutated,
            note: applied.note.clone(),
            lead_status: lead.status,
        };
        let result = FeedbackResult {
            accepted: true,
            event_type: event.event_type,
            source: event.source,
            lead_id: lead.id.clone(),
            mutated_lead: applied.mutated,
            stored_event: true,
            note: applied.note,
            lead: snapshot(&lead),
        };
        let dedupe = match &event.event_id {
            Some(event_id) => {
                let record = DedupeRecord {
                    payload_hash: event.payload_hash.clone(),
                    lead_id: lead.id.clone(),
                    event_log_id: event_log_id.clone(),
                    response: serde_json::to_value(&result).map_err(|e| FeedbackError::Internal(e.to_string()))?,
                    created_at: received_at,
                };
                Some((event_id.as_str(), record))
            }
            None => None,
        };
        let expires_at = received_at.plus(ctx.config.idempotency_ttl).unix_seconds();
        // An event that changes nothing needs no version check: a lead's outcome only moves
        // forward, so an event that is dominated now stays dominated.
        let write = EventWrite {
            lead: applied.mutated.then_some((&lead, version)),
            event: &entry,
            dedupe: dedupe.as_ref().map(|(id, record)| (*id, record, expires_at)),
            counts,
        };
        match log::commit(store, workspace_id, write).await? {
            Committed::Done => {
                // Every marker of these kinds now exists: it was counted, or this commit put it.
                ctx.known_markers.remember(&markers);
                if result.mutated_lead {
                    announce(ctx, workspace_id, &lead.id).await?;
                }
                tracing::info!(
                    event_log_id,
                    event_type = event.event_type.as_str(),
                    source = channel,
                    mutated_lead = result.mutated_lead,
                    attempts = attempt + 1,
                    "feedback event recorded"
                );
                return Ok(result);
            }
            Committed::Duplicate => {
                if let Some((event_id, _)) = &dedupe
                    && let Some(found) = log::find_duplicate(store, workspace_id, event_id, ctx.now()).await?
                {
                    return replay(ctx, workspace_id, &event, found).await;
                }
            }
            Committed::Contended => repo::contention_pause(attempt).await,
        }
    }
    Err(StoreError::Backend(format!("lead {lead_id} still contended after {ATTEMPTS} attempts")).into())
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::domain::lead::LeadFields;
    use crate::queue::Task;

    async fn announced(ctx: &AppContext) -> Vec<String> {
        let mut ids = Vec::new();
        for message in ctx.queue.receive(10, Duration::ZERO).await.unwrap() {
            if let Task::LeadsSaved { lead_ids, .. } = serde_json::from_str(&message.body).unwrap() {
                ids.extend(lead_ids);
            }
            ctx.queue.delete(&message.receipt).await.unwrap();
        }
        ids
    }

    fn event(event_type: EventType, event_id: Option<&str>) -> NewEvent {
        NewEvent {
            event_type,
            source: EventSource::Manual,
            content: Some("text".into()),
            meeting_url: None,
            occurred_at: Timestamp::parse("2026-05-02T12:00:00Z").unwrap(),
            metadata: None,
            event_id: event_id.map(str::to_owned),
            payload_hash: format!("{event_type:?}"),
        }
    }

    /// What a reply costs on DynamoDB today (write units by DynamoDB's rules): one
    /// transaction of the lead, the log entry, two counted markers and five counter parts,
    /// each item twice, plus the lead's two listing entries (its status changed). The
    /// counters are most of it; see docs/benchmarks.md for the floor and what would close the
    /// gap. A repeated open writes its log entry alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_costs_one_transaction_and_a_repeated_open_one_log_entry() {
        let (mut ctx, _dir) = crate::testing::embedded_context();
        let meter = Arc::new(crate::store::capacity::CapacityMeter::new(ctx.store.clone()));
        ctx.store = meter.clone();
        let fields = LeadFields {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
            company: Some("Example Corp".into()),
            position: Some("Head of Growth".into()),
            signal_type: Some("hiring".into()),
            ..LeadFields::default()
        };
        let lead = Lead::new("req_C_0001".into(), "cmp_C".into(), None, fields, ctx.now());
        leads::put_many(&*ctx.store, "ws_c", std::slice::from_ref(&lead)).await.unwrap();
        meter.take();
        let mut reply = event(EventType::Reply, None);
        reply.source = EventSource::Instantly;
        record(&ctx, "ws_c", &lead.id, reply).await.unwrap();
        let units = meter.take();
        assert_eq!(
            (units.write, units.breakdown()),
            (20.0, "CNT 4, FEVT 2, INS 10, LEAD 2, gsi1 1, gsi4 1".to_owned())
        );
        record(&ctx, "ws_c", &lead.id, event(EventType::Open, None)).await.unwrap();
        meter.take();
        record(&ctx, "ws_c", &lead.id, event(EventType::Open, None)).await.unwrap();
        assert_eq!(meter.take().breakdown(), "FEVT 1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_changes_announce_save_lead_and_only_to_a_workspace_that_listens() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let lead = Lead::new("req_S_0001".into(), "cmp_S".into(), None, LeadFields::default(), ctx.now());
        leads::put_many(&*ctx.store, "ws_s", std::slice::from_ref(&lead)).await.unwrap();

        // No endpoint listens: the change is recorded, and no message is queued for nobody.
        let other = Lead::new("req_S_0002".into(), "cmp_S".into(), None, LeadFields::default(), ctx.now());
        leads::put_many(&*ctx.store, "ws_s", std::slice::from_ref(&other)).await.unwrap();
        let bounce = record(&ctx, "ws_s", &other.id, event(EventType::Bounce, None)).await.unwrap();
        assert!(bounce.mutated_lead);
        assert!(announced(&ctx).await.is_empty(), "no endpoint, no save_lead message");
        crate::testing::save_lead_endpoint(&ctx, "ws_s", "CRM", "https://crm.example.com/hook").await;

        let open = record(&ctx, "ws_s", &lead.id, event(EventType::Open, None)).await.unwrap();
        assert!(!open.mutated_lead);
        assert!(announced(&ctx).await.is_empty(), "an open changes nothing, so nothing is announced");

        let reply = record(&ctx, "ws_s", &lead.id, event(EventType::Reply, Some("r1"))).await.unwrap();
        assert!(reply.mutated_lead);
        assert_eq!(announced(&ctx).await, std::slice::from_ref(&lead.id));

        // A retry answers the same and announces again (save_lead is at-least-once).
        let again = record(&ctx, "ws_s", &lead.id, event(EventType::Reply, Some("r1"))).await.unwrap();
        assert_eq!(again, reply);
        assert_eq!(announced(&ctx).await, std::slice::from_ref(&lead.id));

        // The same id for a different event is refused.
        let err = record(&ctx, "ws_s", &lead.id, event(EventType::Bounce, Some("r1"))).await.unwrap_err();
        assert_eq!(crate::api::error::ApiError::from(err).code(), "duplicate_idempotency_key");

        let err = record(&ctx, "ws_s", "req_S_0404", event(EventType::Reply, None)).await.unwrap_err();
        assert_eq!(crate::api::error::ApiError::from(err).code(), "lead_not_found");
    }

    /// Once this process has seen a lead's markers for some kinds, later events of those
    /// kinds read the lead alone: with marker reads failing, they still succeed, while a
    /// process that has not seen them (a new context on the same store) reads them and
    /// fails. The lead still counts once per kind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn markers_seen_once_are_not_read_again_and_a_lead_still_counts_once() {
        use crate::repo::insights::Dimension;
        use crate::store::faulty::{Fault, FaultyStore, Op, Rule};

        let (mut ctx, _dir) = crate::testing::embedded_context();
        let lead = Lead::new("req_K_0001".into(), "cmp_K".into(), None, LeadFields::default(), ctx.now());
        leads::put_many(&*ctx.store, "ws_k", std::slice::from_ref(&lead)).await.unwrap();
        record(&ctx, "ws_k", &lead.id, event(EventType::Reply, None)).await.unwrap();

        let faulty = Arc::new(FaultyStore::new(ctx.store.clone()));
        faulty.add(Rule::new(Op::BatchGet, Fault::Timeout).on_keys_containing("CNT#").times(100));
        ctx.store = faulty;
        let again = record(&ctx, "ws_k", &lead.id, event(EventType::Reply, None)).await.unwrap();
        assert!(again.accepted && again.stored_event);

        let fresh = AppContext { known_markers: Arc::default(), ..ctx.clone() };
        let err = record(&fresh, "ws_k", &lead.id, event(EventType::Reply, None)).await.unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");

        let page = insights::list(&*ctx.store, "ws_k", Dimension::Campaign, 10, None).await.unwrap();
        let replied: Vec<i64> = page.items.iter().map(|group| group.counter("replied")).collect();
        assert_eq!(replied, [1], "{:?}", page.items);
    }
}
