//! Every function as deployed: its own bootstrap, built as `make build` builds it (`make
//! test` builds them all first, `make test-lambdas`: the library without features), started as
//! Lambda starts it against the local Runtime API, on DynamoDB + SQS (moto) with the secrets
//! key where the template gives it. Each `events/` sample goes through it; API samples must
//! answer 2xx with data, worker samples must report exactly their poison or misrouted
//! message in `batchItemFailures`, the console's must serve its files.

// The emulator's source, shared with the bench binary (which also uses what this test doesn't).
#[allow(dead_code)]
#[path = "../src/runtime_api.rs"]
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use leadpush::store::Store;
use leadpush::testing::samples::{WORKER_SAMPLE_FAILURES, http_sample_problem};
use runtime_api::{Instance, Outcome};
use serde_json::Value;

/// The functions the template gives the secrets key (`scripts/check_template.py` holds the
/// template to the same list).
const SECRET_USERS: [&str; 6] =
    ["push-leads", "integrations", "webhooks", "api-requests", "dispatcher", "workflow-worker"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `cargo build -p <function>` put the bootstraps: beside this test's `deps/`.
fn bootstrap(function: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(Path::parent).expect("target profile directory").join(function);
    assert!(
        path.exists(),
        "{} is missing: run `make test-lambdas` (which `make test` runs), to build every function \
         as deployed",
        path.display()
    );
    // A bootstrap older than the code it is built from would test the code as it was.
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).expect("bootstrap mtime");
    let sources = [root().join("shared/src"), root().join("functions").join(function).join("src")];
    if let Some(newer) = sources.iter().filter_map(|dir| newer_than(dir, built)).next() {
        panic!("{} is older than {}: run `make test-lambdas`", path.display(), newer.display());
    }
    path
}

/// A file under `dir` modified after `time`, if any.
fn newer_than(dir: &Path, time: std::time::SystemTime) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let meta = entry.metadata().ok()?;
        if meta.is_dir() {
            if let Some(found) = newer_than(&path, time) {
                return Some(found);
            }
        } else if meta.modified().is_ok_and(|m| m > time) {
            return Some(path);
        }
    }
    None
}

/// The sample files of each function, by the function their name starts with.
fn samples() -> BTreeMap<String, Vec<PathBuf>> {
    let functions: Vec<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "leadpush")
        .collect();
    let mut out: BTreeMap<String, Vec<PathBuf>> = functions.iter().map(|f| (f.clone(), Vec::new())).collect();
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".json") {
            continue;
        }
        let function = functions
            .iter()
            .filter(|f| file.starts_with(&format!("{f}.")))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("events/{file} names no function"));
        out.get_mut(function).unwrap().push(path);
    }
    for files in out.values_mut() {
        files.sort();
    }
    out
}

/// What is wrong with `function`'s answer to sample `file`, if anything.
fn problem(function: &str, file: &str, outcome: Outcome) -> Option<String> {
    let answer = match outcome {
        Outcome::Response(v) => v,
        Outcome::Error(e) => return Some(format!("reported an error: {e}")),
    };
    if file.ends_with(".sqs.json") {
        let (_, expected) = WORKER_SAMPLE_FAILURES.iter().find(|(name, _)| *name == function)?;
        let failed: Vec<&str> =
            answer["batchItemFailures"].as_array()?.iter().filter_map(|f| f["itemIdentifier"].as_str()).collect();
        return (failed != [*expected]).then(|| format!("batchItemFailures {failed:?}, want [{expected}]"));
    }
    let status = answer["statusCode"].as_u64().unwrap_or_default() as u16;
    let text = answer["body"].as_str().unwrap_or_default();
    if function == "console" {
        let ok = status == 200 && !text.is_empty();
        return (!ok).then(|| format!("answered {status} with {} bytes", text.len()));
    }
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    http_sample_problem(status, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_runs_through_its_functions_own_bootstrap_on_moto() {
    let moto = std::env::var("LEADPUSH_TEST_MOTO_URL")
        .expect("LEADPUSH_TEST_MOTO_URL is not set: run the suite with `make test`, which starts moto");
    let config = leadpush::aws::sdk_config_from(|name| match name {
        "AWS_ENDPOINT_URL" => Some(moto.clone()),
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".into()),
        _ => None,
    })
    .expect("moto SDK config");
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let unique = |what: &str| format!("{what}-{}", leadpush::support::ids::new_id("t").to_lowercase());
    let table = unique("deployed");
    leadpush::aws::ensure_table(&dynamo, &table).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = leadpush::aws::ensure_queues(&sqs, &unique("deployed-q"), 5, 30).await.unwrap();
    let key_id = leadpush::aws::kms::create_key(&aws_sdk_kms::Client::new(&config)).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(leadpush::store::dynamodb::DynamoStore::new(dynamo, table.clone()));
    let seeded = leadpush::testing::samples::seed(&*store, "Deployed").await.unwrap();

    let base: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("LEADPUSH_STORE", "dynamodb"),
        ("LEADPUSH_TABLE", &table),
        ("LEADPUSH_QUEUE_URL", &queue.queue_url),
        ("LEADPUSH_LOG", "warn"),
        // This machine has no DNS: webhook URLs of the samples are not resolved (as in the
        // in-process events test); SSRF rules have their own tests.
        ("LEADPUSH_ALLOW_PRIVATE_TARGETS", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let logs = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (function, files) in samples() {
        assert!(!files.is_empty(), "no sample event for {function} in events/");
        let mut env = base.clone();
        if SECRET_USERS.contains(&function.as_str()) {
            env.push(("LEADPUSH_KMS_KEY_ID".into(), key_id.clone()));
        }
        let log = logs.path().join(format!("{function}.log"));
        let mut instance = match Instance::start(&bootstrap(&function), &function, &env, &log).await {
            Ok(instance) => instance,
            Err(e) => {
                failures.push(format!("{function}: did not start: {e}"));
                continue;
            }
        };
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let event: Value = serde_json::from_str(&seeded.fill(&std::fs::read_to_string(&path).unwrap())).unwrap();
            match instance.invoke(&event).await {
                Ok(outcome) => {
                    if let Some(p) = problem(&function, &file, outcome) {
                        failures.push(format!("{file}: {p}\n{}", instance.log_tail()));
                    }
                }
                Err(e) => failures.push(format!("{file}: {e}")),
            }
            ran += 1;
        }
    }
    assert!(failures.is_empty(), "{} of {ran} samples failed:\n{}", failures.len(), failures.join("\n\n"));
    assert!(ran >= 38, "every sample ran ({ran})");
}
