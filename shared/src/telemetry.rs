//! Logs: `tracing` JSON lines on stderr (stdout stays free for CLI output). Never log
//! secrets or lead PII: log ids, counts and outcomes.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are no-ops (tests, CLI subcommands).
pub fn init() {
    let filter = EnvFilter::try_from_env("LEADPUSH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("LEADPUSH_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if pretty {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    };
}
