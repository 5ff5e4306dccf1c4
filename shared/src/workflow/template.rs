//! Templates (minijinja, Jinja syntax) for API requests and workflow nodes.
//!
//! - Undefined variables are errors that name the variable, never empty strings.
//! - Every render has fuel (an instruction budget) and an output size cap, so a template
//!   cannot loop forever or grow without bound.
//! - Escaping follows where the text goes: values inserted into a URL are percent-encoded
//!   (always, even `| safe` output; a lone `.` or `..` is refused so no value can climb
//!   the path); values inserted into a JSON body are JSON-escaped (strings without their
//!   quotes, so `"{{ x }}"` stays one string; other values as JSON); plain text is
//!   inserted as is. `none` renders as nothing; `| tojson` inserts any value as JSON.

use std::collections::BTreeSet;
use std::sync::{OnceLock, RwLock};

use minijinja::value::{Serde, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::nesting;

/// A render's budget: each instruction costs one, and every 64 bytes (or 4 serialised
/// bytes, or 2 visited items) it produces or reads cost one more (minijinja 3's fuel).
pub const FUEL: u64 = 200_000;
/// The budget a render first gets on the async worker that asked for it (well under a
/// millisecond of work); a render that needs more is run again with [`FUEL`] where it
/// cannot hold up other requests (see [`off_async_workers`]). Renders have no side
/// effects, so running one twice is safe.
pub const INLINE_FUEL: u64 = 10_000;

/// Which budget a render runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Inline,
    Full,
}

impl Tier {
    fn fuel(self) -> u64 {
        match self {
            Tier::Inline => INLINE_FUEL,
            Tier::Full => FUEL,
        }
    }
}

/// Runs synchronous template work that may use its whole budget off the async workers:
/// on a multi-threaded tokio runtime the worker hands its other tasks to another thread
/// first (`block_in_place`), so `/healthz` and other requests keep being served; anywhere
/// else (a current-thread runtime, no runtime) it just runs.
pub fn off_async_workers<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
/// Compiled templates kept for reuse; the cache starts over when it holds this many.
const CACHED_TEMPLATES: usize = 4096;

/// Where a rendered template goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    Url,
    Json,
}

impl Mode {
    fn template_name(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Url => "url",
            Mode::Json => "json",
        }
    }
}

/// A template that did not render: which field, which variable (when one was undefined).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TemplateError {
    pub field: String,
    pub variable: Option<String>,
    pub message: String,
}

/// Unreserved characters (RFC 3986) stay; everything else is encoded.
const URL_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn environment(tier: Tier) -> &'static Environment<'static> {
    static INLINE: OnceLock<Environment<'static>> = OnceLock::new();
    static FULL: OnceLock<Environment<'static>> = OnceLock::new();
    let cell = match tier {
        Tier::Inline => &INLINE,
        Tier::Full => &FULL,
    };
    cell.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(tier.fuel()));
        env.set_recursion_limit(64);
        // Cached templates are named `{mode}:{source}`: the mode picks the escaping.
        env.set_auto_escape_callback(|name| match name.split(':').next() {
            Some("url") => AutoEscape::Custom("url".into()),
            Some("json") => AutoEscape::Custom("json".into()),
            _ => AutoEscape::None,
        });
        env.set_formatter(|out, state, value| {
            if value.is_none() {
                return Ok(());
            }
            let write = |out: &mut minijinja::Output, text: &str| {
                out.write_str(text).map_err(|e| minijinja::Error::new(ErrorKind::WriteFailure, e.to_string()))
            };
            match state.auto_escape() {
                // Always encoded, even `| safe` or `| tojson` output: no value may shape the URL.
                AutoEscape::Custom(m) if m == "url" => {
                    let text = value.to_string();
                    if text == "." || text == ".." {
                        return Err(minijinja::Error::new(
                            ErrorKind::InvalidOperation,
                            "a value rendered into a URL may not be `.` or `..`",
                        ));
                    }
                    write(out, &utf8_percent_encode(&text, URL_VALUE).to_string())
                }
                // `| tojson` (and `| safe`) output is already JSON: inserted as is.
                AutoEscape::Custom(m) if m == "json" && value.is_safe() => {
                    write(out, value.as_str().unwrap_or_default())
                }
                AutoEscape::Custom(m) if m == "json" => match value.kind() {
                    ValueKind::String => {
                        let quoted = serde_json::to_string(value.as_str().unwrap_or_default()).unwrap_or_default();
                        write(out, &quoted[1..quoted.len() - 1])
                    }
                    _ => {
                        let text = serde_json::to_string(value).map_err(|e| {
                            minijinja::Error::new(ErrorKind::BadSerialization, format!("not JSON-serialisable: {e}"))
                        })?;
                        write(out, &text)
                    }
                },
                _ => write(out, &value.to_string()),
            }
        });
        env
    })
}

/// Finds which dotted variable path is undefined in `vars`, from the template's paths.
/// The answer is the path up to its first missing part (`workflow.nope` of `workflow.nope.plan`).
fn missing_variable(paths: BTreeSet<String>, vars: &serde_json::Value) -> Option<String> {
    paths.into_iter().find_map(|path| {
        let mut at = vars;
        let mut seen = Vec::new();
        for part in path.split('.') {
            seen.push(part);
            match at.get(part) {
                Some(next) => at = next,
                None => return Some(seen.join(".")),
            }
        }
        None
    })
}

fn error(field: &str, source: Option<&str>, err: &minijinja::Error, vars: Option<&serde_json::Value>) -> TemplateError {
    let line = err.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    if err.kind() == ErrorKind::UndefinedError
        && let (Some(source), Some(vars)) = (source, vars)
    {
        let paths = references(source).unwrap_or_default();
        if let Some(variable) = missing_variable(paths, vars) {
            return TemplateError {
                field: field.to_owned(),
                message: format!("`{variable}` is undefined{line}; use `| default(...)` for optional values"),
                variable: Some(variable),
            };
        }
    }
    let message = match err.kind() {
        ErrorKind::OutOfFuel => format!(
            "the template ran out of fuel (a budget of {FUEL}, spent on its steps and the data it makes){line}: \
             is there a runaway loop, or a value built too large?"
        ),
        _ => format!("{}{line}", err.detail().map_or_else(|| err.kind().to_string(), str::to_owned)),
    };
    TemplateError { field: field.to_owned(), variable: None, message }
}

/// Compiled templates by `{mode}:{source}`, so a workflow's templates are parsed once per
/// process rather than once per lead.
struct Compiled {
    env: Environment<'static>,
    count: usize,
}

fn compiled(tier: Tier) -> &'static RwLock<Compiled> {
    static INLINE: OnceLock<RwLock<Compiled>> = OnceLock::new();
    static FULL: OnceLock<RwLock<Compiled>> = OnceLock::new();
    let cell = match tier {
        Tier::Inline => &INLINE,
        Tier::Full => &FULL,
    };
    cell.get_or_init(|| RwLock::new(Compiled { env: environment(tier).clone(), count: 0 }))
}

/// Render output that refuses to grow past its limit, so an oversized render stops at the
/// limit instead of being built whole and measured afterwards.
struct Bounded {
    out: Vec<u8>,
    max: usize,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + data.len() > self.max {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a render failed: the engine's error, or output past the limit.
enum Failure {
    Engine(minijinja::Error),
    TooLarge,
}

fn render_bounded(template: &minijinja::Template, vars: &serde_json::Value, max: usize) -> Result<String, Failure> {
    let mut out = Bounded { out: Vec::new(), max, overflowed: false };
    match template.render_captured_to(Value::from(Serde(vars)), &mut out) {
        Ok(_) => Ok(String::from_utf8(out.out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Err(_) if out.overflowed => Err(Failure::TooLarge),
        Err(e) => Err(Failure::Engine(e)),
    }
}

fn render_cached(
    tier: Tier,
    name: &str,
    source: &str,
    vars: &serde_json::Value,
    max: usize,
) -> Result<String, Failure> {
    let cache = compiled(tier);
    {
        let read = cache.read().unwrap_or_else(|e| e.into_inner());
        if let Ok(template) = read.env.get_template(name) {
            return render_bounded(&template, vars, max);
        }
    }
    {
        let mut write = cache.write().unwrap_or_else(|e| e.into_inner());
        if write.count >= CACHED_TEMPLATES {
            write.env.clear_templates();
            write.count = 0;
        }
        write.env.add_template_owned(name.to_owned(), source.to_owned()).map_err(Failure::Engine)?;
        write.count += 1;
    }
    let read = cache.read().unwrap_or_else(|e| e.into_inner());
    render_bounded(&read.env.get_template(name).map_err(Failure::Engine)?, vars, max)
}

fn too_deep(field: &str, e: nesting::TooDeep) -> TemplateError {
    TemplateError { field: field.to_owned(), variable: None, message: e.to_string() }
}

/// Renders `source` for `field`; the output may be at most `max_bytes`.
pub fn render(
    field: &str,
    source: &str,
    mode: Mode,
    vars: &serde_json::Value,
    max_bytes: usize,
) -> Result<String, TemplateError> {
    // No tags at all: the text is its own output (cheap, and the common case for headers).
    if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
        return check_size(field, source.to_owned(), max_bytes);
    }
    nesting::check_template(source).map_err(|e| too_deep(field, e))?;
    let name = format!("{}:{source}", mode.template_name());
    let attempt = |tier| render_cached(tier, &name, source, vars, max_bytes);
    let result = match attempt(Tier::Inline) {
        Err(Failure::Engine(e)) if e.kind() == ErrorKind::OutOfFuel => off_async_workers(|| attempt(Tier::Full)),
        other => other,
    };
    match result {
        Ok(out) => Ok(out),
        Err(Failure::TooLarge) => Err(TemplateError {
            field: field.to_owned(),
            variable: None,
            message: format!("renders to more than {max_bytes} bytes, the limit"),
        }),
        Err(Failure::Engine(e)) => {
            let syntax = e.kind() == ErrorKind::SyntaxError;
            Err(error(field, (!syntax).then_some(source), &e, (!syntax).then_some(vars)))
        }
    }
}

fn check_size(field: &str, out: String, max_bytes: usize) -> Result<String, TemplateError> {
    if out.len() > max_bytes {
        return Err(TemplateError {
            field: field.to_owned(),
            variable: None,
            message: format!("renders to {} bytes; the limit is {max_bytes}", out.len()),
        });
    }
    Ok(out)
}

/// Evaluates a condition expression to true or false (Jinja truthiness).
pub fn condition(field: &str, expression: &str, vars: &serde_json::Value) -> Result<bool, TemplateError> {
    nesting::check_expression(expression).map_err(|e| too_deep(field, e))?;
    let compiled =
        environment(Tier::Inline).compile_expression(expression).map_err(|e| error(field, None, &e, None))?;
    let result = match compiled.eval(Value::from(Serde(vars))) {
        Err(e) if e.kind() == ErrorKind::OutOfFuel => off_async_workers(|| {
            let full = environment(Tier::Full).compile_expression(expression)?;
            full.eval(Value::from(Serde(vars)))
        }),
        other => other,
    };
    match result {
        Ok(value) => Ok(value.is_true()),
        Err(e) if e.kind() == ErrorKind::UndefinedError => {
            let paths: BTreeSet<String> = compiled.undeclared_variables(true).into_iter().collect();
            let variable = missing_variable(paths, vars);
            Err(TemplateError {
                field: field.to_owned(),
                message: match &variable {
                    Some(v) => format!("`{v}` is undefined; use `is defined` or `| default(...)` for optional values"),
                    None => "uses an undefined value".to_owned(),
                },
                variable,
            })
        }
        Err(e) => Err(error(field, None, &e, None)),
    }
}

/// Checks a template's syntax and returns the variable paths it reads (`workflow.x.y`).
pub fn references(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    nesting::check_template(source).map_err(|e| too_deep("template", e))?;
    let template = environment(Tier::Full).template_from_str(source).map_err(|e| error("template", None, &e, None))?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

/// [`references`] for a condition expression.
pub fn expression_references(expression: &str) -> Result<BTreeSet<String>, TemplateError> {
    nesting::check_expression(expression).map_err(|e| too_deep("if", e))?;
    let compiled = environment(Tier::Full).compile_expression(expression).map_err(|e| error("if", None, &e, None))?;
    Ok(compiled.undeclared_variables(true).into_iter().collect())
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
