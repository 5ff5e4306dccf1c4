//! How deep a template's expressions nest, measured before the template engine parses it.
//!
//! minijinja parses and compiles expressions recursively. It guards brackets and
//! statements, but not chains of unary minus, attribute access, filters or binary
//! operators: about 2,400 of them in one `{{ }}` overflow a 2 MiB thread stack, which
//! aborts the whole process. This scan refuses such a template first, in linear time,
//! without recursion.
//!
//! The measure is an upper bound on the depth of the expression tree the parser would
//! build: within each bracket level, every operator token since the last `,` or `:` adds
//! one level (a chain of n operators builds a tree n deep however it associates), and
//! each open bracket adds its own level on top of the levels around it. Siblings (list
//! items, call arguments) do not add up. The scan knows Jinja's tags (`{{ }}`, `{% %}`,
//! `{# #}`, with `-`/`+` whitespace control), string literals and `{% raw %}` blocks.

/// Deepest expression a template may have. Real templates stay under ten; at this depth
/// compiling the worst shape takes well under 256 KiB of stack in a debug build (the
/// property test below compiles at the limit on such a thread).
pub const MAX_NESTING: usize = 64;

/// The template (or expression) nests deeper than [`MAX_NESTING`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "nests too deeply: at least {depth} levels of operators, filters, attribute access or brackets in one \
     expression (line {line}); the limit is {MAX_NESTING}"
)]
pub struct TooDeep {
    pub depth: usize,
    pub line: usize,
}

/// Checks every tag of a template.
pub fn check_template(source: &str) -> Result<(), TooDeep> {
    let bytes = source.as_bytes();
    let mut i = 0;
    while let Some(open) = find(bytes, i, b"{") {
        i = open + 1;
        match bytes.get(i) {
            Some(b'#') => i = find(bytes, i + 1, b"#}").map_or(bytes.len(), |end| end + 2),
            Some(b'{') => i = scan(bytes, i + 1, b"}}")?,
            Some(b'%') => {
                let body = i + 1;
                i = scan(bytes, body, b"%}")?;
                if is_raw_tag(&bytes[body..i.saturating_sub(2).max(body)]) {
                    i = skip_raw(bytes, i);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a bare expression (a workflow `condition`).
pub fn check_expression(expression: &str) -> Result<(), TooDeep> {
    scan(expression.as_bytes(), 0, b"").map(|_| ())
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count()
}

/// `{% raw %}` with optional whitespace control.
fn is_raw_tag(body: &[u8]) -> bool {
    let trimmed = body.iter().copied().skip_while(|b| matches!(b, b'-' | b'+') || b.is_ascii_whitespace());
    let word: Vec<u8> = trimmed.take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').collect();
    word == b"raw"
}

/// Skips to the end of the `{% endraw %}` tag after `from` (or the end of the text).
fn skip_raw(bytes: &[u8], mut from: usize) -> usize {
    while let Some(open) = find(bytes, from, b"{%") {
        let Some(close) = find(bytes, open + 2, b"%}") else { return bytes.len() };
        let body: Vec<u8> = bytes[open + 2..close]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace() && !matches!(b, b'-' | b'+'))
            .collect();
        if body == b"endraw" {
            return close + 2;
        }
        from = open + 2;
    }
    bytes.len()
}

/// One bracket level: the operators seen since its last separator.
struct Level {
    operators: usize,
}

/// Scans one tag body from `from` up to its `end` delimiter (outside strings), or to the
/// end of the text when `end` is empty. Returns the index just past the delimiter.
fn scan(bytes: &[u8], from: usize, end: &[u8]) -> Result<usize, TooDeep> {
    // Depth contributed by the enclosing levels (each open bracket counts one, plus the
    // operators of its level before it opened).
    let mut outer: Vec<Level> = Vec::new();
    let mut base = 0usize;
    let mut current = Level { operators: 0 };
    let mut i = from;
    let check = |base: usize, current: &Level, at: usize| {
        let depth = base + current.operators;
        if depth > MAX_NESTING { Err(TooDeep { depth, line: line_of(bytes, at) }) } else { Ok(()) }
    };
    while i < bytes.len() {
        if !end.is_empty() && bytes[i..].starts_with(end) {
            return Ok(i + end.len());
        }
        let b = bytes[i];
        match b {
            b'"' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'(' | b'[' | b'{' => {
                // The bracket is a level of its own; a call or subscript after an operand
                // is also one more link of the current chain.
                current.operators += 1;
                check(base, &current, i)?;
                base += current.operators + 1;
                outer.push(std::mem::replace(&mut current, Level { operators: 0 }));
            }
            b')' | b']' | b'}' => {
                if let Some(level) = outer.pop() {
                    base -= level.operators + 1;
                    current = level;
                }
            }
            b',' | b':' => current.operators = 0,
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if matches!(&bytes[start..i], b"and" | b"or" | b"not" | b"in" | b"is" | b"if" | b"else") {
                    current.operators += 1;
                    check(base, &current, start)?;
                }
                continue;
            }
            _ if b.is_ascii_digit() || b.is_ascii_whitespace() || !b.is_ascii() => {}
            // Any other punctuation is an operator: `-`, `.`, `|`, `~`, `+`, `*`, `==`, ...
            // (a two-character operator counts twice, which only errs on the safe side).
            _ => {
                current.operators += 1;
                check(base, &current, i)?;
            }
        }
        i += 1;
    }
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(result: Result<(), TooDeep>) -> usize {
        result.expect_err("should be refused").depth
    }

    #[test]
    fn ordinary_templates_pass() {
        for source in [
            "Hi {{ contact.first_name | default('there') | title }}, {{ workflow.customer_profile.plan }}!",
            "{% if contact.score > 5 and contact.title is defined %}{{ contact.title }}{% else %}-{% endif %}",
            "{% for x in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] %}{{ x * 2 + 1 }}{% endfor %}",
            r#"{"a": {{ contact | tojson }}, "b": "{{ '}}' }}"}"#,
            "{# {{ ------------------------------------------------------------------------ }} #}",
            &format!("{{% raw %}}{{{{ {} }}}}{{% endraw %}}", "-".repeat(5000)),
        ] {
            assert_eq!(check_template(source), Ok(()), "{source}");
        }
        assert_eq!(check_expression("contact.score > 5 and workflow.x.plan == 'pro'"), Ok(()));
    }

    #[test]
    fn operator_chains_are_refused_before_parsing() {
        let unary = format!("{{{{ {}1 }}}}", "-".repeat(3000));
        assert!(depth_error(check_template(&unary)) > MAX_NESTING);
        let attributes = format!("{{{{ {}b }}}}", "a.".repeat(4000));
        assert!(depth_error(check_template(&attributes)) > MAX_NESTING);
        let filters = format!("{{{{ {}y }}}}", "x|".repeat(4000));
        assert!(depth_error(check_template(&filters)) > MAX_NESTING);
        assert!(depth_error(check_expression(&format!("{}1", "-".repeat(2400)))) > MAX_NESTING);
        assert!(depth_error(check_expression(&format!("{}1", "not ".repeat(200)))) > MAX_NESTING);
        assert!(depth_error(check_expression(&format!("{}1", "1 ~ ".repeat(200)))) > MAX_NESTING);
        // Brackets add up with the chain around them.
        let mixed = format!("{}1{}", "-(".repeat(40), ")".repeat(40));
        assert!(depth_error(check_expression(&mixed)) > MAX_NESTING);
    }

    #[test]
    fn siblings_do_not_add_up_but_strings_cannot_hide_a_chain() {
        let wide = format!("{{{{ [{}] }}}}", vec!["a.b.c | d"; 500].join(", "));
        assert_eq!(check_template(&wide), Ok(()));
        // A `}}` inside a string does not end the tag early.
        let hidden = format!("{{{{ '}}}}' ~ {}1 }}}}", "-".repeat(100));
        assert!(depth_error(check_template(&hidden)) > MAX_NESTING);
        let err = check_template(&format!("line\n{{{{ {}1 }}}}", "-".repeat(100))).unwrap_err();
        assert_eq!(err.line, 2);
    }
}
