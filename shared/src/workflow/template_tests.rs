use serde_json::json;

use super::*;

fn vars() -> serde_json::Value {
    json!({"contact": {"first_name": "O\"Brien", "email": "a+b@x.com", "path": "../admin", "phone": null,
                       "score": 7, "custom_fields": {"tier": "A"}},
           "workflow": {"customer_profile": {"plan": "pro"}}})
}

#[test]
fn url_values_are_percent_encoded_and_dot_segments_refused() {
    let out =
        render("url", "https://x.test/u/{{ contact.path }}?e={{ contact.email }}", Mode::Url, &vars(), 4096).unwrap();
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
    let err = render("t", "{% for i in range(5000) %}xxxxxxxxxx{% endfor %}", Mode::Text, &vars(), 1000).unwrap_err();
    assert!(err.message.contains("more than 1000 bytes"), "{err}");
    assert_eq!(
        references("{{ workflow.a.b }}{% set y = 1 %}{{ y }}{{ contact.x }}").unwrap().into_iter().collect::<Vec<_>>(),
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
    let err = render("t", "{% for i in range(100000) %}{{ i }}{% endfor %}", Mode::Text, &vars(), 1 << 20).unwrap_err();
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
                (prop::sample::select(vec!["(", "[", "{'k': "]), 1..60usize, inner.clone()).prop_map(|(open, n, e)| {
                    let close = match open {
                        "(" => ")",
                        "[" => "]",
                        _ => "}",
                    };
                    format!("{}{e}{}", open.repeat(n), close.repeat(n))
                }),
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

/// Condition nodes can route on the learned score and its reasons; a lead not scored yet
/// has a `none` score, which a condition can test for.
#[test]
fn conditions_read_the_learned_predicted_score() {
    use crate::domain::lead::{Lead, LeadFields};
    use crate::domain::score::ScoreReason;
    let mut lead =
        Lead::new("lead_1".into(), "cmp_1".into(), None, LeadFields::default(), crate::support::time::Timestamp::now());
    let unscored = crate::workflow::variables(None, Some(&lead), None, &serde_json::Map::new(), None);
    assert!(condition("if", "contact.predicted_score is none", &unscored).unwrap());
    assert!(
        !condition("if", "contact.predicted_score is not none and contact.predicted_score >= 0.2", &unscored).unwrap()
    );
    lead.predicted_score = Some(0.31);
    lead.score_reasons = vec![ScoreReason {
        factor: "seniority".into(),
        group: Some("executive".into()),
        effect: 0.8,
        sample_size: 120,
        positive: 30,
        rate: Some(0.25),
        message: String::new(),
    }];
    let scored = crate::workflow::variables(None, Some(&lead), None, &serde_json::Map::new(), None);
    assert!(
        condition("if", "contact.predicted_score is not none and contact.predicted_score >= 0.2", &scored).unwrap()
    );
    assert!(condition("if", "contact.score_reasons[0].group == 'executive'", &scored).unwrap());
}
