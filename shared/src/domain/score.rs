//! A learned lead score's explanation: which groups of the lead moved its
//! `predicted_score` away from the workspace's rate, and by how much.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One group of the lead that moved its score, or (with `factor` = `workspace`) why the
/// lead has no score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreReason {
    /// `seniority`, `department`, `company`, `signal_type` or `campaign`; `workspace` for
    /// the reason a lead has no score.
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
