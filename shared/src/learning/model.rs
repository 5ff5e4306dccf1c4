//! The lead score model, pure (no I/O): from pushed leads and their outcomes, the
//! probability that a lead gets a positive outcome once pushed.
//!
//! Each factor (seniority, department, company, signal type, campaign) is an
//! empirical-Bayes Beta-binomial: a group's rate is shrunk toward the workspace rate `p0`
//! with a prior of strength `m` (pseudo-leads), `m` estimated per factor from how much the
//! groups' rates vary beyond binomial noise (method of moments). A group with few leads
//! stays near `p0`; a factor whose groups do not differ gets a large `m` and moves nothing.
//! The factors combine additively in log-odds around the base rate:
//! `logit(p) = logit(p0) + sum_f (logit(rate_f(group)) - logit(p0))`.
//! Groups never seen, or a lead without a value, add nothing.

use std::collections::HashMap;

use crate::domain::score::ScoreReason;

/// The factors a lead is scored by, in `Features` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Seniority,
    Department,
    Company,
    SignalType,
    Campaign,
    /// The outreach channel of the lead's latest push (`webhook`, `heyreach`, `instantly`).
    Source,
}

impl Factor {
    pub const ALL: [Factor; 6] =
        [Factor::Seniority, Factor::Department, Factor::Company, Factor::SignalType, Factor::Campaign, Factor::Source];

    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Seniority => "seniority",
            Factor::Department => "department",
            Factor::Company => "company",
            Factor::SignalType => "signal_type",
            Factor::Campaign => "campaign",
            Factor::Source => "source",
        }
    }
}

/// A lead's group in each factor, in [`Factor::ALL`] order; empty: no value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features(pub [String; 6]);

/// A pushed lead and whether it had a positive outcome.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    pub positive: bool,
}

/// Prior strength bounds, in pseudo-leads: at least 10 so that a few lucky leads cannot move a
/// group far; at most a million, which is "this factor does not matter".
const MIN_STRENGTH: f64 = 10.0;
const MAX_STRENGTH: f64 = 1e6;
/// Effects smaller than this (log-odds) are not reasons.
const MIN_REASON_EFFECT: f64 = 0.01;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub exposed: i64,
    pub positive: i64,
}

impl Counts {
    fn add(&mut self, positive: bool) {
        self.exposed += 1;
        self.positive += i64::from(positive);
    }
}

/// One factor's fit: its prior strength and each group's counts.
#[derive(Debug, Clone)]
pub struct FactorFit {
    pub factor: Factor,
    /// The Beta prior's strength, in pseudo-leads.
    pub prior_strength: f64,
    pub groups: HashMap<String, Counts>,
}

/// A fitted workspace model.
#[derive(Debug, Clone)]
pub struct Model {
    pub totals: Counts,
    pub base_rate: f64,
    pub factors: Vec<FactorFit>,
}

/// Why a workspace has no model (and its leads no score).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoModel(pub String);

/// A lead's score and what moved it.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub predicted_score: f64,
    pub reasons: Vec<ScoreReason>,
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The Beta prior strength of one factor's groups around `p0`, by the method of moments:
/// the between-group variance `tau2` is the leads-weighted spread of the groups' rates less
/// what binomial noise alone gives, and a Beta with mean `p0` and variance `tau2` has
/// strength `p0 (1 - p0) / tau2 - 1`.
fn prior_strength(groups: &HashMap<String, Counts>, p0: f64, total: i64) -> f64 {
    let spread: f64 = groups
        .values()
        .map(|c| {
            let r = c.positive as f64 / c.exposed as f64;
            c.exposed as f64 * (r - p0).powi(2)
        })
        .sum();
    let noise = (groups.len().saturating_sub(1)) as f64 * p0 * (1.0 - p0);
    let tau2 = (spread - noise) / total as f64;
    if tau2 <= 0.0 {
        return MAX_STRENGTH;
    }
    (p0 * (1.0 - p0) / tau2 - 1.0).clamp(MIN_STRENGTH, MAX_STRENGTH)
}

/// Fits the model on pushed leads. No pushed lead, or none positive or all positive,
/// gives no model: there is nothing to tell leads apart by.
pub fn fit(examples: &[Example]) -> Result<Model, NoModel> {
    let mut totals = Counts::default();
    for e in examples {
        totals.add(e.positive);
    }
    // The messages hold no counts: leads carry them, and should not be rewritten for
    // every new push while the answer stays the same.
    if totals.exposed == 0 {
        return Err(NoModel("no outcomes yet: no lead of this workspace has been pushed".into()));
    }
    if totals.positive == 0 {
        return Err(NoModel(
            "not enough outcomes yet: no pushed lead has had a positive reply or a booked meeting".into(),
        ));
    }
    if totals.positive == totals.exposed {
        return Err(NoModel(
            "not enough outcomes yet: every pushed lead had a positive outcome, so nothing tells them apart".into(),
        ));
    }
    let base_rate = totals.positive as f64 / totals.exposed as f64;
    let factors = Factor::ALL
        .iter()
        .enumerate()
        .map(|(i, factor)| {
            let mut groups: HashMap<String, Counts> = HashMap::new();
            for e in examples {
                groups.entry(e.features.0[i].clone()).or_default().add(e.positive);
            }
            let prior_strength = prior_strength(&groups, base_rate, totals.exposed);
            FactorFit { factor: *factor, prior_strength, groups }
        })
        .collect();
    Ok(Model { totals, base_rate, factors })
}

impl FactorFit {
    /// The shrunk rate of `group` and its effect in log-odds; `None` for a group never seen.
    fn effect(&self, group: &str, p0: f64) -> Option<(Counts, f64, f64)> {
        let counts = *self.groups.get(group)?;
        let m = self.prior_strength;
        let rate = (counts.positive as f64 + m * p0) / (counts.exposed as f64 + m);
        Some((counts, rate, logit(rate) - logit(p0)))
    }
}

impl Model {
    /// The lead's probability of a positive outcome once pushed, with its reasons, largest
    /// effect first.
    pub fn score(&self, features: &Features) -> Score {
        let p0 = self.base_rate;
        let mut total = logit(p0);
        let mut reasons = Vec::new();
        for (fit, group) in self.factors.iter().zip(&features.0) {
            let Some((counts, rate, effect)) = fit.effect(group, p0) else { continue };
            total += effect;
            if effect.abs() < MIN_REASON_EFFECT || group.is_empty() {
                continue;
            }
            let direction = if effect > 0.0 { "raises" } else { "lowers" };
            reasons.push(ScoreReason {
                factor: fit.factor.as_str().to_owned(),
                group: Some(group.clone()),
                effect: round4(effect),
                sample_size: counts.exposed,
                positive: counts.positive,
                rate: Some(round4(rate)),
                message: format!(
                    "{} `{group}`: {} of {} pushed leads positive, {:.1}% after shrinking toward the \
                     workspace's {:.1}%; {direction} the score",
                    fit.factor.as_str(),
                    counts.positive,
                    counts.exposed,
                    rate * 100.0,
                    p0 * 100.0
                ),
            });
        }
        reasons.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
        Score { predicted_score: round4(sigmoid(total)), reasons }
    }
}

impl NoModel {
    /// The one reason a lead without a score carries.
    pub fn reason(&self) -> ScoreReason {
        ScoreReason {
            factor: "workspace".into(),
            group: None,
            effect: 0.0,
            sample_size: 0,
            positive: 0,
            rate: None,
            message: self.0.clone(),
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
