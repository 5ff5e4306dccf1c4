//! The cargo features of this library each Lambda needs, checked when its bootstrap starts.
//!
//! A function's `Cargo.toml` chooses the features its bootstrap is built with. Without one
//! its routes or tasks need, the library's `cfg(not(feature = ...))` branches serve no
//! routes and fail every task of the lane: a function that looks healthy and does nothing.
//! So the function refuses to start instead (its init error is in its logs and fails the
//! deploy's first invocation), and a unit test holds every `functions/*/Cargo.toml` to
//! these lists, so the mistake fails `make test` before it is built.

use crate::api::Function;
use crate::queue::Lane;

/// The features `function`'s routes need.
pub fn of_function(function: Function) -> &'static [&'static str] {
    match function {
        Function::Enrich => &["enrich"],
        Function::Finders => &["find"],
        Function::ApiRequests | Function::Workflows => &["workflow"],
        Function::Platform
        | Function::Campaigns
        | Function::IngestLeads
        | Function::Leads
        | Function::PushLeads
        | Function::Integrations
        | Function::Webhooks
        | Function::FeedbackEvents
        | Function::Insights => &[],
    }
}

/// The features the tasks of `lane` need (its worker function's).
pub fn of_lane(lane: Lane) -> &'static [&'static str] {
    match lane {
        Lane::Core => &[],
        Lane::Enrich => &["enrich"],
        Lane::Find => &["find"],
        // Rescoring, a workflow-lane task, uses the finders' title rules.
        Lane::Workflow => &["workflow", "find"],
    }
}

/// The features the lists above name, and whether this build has each.
const BUILT: [(&str, bool); 3] =
    [("enrich", cfg!(feature = "enrich")), ("find", cfg!(feature = "find")), ("workflow", cfg!(feature = "workflow"))];

/// Whether this build has `feature` (one of the features the lists above name).
fn enabled(feature: &str) -> bool {
    BUILT.iter().any(|(name, on)| *on && *name == feature)
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{function} was built without the cargo feature(s) {missing} of `leadpush` that its routes or tasks need: \
     enable them in functions/{function}/Cargo.toml"
)]
pub struct MissingFeatures {
    function: String,
    missing: String,
}

/// Fails when this build lacks one of `needed`.
pub fn require(function: &str, needed: &[&str]) -> Result<(), MissingFeatures> {
    let missing: Vec<&str> = needed.iter().copied().filter(|f| !enabled(f)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(MissingFeatures { function: function.to_owned(), missing: missing.join(", ") })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn functions_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions")
    }

    /// The features a function's `Cargo.toml` enables on `leadpush` (its one-line
    /// dependency, as every function declares it).
    fn declared(name: &str) -> BTreeSet<String> {
        let path = functions_dir().join(name).join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let line = text
            .lines()
            .find(|l| l.starts_with("leadpush.workspace") || l.starts_with("leadpush = "))
            .unwrap_or_else(|| panic!("{}: no one-line `leadpush` dependency", path.display()));
        let Some(list) = line.split_once("features = [").map(|(_, rest)| rest) else {
            return BTreeSet::new();
        };
        let list = list.split_once(']').unwrap_or_else(|| panic!("{}: unclosed features list", path.display())).0;
        list.split(',').map(|f| f.trim().trim_matches('"').to_owned()).filter(|f| !f.is_empty()).collect()
    }

    /// Every Lambda: its crate, what its `main` passes, the features it needs.
    fn lambdas() -> Vec<(&'static str, String, &'static [&'static str])> {
        let mut all: Vec<_> =
            Function::ALL.iter().map(|f| (f.name(), format!("Function::{f:?}"), of_function(*f))).collect();
        all.extend(
            Lane::ALL
                .iter()
                .map(|l| (l.function(), format!("Worker::{}", format!("{l:?}").to_uppercase()), of_lane(*l))),
        );
        // The console serves static files and needs no capability.
        all.push(("console", "run_console".into(), &[]));
        all
    }

    #[test]
    fn every_function_crate_enables_exactly_the_features_its_entry_point_needs() {
        for (name, entry, needed) in lambdas() {
            let main = std::fs::read_to_string(functions_dir().join(name).join("src/main.rs")).expect("main.rs");
            assert!(main.contains(&entry), "functions/{name}/src/main.rs does not call {entry}");
            let needed: BTreeSet<String> = needed.iter().map(|f| (*f).to_owned()).collect();
            assert_eq!(
                declared(name),
                needed,
                "functions/{name}/Cargo.toml must enable exactly these features of leadpush (fewer: it serves \
                 nothing; more: its bootstrap links code it never runs)"
            );
        }
    }

    #[test]
    fn every_crate_under_functions_is_a_lambda_whose_features_are_checked() {
        let checked: BTreeSet<String> = lambdas().into_iter().map(|(name, ..)| name.to_owned()).collect();
        let found: BTreeSet<String> = std::fs::read_dir(functions_dir())
            .expect("functions/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            // The CLI (`leadpush serve`) enables every feature.
            .filter(|name| name != "leadpush")
            .collect();
        assert_eq!(found, checked);
    }

    #[test]
    fn the_needed_features_are_features_of_this_crate() {
        let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
        for (name, _, needed) in lambdas() {
            for feature in needed {
                assert!(manifest.contains(&format!("\n{feature} = [")), "{name} needs {feature}, not a feature");
                // Else `enabled` could never say yes and the function would never start.
                assert!(BUILT.iter().any(|(built, _)| built == feature), "{feature} is missing from BUILT");
            }
        }
    }

    #[test]
    fn a_build_without_a_needed_feature_refuses_to_start_and_says_where_to_add_it() {
        let err = require("enrich-worker", &["enrich", "not-built"]).unwrap_err().to_string();
        assert!(err.contains("enrich-worker was built without the cargo feature(s) not-built"), "{err}");
        assert!(err.contains("functions/enrich-worker/Cargo.toml"), "{err}");
        assert!(!err.contains("enrich,"), "only the missing ones are named: {err}");
        // `enrich` is a default feature.
        require("enrich-worker", &["enrich"]).unwrap();
    }
}
