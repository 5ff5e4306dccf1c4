//! A workspace with planted effects, to measure how well the model ranks leads: some
//! seniorities, departments, companies, signal types and campaigns reply more, by known
//! log-odds, so each lead's true probability (the oracle) is known. Used by the
//! correctness test and `make bench`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::features;
use super::model::{self, Example};
use crate::domain::lead::{Lead, LeadFields};
use crate::domain::stats::auc;
use crate::support::time::Timestamp;

/// Title words by seniority and department (as `enrich::find::roles` classifies them),
/// with their planted effects in log-odds.
const SENIORITY: [(&str, f64); 3] = [("Junior", -0.6), ("Senior", 0.0), ("VP", 0.7)];
const DEPARTMENT: [(&str, f64); 6] = [
    ("Sales", 0.8),
    ("Marketing", 0.3),
    ("Engineering", 0.0),
    ("Finance", -0.3),
    ("Operations", -0.6),
    ("Design", 0.0),
];
const SIGNALS: [(&str, f64); 5] =
    [("funding", 0.9), ("hiring", 0.3), ("expansion", 0.0), ("news", -0.4), ("job_change", -0.8)];
const CAMPAIGNS: [(&str, f64); 3] = [("cmp_a", 0.2), ("cmp_b", 0.0), ("cmp_c", -0.2)];
const COMPANIES: usize = 150;
/// The workspace's log-odds before effects: about 10% positive.
const BASE: f64 = -2.2;

/// A planted lead: the lead, its true probability of a positive outcome and a drawn outcome.
pub struct PlantedLead {
    pub lead: Lead,
    pub probability: f64,
    pub positive: bool,
}

/// `count` leads with planted effects, reproducible from `seed`.
pub fn workspace(count: usize, seed: u64) -> Vec<PlantedLead> {
    let mut rng = StdRng::seed_from_u64(seed);
    let companies: Vec<f64> = (0..COMPANIES).map(|_| rng.random_range(-0.8..0.8)).collect();
    let now = Timestamp::now();
    (0..count)
        .map(|n| {
            let (seniority, s) = SENIORITY[rng.random_range(0..SENIORITY.len())];
            let (department, d) = DEPARTMENT[rng.random_range(0..DEPARTMENT.len())];
            let company = rng.random_range(0..COMPANIES);
            let (signal, g) = SIGNALS[rng.random_range(0..SIGNALS.len())];
            let (campaign, c) = CAMPAIGNS[rng.random_range(0..CAMPAIGNS.len())];
            let probability = 1.0 / (1.0 + (-(BASE + s + d + companies[company] + g + c)).exp());
            let fields = LeadFields {
                name: Some(format!("Lead {n}")),
                position: Some(format!("{seniority} {department}")),
                company: Some(format!("Company {company}")),
                signal_type: Some(signal.to_owned()),
                ..LeadFields::default()
            };
            let mut lead = Lead::new(format!("lead_{n:05}"), campaign.to_owned(), None, fields, now);
            lead.mark_pushed(now, "webhook");
            PlantedLead { lead, probability, positive: rng.random_bool(probability) }
        })
        .collect()
}

/// AUCs on held-out leads: the model's, the oracle's (the planted probabilities, the
/// ceiling) and a random score's (the floor).
#[derive(Debug, Clone, Copy)]
pub struct Aucs {
    pub model: f64,
    pub oracle: f64,
    pub random: f64,
    pub outcomes: usize,
    pub held_out: usize,
}

/// Fits on the outcomes of the first `outcomes` leads of a planted workspace and scores
/// the next `held_out`; `None` if the draw left no positive or no negative to learn from
/// or to rank.
pub fn measure(outcomes: usize, held_out: usize, seed: u64) -> Option<Aucs> {
    let leads = workspace(outcomes + held_out, seed);
    let (train, test) = leads.split_at(outcomes);
    let examples: Vec<Example> =
        train.iter().map(|p| Example { features: features::features(&p.lead), positive: p.positive }).collect();
    let fitted = model::fit(&examples).ok()?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let auc_of = |scores: Vec<f64>| auc(&scores.into_iter().zip(test.iter().map(|p| p.positive)).collect::<Vec<_>>());
    Some(Aucs {
        model: auc_of(test.iter().map(|p| fitted.score(&features::features(&p.lead)).predicted_score).collect())?,
        oracle: auc_of(test.iter().map(|p| p.probability).collect())?,
        random: auc_of(test.iter().map(|_| rng.random()).collect())?,
        outcomes,
        held_out,
    })
}
