//! Honest rates: a proportion with its 95% interval, and the sample size below which a
//! group's rate says too little to compare it with others.

use serde::{Deserialize, Serialize};

/// The normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Below this many exposures (pushed leads) a group is marked `insufficient_data`: even a
/// 10% rate's 95% interval then spans more than 0.04 to 0.25, too wide to rank groups by.
pub const MIN_SAMPLE: i64 = 30;

/// A 95% interval of a rate, rounded to 4 decimals like the rate itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `successes / trials`, 4 decimals; `None` without trials.
pub fn rate(successes: i64, trials: i64) -> Option<f64> {
    (trials > 0).then(|| round4(successes as f64 / trials as f64))
}

/// The Wilson score interval (95%) of `successes` in `trials`. Unlike the normal
/// approximation it stays within [0, 1] and is not empty at 0 or `trials` successes, which
/// is what small groups have. `None` without trials; counts are clamped to `0..=trials`.
pub fn wilson(successes: i64, trials: i64) -> Option<Interval> {
    if trials <= 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes.clamp(0, trials) as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval { low: round4((centre - half).max(0.0)), high: round4((centre + half).min(1.0)) })
}

/// Whether `trials` exposures are too few to compare a group's rates with others'.
pub fn insufficient(trials: i64) -> bool {
    trials < MIN_SAMPLE
}

/// The area under the ROC curve of `scores` for `labels`: the probability that a random
/// positive scores above a random negative (ties count half). `None` without both a
/// positive and a negative.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, l)| *l).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann-Whitney: the positives' rank sum, tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|s| s.0 == sorted[i].0).count() + i;
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values_and_stays_in_bounds() {
        // 10 of 100: the textbook Wilson interval is [0.0552, 0.1744].
        assert_eq!(wilson(10, 100), Some(Interval { low: 0.0552, high: 0.1744 }));
        // 0 of 10 and 10 of 10 are not degenerate.
        assert_eq!(wilson(0, 10), Some(Interval { low: 0.0, high: 0.2775 }));
        assert_eq!(wilson(10, 10), Some(Interval { low: 0.7225, high: 1.0 }));
        assert_eq!(wilson(1, 0), None);
        // More successes than trials (counters written apart) are clamped, not a panic.
        assert_eq!(wilson(12, 10), wilson(10, 10));
    }

    #[test]
    fn auc_counts_ordered_pairs_and_ties_half() {
        assert_eq!(auc(&[(0.9, true), (0.1, false)]), Some(1.0));
        assert_eq!(auc(&[(0.1, true), (0.9, false)]), Some(0.0));
        assert_eq!(auc(&[(0.5, true), (0.5, false)]), Some(0.5));
        // Pairs: (0.8 > 0.3) yes, (0.8 > 0.6) yes, (0.4 > 0.3) yes, (0.4 > 0.6) no: 3 of 4.
        assert_eq!(auc(&[(0.8, true), (0.4, true), (0.3, false), (0.6, false)]), Some(0.75));
        assert_eq!(auc(&[(0.8, true)]), None);
    }

    #[test]
    fn intervals_narrow_with_the_sample_and_small_groups_are_insufficient() {
        let width = |k, n| wilson(k, n).map(|i| i.high - i.low).unwrap();
        assert!(width(3, 30) > width(30, 300) && width(30, 300) > width(300, 3000));
        assert!(insufficient(0) && insufficient(MIN_SAMPLE - 1) && !insufficient(MIN_SAMPLE));
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(1, 0), None);
    }
}
