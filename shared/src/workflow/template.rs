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
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> serde_json::Value {
        json!({"contact": {"first_name": "O\"Brien", "email": "a+b@x.com", "path": "../admin", "phone": null,
                           "score": 7, "custom_fields": {"tier": "A"}},
               "workflow": {"customer_profile": {"plan": "pro"}}})
    }

    #[test]
    fn url_values_are_percent_encoded_and_dot_segments_refused() {
        let out = render("url", "https://x.test/u/{{ contact.path }}?e={{ contact.email }}", Mode::Url, &vars(), 4096)
            .unwrap();
        assert_eq!(out, "https://x.test/u/..%2Fadmin?e=a%2Bb%40x.com");
        let out = render("url", "https://x.test/{{ contact.path | tojson }}", Mode::Url, &vars(), 4096).unwrap();
        assert_eq!(out, "https://x.test/%22..%2Fadmin%22", "safe output is encoded too");
        let err = render("url", "https://x.test/{{ '..' }}/x", Mode::Url, &vars(), 4096).unwrap_err();
        assert!(err.message.contains("`.` or `..`"), "{err}");
    }

    #[test]
    fn json_bodies_escape_inserted_strings() {
        let out = render(
            "body",
            r#"{"name": "{{ contact.first_name }}", "score": {{ contact.score }}, "p": {{ workflow.customer_profile | tojson }}}"#,
            Mode::Json,
            &vars(),
            4096,
        )
        .unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, json!({"name": "O\"Brien", "score": 7, "p": {"plan": "pro"}}));
        assert_eq!(render("t", "{{ contact.phone }}|{{ '{{' }}", Mode::Text, &vars(), 100).unwrap(), "|{{");
    }

    #[test]
    fn undefined_variables_are_errors_naming_the_variable() {
        let err = render("body", "{{ contact.custom_fields.missing }}", Mode::Text, &vars(), 100).unwrap_err();
        assert_eq!((err.field.as_str(), err.variable.as_deref()), ("body", Some("contact.custom_fields.missing")));
        let err = condition("if", "workflow.nope.plan == 'pro'", &vars()).unwrap_err();
        assert_eq!(err.variable.as_deref(), Some("workflow.nope"));
        assert!(condition("if", "workflow.customer_profile.plan == \"pro\"", &vars()).unwrap());
        assert_eq!(render("t", "{{ contact.missing | default('x') }}", Mode::Text, &vars(), 100).unwrap(), "x");
    }

    #[test]
    fn runaway_templates_run_out_of_fuel_or_size() {
        let err = render(
            "t",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            Mode::Text,
            &vars(),
            1 << 20,
        )
        .unwrap_err();
        assert!(err.message.contains("fuel") || err.message.contains("limit"), "{err}");
        let err =
            render("t", "{% for i in range(5000) %}xxxxxxxxxx{% endfor %}", Mode::Text, &vars(), 1000).unwrap_err();
        assert!(err.message.contains("more than 1000 bytes"), "{err}");
        assert_eq!(
            references("{{ workflow.a.b }}{% set y = 1 %}{{ y }}{{ contact.x }}")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["contact.x", "workflow.a.b"]
        );
    }

    /// Each of these overflows the parser's stack while compiling, which aborts the
    /// process, unless refused first. They must be refused with a message, on a thread with
    /// a small stack.
    #[test]
    fn templates_nested_deep_enough_to_overflow_the_parser_are_refused() {
        on_small_stack(|| {
            let url = format!("https://example.com/{{{{ {}1 }}}}", "-".repeat(3000));
            let err = render("url", &url, Mode::Url, &vars(), 2048).unwrap_err();
            assert!(err.message.contains("nests too deeply") && err.message.contains("limit is 64"), "{err}");
            assert!(references(&url).unwrap_err().message.contains("nests too deeply"));
            for expression in
                [format!("{}1", "-".repeat(2400)), format!("{}b", "a.".repeat(4000)), format!("{}y", "x|".repeat(4000))]
            {
                let err = condition("if", &expression, &vars()).unwrap_err();
                assert!(err.message.contains("nests too deeply"), "{err}");
                assert!(expression_references(&expression).unwrap_err().message.contains("nests too deeply"));
                let template = format!("{{{{ {expression} }}}}");
                let err = render("template", &template, Mode::Text, &vars(), 10_000).unwrap_err();
                assert!(err.message.contains("nests too deeply"), "{err}");
            }
        });
    }

    /// Renders that would take gigabytes and tens of seconds. Each must stop with an
    /// error (fuel counts the bytes and items a render makes, not only its steps).
    #[test]
    fn render_bombs_stop_on_fuel_or_size_instead_of_taking_memory() {
        for (source, max) in [
            ("https://example.com/{{ [1] * 100000000 }}", 2048),
            ("{{ 'a' * 100000000 }}", 1 << 20),
            ("{{ ('a' * 100000000) | length }}", 1 << 20),
            ("{{ ([1] * 100000000) | join(',') | length }}", 1 << 20),
            ("{{ ([1] * 100000000) | list | length }}", 1 << 20),
            ("{{ (([1] * 100000000) | sum) }}", 1 << 20),
            ("{{ 1 in [0] * 100000000 }}", 1 << 20),
            ("{{ ('a' * 10000) | replace('a', 'a' * 10000) | length }}", 1 << 20),
            (
                "{% set ns = namespace(s='aaaaaaaaaaaaaaaa') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
                1 << 20,
            ),
            (
                "{% set a = 'aaaaaaaaaaaaaaaa' %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{% set c = b ~ b ~ b ~ b ~ b ~ b ~ b ~ b %}{% set d = c ~ c ~ c ~ c ~ c ~ c ~ c ~ c %}{% set e = d ~ d ~ d ~ d ~ d ~ d ~ d ~ d %}{% set f = e ~ e ~ e ~ e ~ e ~ e ~ e ~ e %}{% set g = f ~ f ~ f ~ f ~ f ~ f ~ f ~ f %}{{ g | length }}",
                1 << 20,
            ),
        ] {
            let err = render("t", source, Mode::Text, &vars(), max).unwrap_err();
            assert!(err.message.contains("fuel") || err.message.contains("more than"), "{source}: {err}");
        }
    }

    /// A render past the inline budget is run again with the full one, off the async
    /// workers on a multi-threaded runtime, and gives the same answer as anywhere else.
    #[test]
    fn renders_past_the_inline_budget_finish_with_the_full_one() {
        let source = "{% for i in range(3000) %}{{ i % 10 }}{% endfor %}";
        let expected: String = (0..3000).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
        assert_eq!(render("t", source, Mode::Text, &vars(), 10_000).unwrap(), expected);
        let condition_source = "range(3000) | map('string') | join | length == 10890";
        assert!(condition("if", condition_source, &vars()).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let (out, cond) = runtime.block_on(async {
            tokio::spawn(async move {
                (render("t", source, Mode::Text, &vars(), 10_000), condition("if", condition_source, &vars()))
            })
            .await
            .unwrap()
        });
        assert_eq!((out.unwrap(), cond.unwrap()), (expected, true));
        // Past the full budget it is still an error.
        let err =
            render("t", "{% for i in range(100000) %}{{ i }}{% endfor %}", Mode::Text, &vars(), 1 << 20).unwrap_err();
        assert!(err.message.contains(&format!("a budget of {FUEL}")), "{err}");
    }

    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        // Tokio's workers have 2 MiB; half of that in a debug build (whose frames are
        // several times larger than release's) leaves a wide margin.
        let handle = std::thread::Builder::new().stack_size(1024 * 1024).spawn(f).unwrap();
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;
        use super::{on_small_stack, vars};

        /// Expression pieces a parser recurses on, and ordinary ones, glued at random.
        fn expression() -> impl Strategy<Value = String> {
            let atom = prop_oneof![
                Just("1".to_owned()),
                Just("contact.score".to_owned()),
                Just("'x'".to_owned()),
                Just("workflow.customer_profile".to_owned()),
                Just("[1, 2]".to_owned()),
            ];
            atom.prop_recursive(8, 512, 4, |inner| {
                prop_oneof![
                    (prop::sample::select(vec!["-", "not ", "+"]), 1..200usize, inner.clone())
                        .prop_map(|(op, n, e)| format!("{}{e}", op.repeat(n))),
                    (
                        inner.clone(),
                        prop::sample::select(vec![".a", "|upper", "|default(1)", "[0]", "()", " is defined"]),
                        1..200usize
                    )
                        .prop_map(|(e, op, n)| format!("{e}{}", op.repeat(n))),
                    (
                        inner.clone(),
                        prop::sample::select(vec![" ~ ", " + ", " * ", " and ", " or ", " == ", " if 1 else "]),
                        inner.clone()
                    )
                        .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
                    (prop::sample::select(vec!["(", "[", "{'k': "]), 1..60usize, inner.clone()).prop_map(
                        |(open, n, e)| {
                            let close = match open {
                                "(" => ")",
                                "[" => "]",
                                _ => "}",
                            };
                            format!("{}{e}{}", open.repeat(n), close.repeat(n))
                        }
                    ),
                    inner.prop_map(|e| format!("({e})")),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

            /// No template the entry points accept can crash the process: every input
            /// either renders or is refused with a message, on half a worker's stack.
            #[test]
            fn no_template_crashes_an_entry_point(expr in expression(), tag in 0..3usize) {
                let source = match tag {
                    0 => format!("{{{{ {expr} }}}}"),
                    1 => format!("{{% if {expr} %}}y{{% endif %}}"),
                    _ => format!("{{% set v = {expr} %}}{{{{ v }}}}"),
                };
                on_small_stack(move || {
                    let _ = render("t", &source, Mode::Text, &vars(), 4096);
                    let _ = render("u", &source, Mode::Url, &vars(), 4096);
                    let _ = render("j", &source, Mode::Json, &vars(), 4096);
                    let _ = references(&source);
                    let _ = condition("if", &expr, &vars());
                    let _ = expression_references(&expr);
                });
            }

            /// The deepest chain the nesting measure accepts compiles on the small stack.
            #[test]
            fn the_nesting_limit_leaves_room_on_the_stack(op in prop::sample::select(vec!["-", "not ", ".a", "|upper", " ~ 1", "(", "[", " if 1 else 1"])) {
                let chain = |n: usize| match op {
                    "(" => format!("{}1{}", "(".repeat(n), ")".repeat(n)),
                    "[" => format!("{}1{}", "[".repeat(n), "]".repeat(n)),
                    "-" | "not " => format!("{}1", op.repeat(n)),
                    _ => format!("x{}", op.repeat(n)),
                };
                // The longest chain of this shape that the measure accepts.
                let n = (1..=crate::workflow::nesting::MAX_NESTING + 1)
                    .take_while(|&n| crate::workflow::nesting::check_expression(&chain(n)).is_ok())
                    .last()
                    .unwrap_or(0);
                prop_assert!(n >= 8, "{op}: only {n} links accepted");
                let expr = chain(n);
                on_small_stack(move || {
                    assert!(crate::workflow::nesting::check_expression(&expr).is_ok(), "{expr}");
                    let _ = condition("if", &expr, &vars());
                    let _ = render("t", &format!("{{{{ {expr} }}}}"), Mode::Text, &vars(), 4096);
                });
            }
        }
    }
}
