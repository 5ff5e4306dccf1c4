//! A lead as the model sees it: its groups (seniority and department as the finders
//! classify its title, company, signal type, campaign, the channel it was pushed through)
//! and, once pushed, its outcome.

use super::model::{Example, Features};
use crate::domain::lead::{Feedback, Lead};
use crate::enrich::find::roles;
use crate::repo::insights::{normalize_channel, normalize_group};
use crate::support::time::Timestamp;

/// The lead's group in each factor of [`super::model::Factor::ALL`].
pub fn features(lead: &Lead) -> Features {
    let title = lead.position.as_deref().unwrap_or_default();
    Features([
        roles::seniority(title).unwrap_or_default().to_owned(),
        roles::department(title).unwrap_or_default().to_owned(),
        normalize_group(lead.company.as_deref()),
        normalize_group(lead.signal_type.as_deref()),
        lead.campaign_id.clone(),
        lead.pushed_via.as_deref().map(normalize_channel).unwrap_or_default(),
    ])
}

/// Whether the lead was exposed (pushed, or an outcome came back for it from an outreach
/// tool it reached another way) and, if so, whether the outcome was positive: a positive
/// reply or a booked meeting, as insights count them.
pub fn outcome(lead: &Lead) -> Option<bool> {
    let positive = lead.feedback == Some(Feedback::Positive) || lead.meeting_booked_at.is_some();
    let exposed = lead.pushed_at.is_some() || lead.replied_at.is_some() || lead.feedback.is_some() || positive;
    exposed.then_some(positive)
}

/// When the lead was exposed, for the time-split backtest: its first push as recorded
/// (`pushed_at` is the latest push), else its first outcome.
pub fn exposed_at(lead: &Lead) -> Option<Timestamp> {
    [lead.pushed_at, lead.replied_at, lead.feedback_at, lead.meeting_booked_at].into_iter().flatten().min()
}

/// The training example of a pushed lead; `None` for a lead not pushed yet.
pub fn example(lead: &Lead) -> Option<Example> {
    outcome(lead).map(|positive| Example { features: features(lead), positive })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lead::LeadFields;

    #[test]
    fn features_classify_the_title_and_normalise_groups() {
        let fields = LeadFields {
            position: Some("VP of Sales".into()),
            company: Some("  ACME  Corp ".into()),
            signal_type: Some("Hiring".into()),
            ..LeadFields::default()
        };
        let mut lead = Lead::new("lead_1".into(), "cmp_1".into(), None, fields, Timestamp::now());
        assert_eq!(features(&lead).0, ["executive", "sales", "acme corp", "hiring", "cmp_1", ""].map(String::from));
        assert_eq!(outcome(&lead), None, "not pushed: no example");
        lead.mark_pushed(Timestamp::now(), "instantly");
        assert_eq!(outcome(&lead), Some(false));
        assert_eq!(features(&lead).0[5], "instantly", "the channel of the latest push");
        lead.meeting_booked_at = Some(Timestamp::now());
        assert_eq!(outcome(&lead), Some(true));
        lead.meeting_booked_at = None;
        lead.feedback = Some(Feedback::Negative);
        assert_eq!(outcome(&lead), Some(false));
    }
}
