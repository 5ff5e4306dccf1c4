use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::domain::feedback::{EventSource, EventType};
use crate::domain::lead::LeadFields;
use crate::feedback::{NewEvent, record};
use crate::queue::Task;
use crate::store::{Condition, Item, Key, Page, Query, Store, WriteOp};
use crate::testing::{drain_tasks, on_both_stores};

/// Counts store calls by kind, passing them through.
struct Counting {
    inner: Arc<dyn Store>,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

impl Counting {
    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
    }

    fn take(&self) -> BTreeMap<&'static str, usize> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.count("get");
        self.inner.get(key).await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.count("batch_get");
        self.inner.batch_get(keys).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.count("put");
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> Result<(), StoreError> {
        self.count("delete");
        self.inner.delete(key, condition).await
    }
    async fn increment(&self, key: &Key, counters: &[(String, i64)]) -> Result<(), StoreError> {
        self.count("increment");
        self.inner.increment(key, counters).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.count("query");
        self.inner.query(query).await
    }
    async fn add_and_read(&self, key: &Key, counter: &str, by: i64, expires_at: i64) -> Result<i64, StoreError> {
        self.count("add_and_read");
        self.inner.add_and_read(key, counter, by, expires_at).await
    }
    async fn transact_write(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.count("transact_write");
        self.inner.transact_write(ops).await
    }
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.count("batch_put");
        self.inner.batch_put(items).await
    }
    async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        self.count("batch_delete");
        self.inner.batch_delete(keys).await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

fn lead(n: usize, position: &str, company: &str, pushed: bool) -> Lead {
    let fields = LeadFields {
        name: Some(format!("L{n}")),
        position: Some(position.into()),
        company: Some(company.into()),
        signal_type: Some("hiring".into()),
        ..LeadFields::default()
    };
    let at = Timestamp::parse("2026-05-01T00:00:00Z").unwrap();
    let mut lead = Lead::new(format!("req_SC_{n:04}"), "cmp_sc".into(), None, fields, at);
    if pushed {
        lead.mark_pushed(at.plus(Duration::from_secs(n as u64 * 60)), "webhook");
    }
    lead
}

fn event(event_type: EventType) -> NewEvent {
    NewEvent {
        event_type,
        source: EventSource::Instantly,
        content: None,
        meeting_url: None,
        occurred_at: Timestamp::parse("2026-05-03T10:00:00Z").unwrap(),
        metadata: None,
        event_id: None,
        payload_hash: String::new(),
    }
}

/// 40 pushed VP Sales leads at Acme (16 answer positively) and 40 pushed junior
/// accountants at Globex (2 do), plus one of each not pushed yet. The outcomes arrive
/// through the feedback path; one recomputation is queued for all of them; it scores the
/// unpushed VP above the unpushed junior, says why, and a second run writes nothing.
async fn outcomes_queue_one_recomputation_that_scores_leads_by_their_groups(ctx: AppContext) {
    let ws = "ws_score";
    let mut all: Vec<Lead> = (0..40).map(|n| lead(n, "VP Sales", "Acme", true)).collect();
    all.extend((40..80).map(|n| lead(n, "Junior Accountant", "Globex", true)));
    all.push(lead(80, "VP of Sales", "Acme", false));
    all.push(lead(81, "Junior Accountant", "Globex", false));
    leads::put_many(&*ctx.store, ws, &all).await.unwrap();
    assert!(scores::summary(&*ctx.store, ws).await.unwrap().is_none(), "no model before any outcome");

    let counting = Arc::new(Counting { inner: ctx.store.clone(), calls: Mutex::default() });
    let mut counted = ctx.clone();
    counted.store = counting.clone();
    // Queued without the debounce's delay, so the test can see the task.
    let mut config = (*ctx.config).clone();
    config.rescore_debounce = Duration::ZERO;
    counted.config = Arc::new(config);
    let positives: Vec<usize> = (0..16).chain([40, 41]).collect();
    let mut scheduling = BTreeMap::new();
    for n in &positives {
        let result = record(&ctx, ws, &all[*n].id, event(EventType::PositiveReply)).await.unwrap();
        schedule::outcome_arrived(&counted, ws, result.event_type, result.mutated_lead).await;
        for (op, calls) in counting.take() {
            *scheduling.entry(op).or_insert(0) += calls;
        }
    }
    // Opens change no outcome: nothing is read or queued for them.
    let open = record(&ctx, ws, &all[50].id, event(EventType::Open)).await.unwrap();
    schedule::outcome_arrived(&counted, ws, open.event_type, open.mutated_lead).await;
    assert!(counting.take().is_empty());
    // 18 events: one read each, one marker write for the first (the queue holds the rest).
    assert_eq!(scheduling, BTreeMap::from([("get", 18), ("put", 1)]), "store calls of 18 outcome events");
    let tasks = drain_tasks(&ctx).await;
    assert_eq!(tasks, vec![Task::Rescore { workspace_id: ws.into() }], "one recomputation for the burst");

    let done = run(&counted, ws).await.unwrap().unwrap();
    let cost = counting.take();
    assert!(done.finished);
    let summary = &done.summary;
    assert_eq!((summary.status, summary.exposed, summary.positive), (ModelStatus::Ready, 80, 18));
    assert_eq!((summary.leads_read, summary.complete, summary.leads_rescored), (82, true, 82));
    assert_eq!(scores::summary(&*ctx.store, ws).await.unwrap().as_ref(), Some(summary));
    // The backtest trains on the 64 earliest pushes and ranks the 16 latest.
    assert_eq!((summary.backtest.train_size, summary.backtest.test_size), (64, 16));
    // 82 leads: one conditional put each (no transaction, which would bill each twice);
    // the lease (put, delete), the queued marker (delete), the summary (get, put) and the
    // five groupings' trends (put each).
    assert_eq!(cost.get("transact_write"), None, "{cost:?}");
    assert_eq!((cost.get("delete"), cost.get("put")), (Some(&2), Some(&(82 + 7))), "{cost:?}");

    let vp = leads::get(&*ctx.store, ws, &all[80].id).await.unwrap().unwrap();
    let junior = leads::get(&*ctx.store, ws, &all[81].id).await.unwrap().unwrap();
    let (vp_score, junior_score) = (vp.predicted_score.unwrap(), junior.predicted_score.unwrap());
    assert!(vp_score > 0.25 && junior_score < 0.1, "vp {vp_score}, junior {junior_score}");
    assert!(vp.scored_at.is_some() && vp.score.is_none(), "the sender's own score is untouched");
    let factors: Vec<&str> = vp.score_reasons.iter().map(|r| r.factor.as_str()).collect();
    assert!(factors.contains(&"seniority") && factors.contains(&"company"), "{factors:?}");
    assert!(vp.score_reasons.iter().all(|r| r.effect > 0.0), "{:?}", vp.score_reasons);
    assert!(junior.score_reasons.iter().all(|r| r.effect < 0.0), "{:?}", junior.score_reasons);

    // Nothing changed: the second run writes no lead.
    let again = run(&ctx, ws).await.unwrap().unwrap();
    assert_eq!(again.summary.leads_rescored, 0);
}

on_both_stores!(outcomes_queue_one_recomputation_that_scores_leads_by_their_groups =>
    outcomes_queue_one_recomputation_embedded, outcomes_queue_one_recomputation_dynamodb);

/// A recomputation saves each grouping's weekly rates from the leads it read: leads count
/// in the week they were pushed, with what came back from them so far.
async fn a_recomputation_saves_each_groupings_weekly_rates(ctx: AppContext) {
    let ws = "ws_trends";
    let now = ctx.now();
    let weeks_ago = |n: u64| Timestamp::from_unix_millis(now.unix_millis() - (n * 7 * 86_400_000) as i64).unwrap();
    let mut all: Vec<Lead> = (0..6).map(|n| lead(n, "CTO", "Acme", false)).collect();
    for (n, lead) in all.iter_mut().enumerate() {
        lead.mark_pushed(weeks_ago(if n < 4 { 3 } else { 1 }), "webhook");
    }
    leads::put_many(&*ctx.store, ws, &all).await.unwrap();
    for n in [0, 4] {
        let positive = NewEvent { occurred_at: now, ..event(EventType::PositiveReply) };
        record(&ctx, ws, &all[n].id, positive).await.unwrap();
    }
    assert!(scores::trends(&*ctx.store, ws, "position").await.unwrap().is_none(), "none before a recomputation");
    run(&ctx, ws).await.unwrap().unwrap();
    let position = scores::trends(&*ctx.store, ws, "position").await.unwrap().unwrap();
    assert!(position.updated_at.is_some_and(|at| at >= now), "{position:?}");
    assert_eq!((position.complete, position.groups.len()), (true, 1));
    let cto = &position.groups[0];
    assert_eq!((cto.key.as_deref(), cto.exposed, cto.weeks.len()), (Some("cto"), 6, trends::WEEKS));
    let weeks: Vec<(&str, i64, i64, i64)> = cto
        .weeks
        .iter()
        .filter(|w| w.exposed > 0)
        .map(|w| (w.week.as_str(), w.exposed, w.replied, w.positive))
        .collect();
    let (three, one) = (trends::week_of(weeks_ago(3)), trends::week_of(weeks_ago(1)));
    assert_eq!(weeks, [(three.as_str(), 4, 1, 1), (one.as_str(), 2, 1, 1)]);
    for group_by in ["company", "signal_type", "campaign", "source"] {
        let saved = scores::trends(&*ctx.store, ws, group_by).await.unwrap().unwrap();
        assert_eq!((saved.groups.len(), saved.groups[0].exposed), (1, 6), "{group_by}");
    }
    let source = scores::trends(&*ctx.store, ws, "source").await.unwrap().unwrap();
    assert_eq!(source.groups[0].key.as_deref(), Some("webhook"), "the channel of the latest push");
}

on_both_stores!(a_recomputation_saves_each_groupings_weekly_rates =>
    trends_are_saved_embedded, trends_are_saved_dynamodb);

/// Only bounces so far: no model, and each lead says why rather than carrying a made-up score.
async fn without_a_positive_outcome_leads_get_no_score_and_the_reason(ctx: AppContext) {
    let ws = "ws_noscore";
    let all: Vec<Lead> = (0..5).map(|n| lead(n, "CTO", "Initech", true)).collect();
    leads::put_many(&*ctx.store, ws, &all).await.unwrap();
    record(&ctx, ws, &all[0].id, event(EventType::Bounce)).await.unwrap();
    let done = run(&ctx, ws).await.unwrap().unwrap();
    assert_eq!(done.summary.status, ModelStatus::NoModel);
    let reason = done.summary.reason.clone().unwrap();
    assert!(reason.contains("no pushed lead has had a positive reply"), "{reason}");
    assert_eq!(done.summary.backtest.auc, None);
    let stored = leads::get(&*ctx.store, ws, &all[3].id).await.unwrap().unwrap();
    assert_eq!(stored.predicted_score, None);
    assert_eq!(stored.score_reasons.len(), 1);
    assert_eq!((stored.score_reasons[0].factor.as_str(), &stored.score_reasons[0].message), ("workspace", &reason));
    assert_eq!(run(&ctx, ws).await.unwrap().unwrap().summary.leads_rescored, 0, "the reason is written once");
}

on_both_stores!(without_a_positive_outcome_leads_get_no_score_and_the_reason =>
    without_outcomes_no_score_embedded, without_outcomes_no_score_dynamodb);

/// Two recomputations of a workspace never overlap: the second waits for the lease and is
/// queued again, rather than racing the first with an older or newer model.
async fn a_recomputation_waits_for_one_already_running(mut ctx: AppContext) {
    let ws = "ws_lease";
    let mut config = (*ctx.config).clone();
    config.rescore_debounce = Duration::ZERO;
    ctx.config = Arc::new(config);
    let now = ctx.now();
    assert!(scores::acquire_lease(&*ctx.store, ws, now, now.plus(Duration::from_secs(60))).await.unwrap());
    assert!(run(&ctx, ws).await.unwrap().is_none(), "the lease is held");
    // Sent again, delayed: visible within a few seconds.
    let again = ctx.queue.receive(10, Duration::from_secs(10)).await.unwrap();
    let bodies: Vec<Task> = again.iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(bodies, vec![Task::Rescore { workspace_id: ws.into() }]);
    scores::release_lease(&*ctx.store, ws).await.unwrap();
    assert!(run(&ctx, ws).await.unwrap().is_some());
    // A lease left by a crashed run expires.
    let past = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
    assert!(scores::acquire_lease(&*ctx.store, ws, past, past.plus(Duration::from_secs(60))).await.unwrap());
    assert!(run(&ctx, ws).await.unwrap().is_some(), "an expired lease does not block");
}

/// A run left no time at all reads nothing, writes nothing, keeps the saved summary and
/// queues itself again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recomputation_without_time_left_is_queued_again_and_reports_nothing() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let ws = "ws_late";
    leads::put_many(&*ctx.store, ws, &[lead(1, "CTO", "Acme", true)]).await.unwrap();
    let at = std::time::Instant::now();
    let done = deadline::within_reserving(at, Duration::ZERO, run(&ctx, ws)).await.unwrap().unwrap();
    assert!(!done.finished);
    assert!(scores::summary(&*ctx.store, ws).await.unwrap().is_none(), "no empty summary saved");
    assert!(scores::is_pending(&*ctx.store, ws, ctx.now()).await.unwrap(), "queued again");
}

on_both_stores!(a_recomputation_waits_for_one_already_running =>
    one_recomputation_at_a_time_embedded, one_recomputation_at_a_time_dynamodb);

/// A feedback event that lands between the read and the write is kept, and the lead still
/// gets its score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_write_that_loses_a_race_keeps_the_other_write_and_a_newer_score() {
    let (ctx, _dir) = crate::testing::embedded_context();
    let ws = "ws_race";
    let all: Vec<Lead> = (0..30).map(|n| lead(n, if n < 15 { "VP Sales" } else { "Intern" }, "Acme", true)).collect();
    leads::put_many(&*ctx.store, ws, &all).await.unwrap();
    for lead in &all[..6] {
        record(&ctx, ws, &lead.id, event(EventType::MeetingBooked)).await.unwrap();
    }
    let stale: Vec<(Lead, u64)> = {
        let ids: Vec<String> = all.iter().map(|l| l.id.clone()).collect();
        leads::get_many_versioned(&*ctx.store, ws, &ids).await.unwrap()
    };
    let replied = &stale.iter().find(|(l, _)| l.id == all[20].id).unwrap().0;
    record(&ctx, ws, &replied.id, event(EventType::Reply)).await.unwrap();
    let fitted = model::fit(&stale.iter().filter_map(|(l, _)| example(l)).collect::<Vec<_>>());
    let now = ctx.now();
    let mut changed = stale.clone();
    for (lead, _) in &mut changed {
        apply(&fitted, lead, now);
    }
    let written = scores::write_scores(&*ctx.store, ws, &changed, |l| apply(&fitted, l, now)).await.unwrap();
    assert_eq!(written, 30);
    let mut after = leads::get(&*ctx.store, ws, &all[20].id).await.unwrap().unwrap();
    assert!(after.replied_at.is_some(), "the reply written meanwhile is kept");
    assert!(after.predicted_score.is_some());
    // A recomputation that started earlier (and runs late) does not overwrite it.
    let earlier = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
    let stale = model::fit(&[]);
    assert!(!apply(&stale, &mut after, earlier));
    assert!(after.predicted_score.is_some());
}
