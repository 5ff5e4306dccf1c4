//! Logs: `tracing` JSON lines on stderr (stdout stays free for CLI output). Never log
//! secrets or lead PII: log ids, counts and outcomes.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `LEADPUSH_LOG`: a level (`info`) or `target=level` pairs (`leadpush=debug,warn`).
/// `Targets` rather than `EnvFilter`: the same syntax for what we use, without a regex
/// engine linked into every Lambda.
fn filter() -> Targets {
    std::env::var("LEADPUSH_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Installs the global subscriber once; later calls are no-ops (tests, CLI subcommands).
pub fn init() {
    let pretty = std::env::var("LEADPUSH_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let registry = tracing_subscriber::registry().with(filter());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if pretty {
        registry.with(fmt).try_init()
    } else {
        registry.with(fmt.json().flatten_event(true).with_current_span(true).with_span_list(false)).try_init()
    };
}
