//! Every Lambda is built from the same library: no function enables a cargo feature of
//! `leadpush`. What a bootstrap links is chosen by its `main` (the route group it passes
//! to `run_http`, the worker constant it passes to `run_worker`), and the linker drops the
//! rest. So one build of the library serves all 18 functions, in `make build` and in
//! `make test`, and there is no `cfg(not(feature = ...))` branch that only a deploy
//! compiles. The library's features are for the CLI and the tests (`embedded`, `openapi`,
//! `faults`, `capacity`, `aws-profiles`); in a Lambda each would link code it must not
//! run (the SQLite store, every schema, the fault injector). These tests hold
//! `functions/*` to that.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::api::Function;
use crate::queue::Lane;

fn functions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions")
}

/// A function's `leadpush` dependency line (one line, as every function declares it).
fn leadpush_dependency(name: &str) -> String {
    let path = functions_dir().join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find(|l| l.starts_with("leadpush.workspace") || l.starts_with("leadpush = "))
        .unwrap_or_else(|| panic!("{}: no one-line `leadpush` dependency", path.display()))
        .to_owned()
}

/// Every Lambda: its crate and what its `main` passes.
fn lambdas() -> Vec<(&'static str, String)> {
    let mut all: Vec<_> = Function::ALL.iter().map(|f| (f.name(), format!("Function::{f:?}"))).collect();
    all.extend(Lane::ALL.iter().map(|l| (l.function(), format!("Worker::{}", format!("{l:?}").to_uppercase()))));
    all.push(("console", "run_console".into()));
    all
}

#[test]
fn every_function_calls_its_own_entry_point_and_enables_no_feature_of_the_library() {
    for (name, entry) in lambdas() {
        let main = std::fs::read_to_string(functions_dir().join(name).join("src/main.rs")).expect("main.rs");
        assert!(main.contains(&entry), "functions/{name}/src/main.rs does not call {entry}");
        assert_eq!(
            leadpush_dependency(name),
            "leadpush.workspace = true",
            "functions/{name}/Cargo.toml: a Lambda enables no feature of leadpush (its `main` chooses what it links)"
        );
    }
}

#[test]
fn every_crate_under_functions_is_a_lambda_checked_here() {
    let checked: BTreeSet<String> = lambdas().into_iter().map(|(name, _)| name.to_owned()).collect();
    let found: BTreeSet<String> = std::fs::read_dir(functions_dir())
        .expect("functions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        // The CLI (`leadpush serve`) enables the embedded store and the OpenAPI document.
        .filter(|name| name != "leadpush")
        .collect();
    assert_eq!(found, checked);
}

#[test]
fn the_workspace_dependency_leaves_the_librarys_default_features_off() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml")).unwrap();
    let line = manifest.lines().find(|l| l.starts_with("leadpush = ")).expect("leadpush in [workspace.dependencies]");
    assert!(line.contains("default-features = false"), "{line}");
}
