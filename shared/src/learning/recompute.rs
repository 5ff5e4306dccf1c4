//! The queued recomputation of a workspace's scores: read its leads (pages, newest first,
//! at most [`MAX_LEADS`]), fit the model on the pushed ones, backtest it on a time split,
//! write `predicted_score` to the leads whose score moved, and save the model summary.
//!
//! Bounded: it stops starting pages when the invocation's deadline nears, and a new task
//! finishes the writes (it refits, and skips the leads already written, whose score no
//! longer moves). Cost: one query per page of 100 leads, one conditional put per lead whose
//! score moved by at least [`MIN_CHANGE`], and one put per grouping's weekly trends
//! (`trends`).

use std::time::Duration;

use super::features::{self, example, exposed_at};
use super::model::{self, Example, Model, NoModel};
use super::schedule::{self, ScheduleError};
use super::trends;
use crate::context::AppContext;
use crate::domain::lead::Lead;
use crate::domain::score::{Backtest, FactorSummary, ModelStatus, ModelSummary, ScoreReason, Trends};
use crate::domain::stats::auc;
use crate::queue::{Task, TaskError};
use crate::repo::leads::{self, LeadFilter};
use crate::repo::scores;
use crate::store::StoreError;
use crate::support::deadline;
use crate::support::time::Timestamp;

/// Leads read per page.
const PAGE: usize = 100;
/// Most leads one recomputation reads (the newest): about 40 MB of leads at most in memory.
pub const MAX_LEADS: usize = 20_000;
/// What a page of reads or writes may take, for the deadline check.
const PAGE_BUDGET: Duration = Duration::from_secs(5);
/// A stored score is rewritten when it moves by at least this much (or its reasons name
/// other groups): smaller moves are not worth a write per lead.
pub const MIN_CHANGE: f64 = 0.005;
/// The backtest trains on the earliest 80% of pushed leads.
const TRAIN_SHARE: f64 = 0.8;
/// Fewer pushed leads than this give no backtest.
const MIN_BACKTEST: usize = 20;

/// What a recomputation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescored {
    pub summary: ModelSummary,
    /// False: the deadline stopped the writes and a new task was queued for the rest.
    pub finished: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

impl From<RescoreError> for TaskError {
    fn from(e: RescoreError) -> Self {
        match e {
            RescoreError::Store(e) => e.into(),
            RescoreError::Schedule(ScheduleError::Store(e)) => e.into(),
            RescoreError::Schedule(ScheduleError::Queue(e)) => e.into(),
        }
    }
}

/// The score and reasons a lead gets from `fitted` (or, without a model, none and why).
fn scored(fitted: &Result<Model, NoModel>, lead: &Lead) -> (Option<f64>, Vec<ScoreReason>) {
    match fitted {
        Ok(model) => {
            let score = model.score(&features::features(lead));
            (Some(score.predicted_score), score.reasons)
        }
        Err(why) => (None, vec![why.reason()]),
    }
}

/// Which groups the reasons name, and in which direction.
fn reason_groups(reasons: &[ScoreReason]) -> Vec<(&str, Option<&str>, bool)> {
    reasons.iter().map(|r| (r.factor.as_str(), r.group.as_deref(), r.effect > 0.0)).collect()
}

/// Sets the lead's score if it moved enough to be worth a write; true if it did. A lead
/// already scored by a later recomputation (one that started after `now`, running
/// alongside this one) keeps its newer score.
pub fn apply(fitted: &Result<Model, NoModel>, lead: &mut Lead, now: Timestamp) -> bool {
    if lead.scored_at.is_some_and(|at| at > now) {
        return false;
    }
    let (score, reasons) = scored(fitted, lead);
    let moved = match (lead.predicted_score, score) {
        (Some(old), Some(new)) => (old - new).abs() >= MIN_CHANGE,
        (old, new) => old.is_some() != new.is_some(),
    };
    if !moved && reason_groups(&lead.score_reasons) == reason_groups(&reasons) {
        return false;
    }
    lead.predicted_score = score;
    lead.score_reasons = reasons;
    lead.scored_at = Some(now);
    true
}

/// How long a recomputation holds its workspace's lease at most (a Lambda's longest run);
/// a lease left by a crash expires then.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// When another recomputation of the workspace is running, this one is retried after this.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// Refits the workspace's model and writes its leads' scores; `None` when another
/// recomputation of the workspace is running (this one is queued again for after it).
pub async fn run(ctx: &AppContext, workspace_id: &str) -> Result<Option<Rescored>, RescoreError> {
    let store = &*ctx.store;
    let now = ctx.now();
    if !scores::acquire_lease(store, workspace_id, now, now.plus(LEASE)).await? {
        // Sent again as is: the queued marker (still set for this task) keeps standing for it.
        let task = Task::Rescore { workspace_id: workspace_id.to_owned() };
        ctx.queue
            .send(vec![task.delayed(BUSY_RETRY.max(ctx.config.rescore_debounce))])
            .await
            .map_err(ScheduleError::from)?;
        return Ok(None);
    }
    let result = rescore(ctx, workspace_id, now).await;
    scores::release_lease(store, workspace_id).await?;
    result.map(Some)
}

async fn rescore(ctx: &AppContext, workspace_id: &str, now: Timestamp) -> Result<Rescored, RescoreError> {
    let store = &*ctx.store;
    // From here on, new outcomes queue another recomputation: none is lost.
    scores::clear_pending(store, workspace_id).await?;
    let (mut read, mut cursor, mut complete) = (Vec::new(), None, false);
    // Reading leaves time for at least a page of writes, so every run makes progress.
    while read.len() < MAX_LEADS && deadline::allows(PAGE_BUDGET * 2) {
        let page = leads::list(store, workspace_id, &LeadFilter::default(), PAGE, cursor).await?;
        for item in &page.items {
            read.push((item.parse::<Lead>()?, item.version));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => {
                complete = true;
                break;
            }
        }
    }
    if read.is_empty() && !complete {
        // No time left even for one page: try again in a new task rather than report an
        // empty workspace.
        schedule::queue_rescore(ctx, workspace_id, Duration::ZERO).await?;
        return Ok(Rescored { summary: ModelSummary::never_fitted(), finished: false });
    }
    let mut history: Vec<(Timestamp, Example)> =
        read.iter().filter_map(|(lead, _)| Some((exposed_at(lead)?, example(lead)?))).collect();
    history.sort_by_key(|(at, _)| *at);
    let examples: Vec<Example> = history.iter().map(|(_, e)| e.clone()).collect();
    let fitted = model::fit(&examples);

    // Each dimension's weekly rates, from the leads read anyway (nothing on the write path).
    let weekly_trends: Vec<Trends> = trends::DIMENSIONS
        .iter()
        .map(|dimension| Trends {
            group_by: dimension.as_str().to_owned(),
            groups: trends::weekly(read.iter().map(|(lead, _)| lead), *dimension, now),
            updated_at: Some(now),
            complete,
        })
        .collect();
    let leads_read = read.len();
    let changed: Vec<(Lead, u64)> = read
        .into_iter()
        .filter_map(|(mut lead, version)| apply(&fitted, &mut lead, now).then_some((lead, version)))
        .collect();
    let (mut rescored, mut finished) = (0, true);
    for (n, batch) in changed.chunks(PAGE).enumerate() {
        // The first page is always written: a run that only read would be repeated forever.
        if n > 0 && !deadline::allows(PAGE_BUDGET) {
            finished = false;
            break;
        }
        rescored += scores::write_scores(store, workspace_id, batch, |lead| apply(&fitted, lead, now)).await?;
    }
    // The trends before the summary: once the summary shows this run, its trends are there.
    for trends in &weekly_trends {
        scores::save_trends(store, workspace_id, trends).await?;
    }
    let summary = summarize(&fitted, backtest(&history), leads_read, rescored, complete, now);
    scores::save_summary_if_newer(store, workspace_id, &summary).await?;
    if !finished {
        // Queued with no delay: it waits for this one's lease to go at most `BUSY_RETRY`.
        schedule::queue_rescore(ctx, workspace_id, Duration::ZERO).await?;
    }
    tracing::info!(leads_rescored = rescored, finished, "lead scores recomputed");
    Ok(Rescored { summary, finished })
}

fn summarize(
    fitted: &Result<Model, NoModel>,
    backtest: Backtest,
    leads_read: usize,
    rescored: usize,
    complete: bool,
    now: Timestamp,
) -> ModelSummary {
    let (status, reason, exposed, positive, base_rate, factors) = match fitted {
        Ok(model) => (
            ModelStatus::Ready,
            None,
            model.totals.exposed,
            model.totals.positive,
            Some((model.base_rate * 10_000.0).round() / 10_000.0),
            model
                .factors
                .iter()
                .map(|f| FactorSummary {
                    factor: f.factor.as_str().to_owned(),
                    groups: f.groups.len() as i64,
                    prior_strength: f.prior_strength.round(),
                })
                .collect(),
        ),
        Err(why) => (ModelStatus::NoModel, Some(why.0.clone()), 0, 0, None, Vec::new()),
    };
    ModelSummary {
        status,
        reason,
        exposed,
        positive,
        base_rate,
        factors,
        backtest,
        leads_read: leads_read as i64,
        complete,
        leads_rescored: rescored as i64,
        updated_at: Some(now),
    }
}

/// Fits on the earliest 80% of pushed leads (by when they were exposed) and ranks the rest.
pub fn backtest(history: &[(Timestamp, Example)]) -> Backtest {
    let split = (history.len() as f64 * TRAIN_SHARE).floor() as usize;
    let (train, test) = history.split_at(split);
    let mut result = Backtest {
        auc: None,
        reason: None,
        train_size: train.len() as i64,
        test_size: test.len() as i64,
        test_positive: test.iter().filter(|(_, e)| e.positive).count() as i64,
        split_at: test.first().map(|(at, _)| *at),
    };
    if history.len() < MIN_BACKTEST {
        result.reason = Some(format!("fewer than {MIN_BACKTEST} pushed leads: {}", history.len()));
        return result;
    }
    let examples: Vec<Example> = train.iter().map(|(_, e)| e.clone()).collect();
    match model::fit(&examples) {
        Err(why) => result.reason = Some(format!("the earliest {}: {}", train.len(), why.0)),
        Ok(model) => {
            let ranked: Vec<(f64, bool)> =
                test.iter().map(|(_, e)| (model.score(&e.features).predicted_score, e.positive)).collect();
            result.auc = auc(&ranked).map(|a| (a * 10_000.0).round() / 10_000.0);
            if result.auc.is_none() {
                result.reason = Some("the latest pushed leads are all positive or all negative so far".into());
            }
        }
    }
    result
}

#[cfg(all(test, feature = "embedded"))]
#[path = "recompute_tests.rs"]
mod tests;
