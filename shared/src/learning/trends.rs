//! Weekly outcome rates per group, for a chart of whether a group's rate is moving: leads
//! are grouped by the week they were first exposed (pushed, or first heard back from), and
//! each week reports how many of that week's leads replied and turned positive so far. The
//! recomputation builds them from the leads it reads anyway; nothing is added to the write
//! path of events.
//!
//! A recent week's leads have had less time to answer, so its rates only rise later: the
//! chart shows each week's interval, and the newest weeks are wide.

use std::collections::{BTreeMap, HashMap};

use super::features::{exposed_at, outcome};
use crate::domain::lead::Lead;
use crate::domain::score::{GroupTrend, TrendWeek};
use crate::domain::stats::{rate, wilson};
use crate::repo::insights::{Dimension, normalize_channel, normalize_group};
use crate::support::time::Timestamp;

/// The dimensions with trends: every insights dimension (`source`: the channel of a lead's
/// latest push).
pub const DIMENSIONS: [Dimension; 5] = Dimension::ALL;

/// Weeks kept per group, newest last.
pub const WEEKS: usize = 12;
/// Groups kept per dimension: the most exposed in those weeks.
pub const TOP_GROUPS: usize = 20;

const DAY_SECONDS: i64 = 86_400;

/// The Monday (UTC) of the week `at` falls in, as `YYYY-MM-DD`.
pub fn week_of(at: Timestamp) -> String {
    let days = at.unix_seconds().div_euclid(DAY_SECONDS);
    // 1970-01-01 was a Thursday: three days after a Monday.
    let monday = days - (days + 3).rem_euclid(7);
    Timestamp::from_unix_millis(monday * DAY_SECONDS * 1000)
        .map(|t| t.datetime().format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The `WEEKS` week starts up to `now`'s week, oldest first.
pub fn weeks_until(now: Timestamp) -> Vec<String> {
    (0..WEEKS as i64)
        .rev()
        .map(|back| {
            week_of(Timestamp::from_unix_millis(now.unix_millis() - back * 7 * DAY_SECONDS * 1000).unwrap_or(now))
        })
        .collect()
}

/// A lead's group in `dimension`, as insights name it (`None`: no value; `source` is the
/// channel of the lead's latest push).
fn group(lead: &Lead, dimension: Dimension) -> Option<Option<String>> {
    let text = |value: Option<&str>| Some(Some(normalize_group(value)).filter(|g| !g.is_empty()));
    match dimension {
        Dimension::Position => text(lead.position.as_deref()),
        Dimension::Company => text(lead.company.as_deref()),
        Dimension::SignalType => text(lead.signal_type.as_deref()),
        Dimension::Campaign => Some(Some(lead.campaign_id.clone())),
        Dimension::Source => Some(lead.pushed_via.as_deref().map(normalize_channel)),
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    exposed: i64,
    replied: i64,
    positive: i64,
}

/// The weekly trends of `dimension`'s most exposed groups over the `WEEKS` weeks to `now`.
pub fn weekly<'a>(leads: impl IntoIterator<Item = &'a Lead>, dimension: Dimension, now: Timestamp) -> Vec<GroupTrend> {
    let weeks = weeks_until(now);
    let column: HashMap<&str, usize> = weeks.iter().enumerate().map(|(i, w)| (w.as_str(), i)).collect();
    let mut groups: BTreeMap<Option<String>, Vec<Counts>> = BTreeMap::new();
    for lead in leads {
        let (Some(at), Some(positive), Some(key)) = (exposed_at(lead), outcome(lead), group(lead, dimension)) else {
            continue;
        };
        let Some(&i) = column.get(week_of(at).as_str()) else { continue };
        let counts = &mut groups.entry(key).or_insert_with(|| vec![Counts::default(); WEEKS])[i];
        counts.exposed += 1;
        counts.replied += i64::from(lead.replied_at.is_some());
        counts.positive += i64::from(positive);
    }
    let mut trends: Vec<GroupTrend> = groups
        .into_iter()
        .map(|(key, counts)| GroupTrend {
            key,
            exposed: counts.iter().map(|c| c.exposed).sum(),
            weeks: weeks
                .iter()
                .zip(counts)
                .map(|(week, c)| TrendWeek {
                    week: week.clone(),
                    exposed: c.exposed,
                    replied: c.replied,
                    positive: c.positive,
                    reply_rate: rate(c.replied, c.exposed),
                    reply_rate_interval: wilson(c.replied, c.exposed),
                    positive_rate: rate(c.positive, c.exposed),
                    positive_rate_interval: wilson(c.positive, c.exposed),
                })
                .collect(),
        })
        .collect();
    // The most exposed first (ties by key, so the order is stable).
    trends.sort_by(|a, b| b.exposed.cmp(&a.exposed).then_with(|| a.key.cmp(&b.key)));
    trends.truncate(TOP_GROUPS);
    trends
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::{Feedback, LeadFields};

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn weeks_start_on_monday_utc() {
        assert_eq!(week_of(at("2026-12-06T23:59:59Z")), "2026-11-30", "a Sunday belongs to the Monday before");
        assert_eq!(week_of(at("2026-11-30T00:00:00Z")), "2026-11-30");
        assert_eq!(week_of(at("1970-01-01T00:00:00Z")), "1969-12-29");
        let weeks = weeks_until(at("2026-12-06T12:00:00Z"));
        assert_eq!((weeks.len(), weeks[0].as_str(), weeks[WEEKS - 1].as_str()), (WEEKS, "2026-09-14", "2026-11-30"));
    }

    /// Four CTOs pushed two weeks ago (one replied, positively) and two this week (both
    /// replied, one positive); a VP pushed this week; a CTO never pushed, and one pushed
    /// before the window, count nowhere.
    #[test]
    fn each_week_counts_the_leads_first_exposed_in_it() {
        let now = at("2026-12-06T12:00:00Z");
        let lead = |n: usize, title: &str, pushed: Option<&str>, replied: bool, positive: bool| {
            let fields = LeadFields { position: Some(title.into()), ..LeadFields::default() };
            let mut lead = Lead::new(format!("req_T_{n:04}"), "cmp_T".into(), None, fields, now);
            lead.pushed_at = pushed.map(at);
            lead.pushed_via = pushed.map(|_| if n == 7 { "heyreach" } else { "instantly" }.to_owned());
            lead.replied_at = replied.then_some(now);
            lead.feedback = positive.then_some(Feedback::Positive);
            lead
        };
        let two_weeks_ago = "2026-11-18T10:00:00Z";
        let this_week = "2026-12-01T10:00:00Z";
        let leads = vec![
            lead(1, "CTO", Some(two_weeks_ago), true, true),
            lead(2, "cto", Some(two_weeks_ago), false, false),
            lead(3, "CTO ", Some(two_weeks_ago), false, false),
            lead(4, "CTO", Some(two_weeks_ago), false, false),
            lead(5, "CTO", Some(this_week), true, true),
            lead(6, "CTO", Some(this_week), true, false),
            lead(7, "VP Sales", Some(this_week), false, false),
            lead(8, "CTO", None, false, false),
            lead(9, "CTO", Some("2025-01-06T10:00:00Z"), true, true),
        ];
        let trends = weekly(&leads, Dimension::Position, now);
        let keys: Vec<Option<&str>> = trends.iter().map(|t| t.key.as_deref()).collect();
        assert_eq!(keys, [Some("cto"), Some("vp sales")]);
        let cto = &trends[0];
        assert_eq!(cto.exposed, 6);
        let by_week: Vec<(&str, i64, i64, i64)> = cto
            .weeks
            .iter()
            .filter(|w| w.exposed > 0)
            .map(|w| (w.week.as_str(), w.exposed, w.replied, w.positive))
            .collect();
        assert_eq!(by_week, [("2026-11-16", 4, 1, 1), ("2026-11-30", 2, 2, 1)]);
        let last = &cto.weeks[WEEKS - 1];
        assert_eq!((last.reply_rate, last.positive_rate), (Some(1.0), Some(0.5)));
        assert_eq!(last.reply_rate_interval, wilson(2, 2));
        assert!(cto.weeks[0].reply_rate.is_none() && cto.weeks[0].reply_rate_interval.is_none(), "no leads: no rate");
        let by_channel: Vec<(Option<String>, i64)> =
            weekly(&leads, Dimension::Source, now).into_iter().map(|t| (t.key, t.exposed)).collect();
        let expected = [(Some("instantly".to_owned()), 6), (Some("heyreach".to_owned()), 1)];
        assert_eq!(by_channel, expected, "by the channel of the latest push");
    }
}
