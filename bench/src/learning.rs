//! Lead score quality: the held-out AUC of `predicted_score` on a workspace with planted
//! effects (`leadpush::learning::planted`), beside a random score (the floor); the note
//! gives the oracle's AUC (the planted probabilities), the ceiling.

use crate::table::Row;

const AREA: &str = "learning";
const SEEDS: [u64; 3] = [1, 2, 3];
const HELD_OUT: usize = 2_000;

pub async fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for outcomes in [500, 2_000] {
        let measured: Vec<_> = SEEDS
            .iter()
            .map(|seed| leadpush::learning::planted::measure(outcomes, HELD_OUT, *seed))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow::anyhow!("a planted workspace drew no positive or no negative"))?;
        let mean = |f: fn(&leadpush::learning::planted::Aucs) -> f64| {
            measured.iter().map(f).sum::<f64>() / measured.len() as f64
        };
        let (model, oracle, random) = (mean(|a| a.model), mean(|a| a.oracle), mean(|a| a.random));
        rows.push(Row::rate(
            AREA,
            format!("held-out AUC at {outcomes} outcomes"),
            model,
            random,
            "AUC",
            format!(
                "floor: random score; ceiling (oracle) {oracle:.3}; mean of {} seeds, {HELD_OUT} held-out leads",
                SEEDS.len()
            ),
        ));
    }
    Ok(rows)
}
