//! A learned lead score's explanation: which groups of the lead moved its
//! `predicted_score` away from the workspace's rate, and by how much.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One group of the lead that moved its score, or (with `factor` = `workspace`) why the
/// lead has no score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreReason {
    /// `seniority`, `department`, `company`, `signal_type`, `campaign` or `source` (the
    /// channel of the lead's latest push); `workspace` for the reason a lead has no score.
    pub factor: String,
    /// The lead's group in that factor (`null`: the lead has no value for it).
    pub group: Option<String>,
    /// How far this group moved the score, in log-odds (positive raises it).
    pub effect: f64,
    /// Pushed leads of this group the estimate rests on.
    pub sample_size: i64,
    /// Of those, leads with a positive reply or a booked meeting.
    pub positive: i64,
    /// The group's rate after shrinking toward the workspace rate by its evidence.
    pub rate: Option<f64>,
    /// The same, for a person.
    pub message: String,
}

/// A workspace's score model, as `GET /api/v1/insights/model` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelSummary {
    /// `ready`: leads are scored; `no_model`: not enough outcomes yet (`reason` says why).
    pub status: ModelStatus,
    /// Why there is no model, for `no_model`.
    pub reason: Option<String>,
    /// Pushed leads the model learned from.
    pub exposed: i64,
    /// Of those, leads with a positive reply or a booked meeting.
    pub positive: i64,
    /// `positive / exposed`: every score is shrunk toward it.
    pub base_rate: Option<f64>,
    /// Per factor: how many groups it has and the strength of its prior (in pseudo-leads:
    /// a group needs about this many pushed leads before its own rate weighs as much as
    /// the workspace's; very large means the factor's groups do not differ).
    pub factors: Vec<FactorSummary>,
    /// The model's ranking quality on the workspace's own history.
    pub backtest: Backtest,
    /// Leads read to fit the model (all of the workspace's when `complete`).
    pub leads_read: i64,
    /// Whether every lead was read (false: the newest `leads_read` were).
    pub complete: bool,
    /// Leads whose stored score this computation changed.
    pub leads_rescored: i64,
    /// When the model was last fitted; `null`: never (no outcome yet).
    pub updated_at: Option<crate::support::time::Timestamp>,
}

impl ModelSummary {
    /// A workspace whose model was never fitted: no outcome event has changed a lead yet.
    pub fn never_fitted() -> Self {
        ModelSummary {
            status: ModelStatus::NoModel,
            reason: Some("no outcomes yet: scores are learned once outcome events arrive for pushed leads".into()),
            exposed: 0,
            positive: 0,
            base_rate: None,
            factors: Vec::new(),
            backtest: Backtest {
                auc: None,
                reason: Some("no outcomes yet".into()),
                train_size: 0,
                test_size: 0,
                test_positive: 0,
                split_at: None,
            },
            leads_read: 0,
            complete: false,
            leads_rescored: 0,
            updated_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    Ready,
    NoModel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FactorSummary {
    /// `seniority`, `department`, `company`, `signal_type`, `campaign` or `source`.
    pub factor: String,
    pub groups: i64,
    pub prior_strength: f64,
}

/// A time-split backtest: the model fitted on the earlier pushed leads (by when they were
/// pushed) ranks the later ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Backtest {
    /// AUC on the later leads: the chance that a positive lead scores above a negative one
    /// (0.5 is a random score); `null` when `reason` says it cannot be measured yet.
    pub auc: Option<f64>,
    /// Why `auc` is `null`.
    pub reason: Option<String>,
    /// Pushed leads fitted on (the earliest 80%) and ranked (the latest 20%).
    pub train_size: i64,
    pub test_size: i64,
    /// Positive leads among the ranked ones.
    pub test_positive: i64,
    /// Where the split fell: leads pushed before this trained the model.
    pub split_at: Option<crate::support::time::Timestamp>,
}

/// One week of a group's trend: its leads first exposed that week, and how many of them
/// replied and turned positive so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendWeek {
    /// The week's Monday (UTC), `YYYY-MM-DD`.
    pub week: String,
    /// Leads of the group first exposed (pushed, or first heard back from) that week.
    pub exposed: i64,
    /// Of those, leads that replied.
    pub replied: i64,
    /// Of those, leads with a positive reply or a booked meeting.
    pub positive: i64,
    /// `replied / exposed` (4 decimals); `null` for a week without leads.
    pub reply_rate: Option<f64>,
    /// Its Wilson 95% interval (wide for a week of few leads, and for the latest weeks,
    /// whose leads have had less time to answer).
    pub reply_rate_interval: Option<crate::domain::stats::Interval>,
    pub positive_rate: Option<f64>,
    pub positive_rate_interval: Option<crate::domain::stats::Interval>,
}

/// A group's weekly trend, oldest week first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupTrend {
    /// The group, named as insights name it; `null` for leads without a value.
    pub key: Option<String>,
    /// Leads of the group exposed over these weeks.
    pub exposed: i64,
    pub weeks: Vec<TrendWeek>,
}

/// The weekly trends of one `group_by` dimension, as `GET /api/v1/insights/trends` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Trends {
    /// `position`, `company`, `signal_type`, `source` or `campaign`.
    pub group_by: String,
    /// The most exposed groups over the weeks (at most 20), most exposed first.
    pub groups: Vec<GroupTrend>,
    /// When the trends were computed (with the lead scores, after outcome events); `null`:
    /// not yet (no outcome event has changed a lead).
    pub updated_at: Option<crate::support::time::Timestamp>,
    /// Whether every lead was read (false: the newest the recomputation reads were).
    pub complete: bool,
}
