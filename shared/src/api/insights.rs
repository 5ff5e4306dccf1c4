//! What produces better outcomes: counters per position, company, signal type, source or
//! campaign, maintained as events arrive (`repo::insights`), so a read costs O(groups).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::auth::ApiCaller;
use super::docs::{DataOf, ErrorBody, ListOf};
use crate::api::error::ApiError;
use crate::api::json::{Data, List, Pagination, Params};
use crate::context::AppContext;
use crate::domain::feedback::OutcomeKind;
use crate::domain::score::{ModelSummary, Trends};
use crate::domain::stats::{self, Interval, rate, wilson};
use crate::repo::insights::{self, Dimension};
use crate::store::Item;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(get_insights)).routes(routes!(get_model)).routes(routes!(get_trends))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InsightsQuery {
    /// `position`, `company`, `signal_type`, `source` or `campaign`.
    #[param(required = true, value_type = crate::repo::insights::Dimension)]
    group_by: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// `next_cursor` from the previous page of this listing, as given; empty or absent
    /// starts at the first page. A cursor is opaque (base64url) and belongs to its listing
    /// and workspace: any other value is refused with 400 `validation_error` naming `cursor`.
    #[param(pattern = r"^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
}

/// One group's outcomes. Each lead counts at most once per counter.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InsightGroup {
    /// The group: a lower-cased position, company or signal type, a source (`instantly`,
    /// `heyreach`, `webhook`, `manual`, `custom`) or a campaign id; `null` for leads without one.
    key: Option<String>,
    /// Leads pushed to an outreach tool (by destination, for `source`).
    pushed: i64,
    opened: i64,
    clicked: i64,
    /// Leads with a `reply` or `positive_reply`.
    replied: i64,
    /// Leads with a `positive_reply` or `meeting_booked`.
    positive: i64,
    /// Leads with a `bounce`.
    negative: i64,
    /// Leads with a `meeting_booked`.
    meetings: i64,
    /// `replied / pushed` (4 decimals); `null` until leads of the group are pushed.
    reply_rate: Option<f64>,
    /// `positive / pushed`.
    positive_rate: Option<f64>,
    /// `meetings / pushed`.
    meeting_rate: Option<f64>,
    /// The leads the rates rest on: `pushed`.
    sample_size: i64,
    /// Wilson 95% interval of `reply_rate`; `null` until leads of the group are pushed.
    reply_rate_interval: Option<Interval>,
    /// Wilson 95% interval of `positive_rate`.
    positive_rate_interval: Option<Interval>,
    /// Wilson 95% interval of `meeting_rate`.
    meeting_rate_interval: Option<Interval>,
    /// Fewer than 30 pushed leads: the rates are too uncertain to compare this group with
    /// others (the intervals show how much); rank only groups where this is `false`.
    insufficient_data: bool,
}

impl InsightGroup {
    fn from_item(dimension: Dimension, item: &Item) -> Self {
        let n = |kind: OutcomeKind| item.counter(kind.as_str());
        let pushed = n(OutcomeKind::Pushed);
        InsightGroup {
            key: insights::group_of(dimension, item),
            pushed,
            opened: n(OutcomeKind::Opened),
            clicked: n(OutcomeKind::Clicked),
            replied: n(OutcomeKind::Replied),
            positive: n(OutcomeKind::Positive),
            negative: n(OutcomeKind::Negative),
            meetings: n(OutcomeKind::Meetings),
            reply_rate: rate(n(OutcomeKind::Replied), pushed),
            positive_rate: rate(n(OutcomeKind::Positive), pushed),
            meeting_rate: rate(n(OutcomeKind::Meetings), pushed),
            sample_size: pushed,
            reply_rate_interval: wilson(n(OutcomeKind::Replied), pushed),
            positive_rate_interval: wilson(n(OutcomeKind::Positive), pushed),
            meeting_rate_interval: wilson(n(OutcomeKind::Meetings), pushed),
            insufficient_data: stats::insufficient(pushed),
        }
    }
}

/// The `group_by` parameter: required, one of the dimensions.
fn grouping(text: Option<&str>) -> Result<Dimension, ApiError> {
    let valid = || Dimension::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ");
    match text.map(str::trim).filter(|g| !g.is_empty()) {
        None => Err(ApiError::validation("group_by", format!("is required; use one of {}", valid()))),
        Some(text) => Dimension::parse(text).ok_or_else(|| {
            ApiError::validation("group_by", format!("`{text}` is not a grouping; use one of {}", valid()))
        }),
    }
}

/// Outcome counts and rates per group, in group order, each rate with its Wilson 95%
/// interval and the sample it rests on; groups with fewer than 30 pushed leads are marked
/// `insufficient_data` (not to be ranked).
///
/// `source` is the outreach channel: an event's `source`, or the push destination for
/// `pushed`; the other groupings use the lead's own fields.
#[utoipa::path(get, path = "/api/v1/insights", tag = "insights", security(("api_key" = [])), params(InsightsQuery),
    responses((status = 200, body = ListOf<InsightGroup>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn get_insights(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(query): Params<InsightsQuery>,
) -> Result<List<InsightGroup>, ApiError> {
    let dimension = grouping(query.group_by.as_deref())?;
    let page = Pagination { limit: query.limit, cursor: query.cursor };
    let found = insights::list(&*ctx.store, &caller.workspace_id, dimension, page.limit()?, page.cursor()?).await?;
    List::from_page(found, |item| Ok(InsightGroup::from_item(dimension, &item)))
}

/// The workspace's lead score model: how many pushed leads and positive outcomes it
/// learned from, each factor's groups and prior strength, its AUC on a time-split backtest
/// of the workspace's own history, and when it was last fitted. Before any outcome,
/// `status` is `no_model` and `reason` says why.
#[utoipa::path(get, path = "/api/v1/insights/model", tag = "insights", security(("api_key" = [])),
    responses((status = 200, body = DataOf<ModelSummary>), (status = 401, body = ErrorBody)))]
async fn get_model(State(ctx): State<AppContext>, caller: ApiCaller) -> Result<Data<ModelSummary>, ApiError> {
    let summary = crate::repo::scores::summary(&*ctx.store, &caller.workspace_id).await?;
    Ok(Data(summary.unwrap_or_else(ModelSummary::never_fitted)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendsQuery {
    /// `position`, `company`, `signal_type`, `source` (the channel of a lead's latest push)
    /// or `campaign`.
    #[param(required = true, value_type = crate::repo::insights::Dimension)]
    group_by: Option<String>,
}

/// Weekly outcome rates of a grouping's most exposed groups (at most 20) over the last 12
/// weeks, for a chart of whether a group's rate is moving. Leads count in the week they
/// were first exposed (pushed, or first heard back from); each week gives its reply and
/// positive rates so far with their Wilson 95% intervals (the latest weeks' leads have had
/// less time to answer). Computed with the lead scores after outcome events arrive
/// (`updated_at`); before the first, `groups` is empty and `updated_at` null. `source`
/// groups leads by the channel of their latest push.
#[utoipa::path(get, path = "/api/v1/insights/trends", tag = "insights", security(("api_key" = [])), params(TrendsQuery),
    responses((status = 200, body = DataOf<Trends>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn get_trends(
    State(ctx): State<AppContext>,
    caller: ApiCaller,
    Params(query): Params<TrendsQuery>,
) -> Result<Data<Trends>, ApiError> {
    let group_by = grouping(query.group_by.as_deref())?;
    let stored = crate::repo::scores::trends(&*ctx.store, &caller.workspace_id, group_by.as_str()).await?;
    Ok(Data(stored.unwrap_or_else(|| Trends {
        group_by: group_by.as_str().to_owned(),
        groups: Vec::new(),
        updated_at: None,
        complete: false,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_null_until_pushed_and_rounded() {
        assert_eq!(rate(1, 0), None);
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(2, 2), Some(1.0));
    }

    #[cfg(feature = "embedded")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushed_leads_and_their_outcomes_give_rates() {
        use crate::domain::feedback::{EventSource, EventType};
        use crate::domain::lead::{Lead, LeadFields};
        use crate::feedback::{NewEvent, record};
        use crate::repo::leads;

        let (ctx, _dir) = crate::testing::embedded_context();
        let store = &*ctx.store;
        let now = ctx.now();
        let leads: Vec<Lead> = (1..=4)
            .map(|n| {
                let fields =
                    LeadFields { name: Some(format!("L{n}")), position: Some("CTO".into()), ..LeadFields::default() };
                Lead::new(format!("req_R_{n:04}"), "cmp_R".into(), None, fields, now)
            })
            .collect();
        leads::put_many(store, "ws_r", &leads).await.unwrap();
        insights::record_pushed(store, "ws_r", "instantly", &leads).await.unwrap();
        let event = |event_type, at: &str| NewEvent {
            event_type,
            source: EventSource::Instantly,
            content: None,
            meeting_url: None,
            occurred_at: crate::support::time::Timestamp::parse(at).unwrap(),
            metadata: None,
            event_id: None,
            payload_hash: String::new(),
        };
        // Lead 1 replies twice and books a meeting; lead 2 replies positively; lead 3 bounces.
        for (lead, event_type, at) in [
            (1, EventType::Reply, "2026-05-02T10:00:00Z"),
            (1, EventType::Reply, "2026-05-02T11:00:00Z"),
            (1, EventType::MeetingBooked, "2026-05-02T12:00:00Z"),
            (2, EventType::PositiveReply, "2026-05-02T10:00:00Z"),
            (3, EventType::Bounce, "2026-05-02T10:00:00Z"),
            (3, EventType::Open, "2026-05-02T09:00:00Z"),
        ] {
            record(&ctx, "ws_r", &format!("req_R_{lead:04}"), event(event_type, at)).await.unwrap();
        }
        for dimension in [Dimension::Position, Dimension::Source, Dimension::Campaign] {
            let page = insights::list(store, "ws_r", dimension, 10, None).await.unwrap();
            let groups: Vec<InsightGroup> = page.items.iter().map(|i| InsightGroup::from_item(dimension, i)).collect();
            assert_eq!(groups.len(), 1, "{dimension:?}: {groups:?}");
            let g = &groups[0];
            let counts = (g.pushed, g.opened, g.clicked, g.replied, g.positive, g.negative, g.meetings);
            assert_eq!(counts, (4, 1, 0, 2, 2, 1, 1), "{dimension:?}");
            assert_eq!((g.reply_rate, g.positive_rate, g.meeting_rate), (Some(0.5), Some(0.5), Some(0.25)));
            assert_eq!((g.sample_size, g.insufficient_data), (4, true));
            assert_eq!(g.reply_rate_interval, wilson(2, 4));
            assert_eq!(g.meeting_rate_interval, wilson(1, 4));
        }
    }
}
