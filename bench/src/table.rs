//! The printed result: each figure beside its floor, the same work without our code in the
//! way, measured in the same run.

pub struct Row {
    pub area: &'static str,
    pub figure: String,
    pub ours: f64,
    pub floor: f64,
    pub unit: &'static str,
    /// For rates, more is better; for times and counts, less.
    pub higher_is_better: bool,
    pub note: String,
}

impl Row {
    pub fn time(
        area: &'static str,
        figure: impl Into<String>,
        ours_ms: f64,
        floor_ms: f64,
        note: impl Into<String>,
    ) -> Row {
        Row {
            area,
            figure: figure.into(),
            ours: ours_ms,
            floor: floor_ms,
            unit: "ms",
            higher_is_better: false,
            note: note.into(),
        }
    }

    pub fn rate(
        area: &'static str,
        figure: impl Into<String>,
        ours: f64,
        floor: f64,
        unit: &'static str,
        note: impl Into<String>,
    ) -> Row {
        Row { area, figure: figure.into(), ours, floor, unit, higher_is_better: true, note: note.into() }
    }

    pub fn count(
        area: &'static str,
        figure: impl Into<String>,
        ours: f64,
        floor: f64,
        unit: &'static str,
        note: impl Into<String>,
    ) -> Row {
        Row { area, figure: figure.into(), ours, floor, unit, higher_is_better: false, note: note.into() }
    }

    /// How far from the floor: 1.0 is the floor itself, 2.0 twice as slow / costly.
    fn overhead(&self) -> f64 {
        if self.higher_is_better {
            self.floor / self.ours.max(f64::EPSILON)
        } else {
            self.ours / self.floor.max(f64::EPSILON)
        }
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 0.1 || v == 0.0 {
        format!("{v:.2}")
    } else {
        // Sub-0.1 figures (microsecond-scale times in ms) keep three significant digits.
        let decimals = (2 - v.log10().floor() as i32).clamp(3, 9) as usize;
        format!("{v:.decimals$}")
    }
}

pub fn print(rows: &[Row]) {
    let header = ["area", "figure", "ours", "floor", "unit", "x floor", "note"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.area.into(),
                r.figure.clone(),
                num(r.ours),
                num(r.floor),
                r.unit.into(),
                format!("{:.2}", r.overhead()),
                r.note.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 7]| {
        let parts: Vec<String> = cols.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("| {} |", parts.join(" | "));
    };
    line(header);
    println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6]]);
    }
    println!("\n`x floor`: our figure relative to the floor (1.00 = no overhead; for rates, floor/ours).");
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn microsecond_figures_keep_their_digits_instead_of_printing_zero() {
        assert_eq!(num(0.0025), "0.00250");
        assert_eq!(num(0.026), "0.0260");
        assert_eq!(num(4.64), "4.64");
        assert_eq!(num(0.0), "0.00");
        assert_eq!(num(552974.0), "552974");
    }
}
