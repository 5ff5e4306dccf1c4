//! What produces better outcomes: counters per position, company, signal type, source or
//! campaign, maintained as events arrive (`repo::insights`), so a read costs O(groups).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::ApiCaller;
use super::docs::{ErrorBody, ListOf};
use crate::context::AppContext;
use crate::domain::feedback::OutcomeKind;
use crate::error::ApiError;
use crate::http::{List, Pagination, Params};
use crate::repo::insights::{self, Dimension};
use crate::store::Item;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::new().routes(routes!(get_insights))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InsightsQuery {
    /// `position`, `company`, `signal_type`, `source` or `campaign`.
    group_by: Option<String>,
    /// Page size, 1 to 100 (default 50).
    limit: Option<usize>,
    /// `next_cursor` from the previous page.
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
}

fn rate(count: i64, pushed: i64) -> Option<f64> {
    (pushed > 0).then(|| (count as f64 / pushed as f64 * 10_000.0).round() / 10_000.0)
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
        }
    }
}

/// Outcome counts and rates per group, in group order.
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
    let valid = || Dimension::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ");
    let dimension = match query.group_by.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        None => return Err(ApiError::validation("group_by", format!("is required; use one of {}", valid()))),
        Some(text) => Dimension::parse(text).ok_or_else(|| {
            ApiError::validation("group_by", format!("`{text}` is not a grouping; use one of {}", valid()))
        })?,
    };
    let page = Pagination { limit: query.limit, cursor: query.cursor };
    let found = insights::list(&*ctx.store, &caller.workspace_id, dimension, page.limit()?, page.cursor()?).await?;
    List::from_page(found, |item| Ok(InsightGroup::from_item(dimension, &item)))
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
}
