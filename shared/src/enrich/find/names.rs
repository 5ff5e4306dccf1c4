//! People's names as mailbox parts, and the corporate address patterns built from them.
//!
//! Names are transliterated to ASCII (`José Müller` -> `jose`, `muller`), apostrophes are
//! dropped (`O'Brien` -> `obrien`), hyphenated parts are joined (`Jean-Luc` -> `jeanluc`, with
//! `jean-luc` as a variant) and multi-part surnames are joined (`van der Berg` ->
//! `vanderberg`, with the last part `berg` as a variant; `García Márquez` -> `garciamarquez`,
//! with `garcia` as a variant).

use deunicode::deunicode;

/// Titles and suffixes that are not part of a mailbox name.
const TITLES: [&str; 12] = ["mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "mx", "herr", "frau", "dame"];
const SUFFIXES: [&str; 10] = ["jr", "sr", "ii", "iii", "iv", "phd", "md", "mba", "esq", "cpa"];

/// A person's name reduced to the lower-case ASCII tokens addresses are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailName {
    /// The given name as shown (`José`), for answers.
    pub first_display: String,
    pub last_display: String,
    /// Mailbox forms, best first; never empty.
    pub first: Vec<String>,
    pub last: Vec<String>,
}

impl MailName {
    /// From separate parts. `None` when either part has no letters left after normalising.
    pub fn new(first: &str, last: &str) -> Option<Self> {
        let first_words = words(first);
        let last_words = words(last);
        let first_forms = forms(&first_words, false);
        let last_forms = forms(&last_words, true);
        if first_forms.is_empty() || last_forms.is_empty() {
            return None;
        }
        Some(Self {
            first_display: first_words.join(" "),
            last_display: last_words.join(" "),
            first: first_forms,
            last: last_forms,
        })
    }

    /// From a full name: titles and suffixes dropped, the first word is the given name and
    /// the rest the surname (`Jean-Luc van der Berg`). Needs at least two words.
    pub fn from_full(full: &str) -> Option<Self> {
        let kept: Vec<&str> = full
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .filter(|w| {
                let bare = deunicode(w).to_lowercase().replace('.', "");
                !TITLES.contains(&bare.as_str()) && !SUFFIXES.contains(&bare.as_str())
            })
            .collect();
        let (first, rest) = kept.split_first()?;
        if rest.is_empty() {
            return None;
        }
        Self::new(first, &rest.join(" "))
    }

    /// The best mailbox form of each part, e.g. for `{first}.{last}`.
    pub fn first(&self) -> &str {
        &self.first[0]
    }

    pub fn last(&self) -> &str {
        &self.last[0]
    }
}

/// Words of a name part, trimmed of punctuation other than hyphens and apostrophes.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’' && c != '-').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// One word as a mailbox token: ASCII, lower case, letters and digits only (hyphens kept
/// only when `keep_hyphens`).
fn token(word: &str, keep_hyphens: bool) -> String {
    deunicode(word)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || (keep_hyphens && *c == '-'))
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

/// The mailbox forms of a name part, best first: all words joined; then, when a word was
/// hyphenated, the hyphenated form; then, for a multi-word surname, its last word after
/// particles (`van der Berg` -> `berg`) or its first word otherwise (`García Márquez` ->
/// `garcia`).
fn forms(words: &[String], surname: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |form: String| {
        if !form.is_empty() && form.chars().any(|c| c.is_ascii_alphabetic()) && !out.contains(&form) {
            out.push(form);
        }
    };
    push(words.iter().map(|w| token(w, false)).collect());
    push(words.iter().map(|w| token(w, true)).collect::<Vec<_>>().join(""));
    if surname && words.len() > 1 {
        let particles = ["van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "dos", "das"];
        let has_particle = words.iter().any(|w| particles.contains(&token(w, false).as_str()));
        let pick = if has_particle { words.last() } else { words.first() };
        if let Some(word) = pick {
            push(token(word, false));
        }
    }
    out
}

/// The address patterns we try, in Hunter's notation, with how common each is among
/// corporate domains (our prior when a domain's own addresses say nothing).
pub const PATTERNS: [(&str, u32); 16] = [
    ("{first}.{last}", 40),
    ("{f}{last}", 20),
    ("{first}", 9),
    ("{first}{last}", 7),
    ("{f}.{last}", 5),
    ("{first}_{last}", 3),
    ("{first}{l}", 3),
    ("{last}.{first}", 2),
    ("{last}", 2),
    ("{first}-{last}", 2),
    ("{f}{l}", 2),
    ("{last}{f}", 1),
    ("{last}{first}", 1),
    ("{first}.{l}", 1),
    ("{last}_{first}", 1),
    ("{f}_{last}", 1),
];

/// Renders a pattern with the given mailbox tokens.
pub fn render(pattern: &str, first: &str, last: &str) -> String {
    let initial = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    pattern
        .replace("{first}", first)
        .replace("{last}", last)
        .replace("{f}", &initial(first))
        .replace("{l}", &initial(last))
}

/// Whether a pattern name is one of ours.
pub fn is_pattern(pattern: &str) -> bool {
    PATTERNS.iter().any(|(p, _)| *p == pattern)
}

/// The pattern an address's local part follows for this name, if any (the most common
/// pattern wins where several render the same, e.g. `{first}` and `{first}{l}` never do).
pub fn pattern_of(local: &str, name: &MailName) -> Option<&'static str> {
    let local = local.to_ascii_lowercase();
    for (pattern, _) in PATTERNS {
        for first in &name.first {
            for last in &name.last {
                if render(pattern, first, last) == local {
                    return Some(pattern);
                }
            }
        }
    }
    None
}

/// What a domain's known personal addresses say about its pattern.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternStats {
    /// Pattern -> how many known addresses follow it, most followed first.
    pub counts: Vec<(&'static str, u32)>,
    /// Known addresses with a name that follow none of the patterns.
    pub unmatched: u32,
}

impl PatternStats {
    /// Tallies (local part, name) pairs.
    pub fn tally<'a>(known: impl IntoIterator<Item = (&'a str, &'a MailName)>) -> Self {
        let mut stats = Self::default();
        for (local, name) in known {
            match pattern_of(local, name) {
                Some(pattern) => match stats.counts.iter_mut().find(|(p, _)| *p == pattern) {
                    Some((_, n)) => *n += 1,
                    None => stats.counts.push((pattern, 1)),
                },
                None => stats.unmatched += 1,
            }
        }
        // Ties go to the more common pattern overall, so the answer is stable.
        stats.counts.sort_by_key(|(p, n)| (std::cmp::Reverse(*n), prior_rank(p)));
        stats
    }

    /// These stats plus stored `(pattern, count)` pairs (unknown pattern names are dropped).
    pub fn with_counts(mut self, counts: &[(String, u32)], unmatched: u32) -> Self {
        for (name, n) in counts {
            let Some((pattern, _)) = PATTERNS.iter().find(|(p, _)| p == name) else { continue };
            match self.counts.iter_mut().find(|(p, _)| p == pattern) {
                Some((_, count)) => *count += n,
                None => self.counts.push((pattern, *n)),
            }
        }
        self.unmatched += unmatched;
        self.counts.sort_by_key(|(p, n)| (std::cmp::Reverse(*n), prior_rank(p)));
        self
    }

    /// The domain's pattern: the most followed one, if any address follows one.
    pub fn pattern(&self) -> Option<&'static str> {
        self.counts.first().map(|(p, _)| *p)
    }

    pub fn total(&self) -> u32 {
        self.counts.iter().map(|(_, n)| n).sum::<u32>() + self.unmatched
    }
}

fn prior_rank(pattern: &str) -> usize {
    PATTERNS.iter().position(|(p, _)| *p == pattern).unwrap_or(PATTERNS.len())
}

/// One candidate address with the pattern it follows and its pattern score (0-100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub local: String,
    pub pattern: &'static str,
    /// How likely this is the address from patterns alone (before any verification).
    pub score: u8,
}

/// The candidates for a name, best first, at most `max`.
///
/// Scores: when the domain's known addresses follow a pattern, its candidate scores
/// 50 + 40 × (share of known addresses that follow it), 90 at most, and the others share
/// what is left by their prior; with no known addresses every candidate scores its prior
/// share of 50. Variant name forms (hyphenated, one surname word) score half.
pub fn candidates(name: &MailName, stats: &PatternStats, max: usize) -> Vec<Candidate> {
    let total = stats.total();
    let mut scored: Vec<(f64, usize, Candidate)> = Vec::new();
    let prior_sum: u32 = PATTERNS.iter().map(|(_, w)| w).sum();
    for (rank, (pattern, prior)) in PATTERNS.iter().enumerate() {
        let followed = stats.counts.iter().find(|(p, _)| p == pattern).map_or(0, |(_, n)| *n);
        let base = if total > 0 && followed > 0 {
            (50.0 + 40.0 * f64::from(followed) / f64::from(total)).min(90.0)
        } else if total > 0 {
            // Known addresses follow other patterns: this one is unlikely.
            20.0 * f64::from(*prior) / f64::from(prior_sum)
        } else {
            50.0 * f64::from(*prior) / f64::from(prior_sum) + 5.0
        };
        for (fi, first) in name.first.iter().enumerate() {
            for (li, last) in name.last.iter().enumerate() {
                let variant = fi > 0 || li > 0;
                let score = if variant { base / 2.0 } else { base };
                let local = render(pattern, first, last);
                if scored.iter().any(|(_, _, c)| c.local == local) {
                    continue;
                }
                scored.push((score, rank * 16 + fi * 4 + li, Candidate { local, pattern, score: score.round() as u8 }));
            }
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(max).map(|(_, _, c)| c).collect()
}

/// Splits a local part like `jane.doe` into display names, when it clearly is one (two
/// alphabetic words joined by `.`, `_` or `-`).
pub fn guess_name(local: &str) -> Option<(String, String)> {
    let (a, b) = local.split_once(['.', '_', '-'])?;
    let word = |w: &str| w.len() >= 2 && w.chars().all(|c| c.is_ascii_alphabetic());
    if !word(a) || !word(b) {
        return None;
    }
    let title = |w: &str| {
        let mut chars = w.chars();
        chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
    };
    Some((title(a), title(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(first: &str, last: &str) -> MailName {
        MailName::new(first, last).unwrap()
    }

    #[test]
    fn diacritics_apostrophes_hyphens_and_particles_normalise() {
        let jose = name("José", "Müller");
        assert_eq!((jose.first(), jose.last()), ("jose", "muller"));
        assert_eq!(render("{first}.{last}", jose.first(), jose.last()), "jose.muller");
        let obrien = name("Seán", "O'Brien");
        assert_eq!((obrien.first(), obrien.last()), ("sean", "obrien"));
        assert_eq!(name("Jean-Luc", "Picard").first, vec!["jeanluc", "jean-luc"]);
        assert_eq!(name("Anna", "van der Berg").last, vec!["vanderberg", "berg"]);
        assert_eq!(name("Gabriel", "García Márquez").last, vec!["garciamarquez", "garcia"]);
        assert_eq!(name("Zoë", "Ørsted-Łukasz").last, vec!["orstedlukasz", "orsted-lukasz"]);
        assert_eq!(name("Björn", "D’Angelo").last(), "dangelo");
        assert!(MailName::new("", "Doe").is_none());
        assert!(MailName::new("Jane", "!!").is_none());
    }

    #[test]
    fn full_names_drop_titles_and_suffixes() {
        let n = MailName::from_full("Dr. Jean-Luc van der Berg, Jr.").unwrap();
        assert_eq!((n.first(), n.last(), n.first_display.as_str()), ("jeanluc", "vanderberg", "Jean-Luc"));
        assert_eq!(n.last_display, "van der Berg");
        assert!(MailName::from_full("Cher").is_none());
        assert!(MailName::from_full("  ").is_none());
    }

    #[test]
    fn patterns_are_detected_from_known_addresses() {
        let jane = name("Jane", "Doe");
        let bob = name("Bob", "Smith");
        let ann = name("Ann", "Lee");
        assert_eq!(pattern_of("jdoe", &jane), Some("{f}{last}"));
        assert_eq!(pattern_of("Jane.Doe", &jane), Some("{first}.{last}"));
        assert_eq!(pattern_of("doe.jane", &jane), Some("{last}.{first}"));
        assert_eq!(pattern_of("boss", &jane), None);
        let stats = PatternStats::tally([("jdoe", &jane), ("bsmith", &bob), ("ann.lee", &ann), ("x1", &ann)]);
        assert_eq!(stats.pattern(), Some("{f}{last}"));
        assert_eq!(stats.counts, vec![("{f}{last}", 2), ("{first}.{last}", 1)]);
        assert_eq!((stats.unmatched, stats.total()), (1, 4));
    }

    #[test]
    fn candidates_rank_the_domains_pattern_first() {
        let jose = name("José", "Müller");
        let none = candidates(&jose, &PatternStats::default(), 5);
        let locals: Vec<&str> = none.iter().map(|c| c.local.as_str()).collect();
        assert_eq!(locals, ["jose.muller", "jmuller", "jose", "josemuller", "j.muller"]);
        assert!(none[0].score < 50, "a prior alone is never confident: {}", none[0].score);

        let jane = name("Jane", "Doe");
        let bob = name("Bob", "Smith");
        let stats = PatternStats::tally([("jdoe", &jane), ("bsmith", &bob)]);
        let ranked = candidates(&jose, &stats, 3);
        assert_eq!((ranked[0].local.as_str(), ranked[0].pattern, ranked[0].score), ("jmuller", "{f}{last}", 90));
        assert!(ranked[1].score < 20);
        // Variants come after the main form of the same pattern.
        let anna = candidates(&name("Anna", "van der Berg"), &PatternStats::default(), 40);
        let main = anna.iter().position(|c| c.local == "anna.vanderberg").unwrap();
        let variant = anna.iter().position(|c| c.local == "anna.berg").unwrap();
        assert!(main < variant);
    }

    #[test]
    fn local_parts_that_are_names_split() {
        assert_eq!(guess_name("jane.doe"), Some(("Jane".into(), "Doe".into())));
        assert_eq!(guess_name("info"), None);
        assert_eq!(guess_name("j.doe"), None);
        assert_eq!(guess_name("sales-2"), None);
    }
}
