"""Email addresses with `email-validator`'s answers (pinned in the Makefile), for the
comparison test in shared/src/enrich/reference_checks.rs.

Prints JSON: {"version", "cases": [{"input", "valid", "ascii_domain"}]}. The reference runs
with its defaults (no quoted local parts, no IP literals, globally deliverable domains) and
`strict=True`, which adds the 64-character local-part limit; no DNS. Addresses under
`.test` also carry `as_ordinary_name`, the answer with `test_environment=True`, since
RFC 6761 6.2 makes them ordinary names for us.
The corpus: hand-written edge cases, every printable ASCII character and a set of Unicode
ones in each part, and seeded random combinations of the pieces. Deterministic.
"""

import json
import random
import sys

from email_validator import EmailNotValidError, validate_email
from email_validator import __version__ as VERSION

LOCALS = [
    "a", "john", "john.smith", "john.smith+tag", "first_last", "o'brien", "x-y", "a.b.c.d", "UPPER",
    "123", "a!b", "#hash", "$dollar", "%pct", "&amp", "*star", "=eq", "?q", "^hat", "`tick", "{b}",
    "|pipe", "~tilde", "/slash", "ü", "jörg", "用户", "почта", "δοκιμή", "ñoño", "θ", "é" * 64, "é" * 65,
    "a" * 64, "a" * 65, ".a", "a.", "a..b", "", " a", "a b", "\"quoted\"", "\"a b\"", "a\"b", "a(b)",
    "a,b", "a:b", "a;b", "a<b", "a>b", "a[b]", "a\\b", "\u0301a", "a\u0301", "a\u200bb", "a\u202eb",
    "a\u00a0b", "a\u2028b", "\U0001f600", "a\u0000b", "a\tb", "a\ud7ffb", "\uff41", "a\u00adb",
]
DOMAINS = [
    "example.com", "acme.co.uk", "sub.domain.example.org", "EXAMPLE.COM", "a.io", "x.y.z.museum",
    "münchen.de", "xn--mnchen-3ya.de", "XN--MNCHEN-3YA.DE", "例え.jp", "пример.рф", "δοκιμή.gr",
    "bücher.example", "straße.de", "faß.de", "☃.net", "xn--n3h.net", "\U0001f600.com", "ab--cd.com",
    "xn--zz.com", "xn--a-.com", "xn--.com", "xn--ls8h.la", "xn--abc.com", "xn--80ak6aa92e.com",
    "acme_corp.com", "acme%corp.com", "acme.123", "1.2.3.4", "acme.c0m", "acme.com1", "a.b",
    "printer.local", "x.onion", "nothing.invalid", "localhost", "host.localhost", "in-addr.arpa",
    "1.168.192.in-addr.arpa", "example.test", "-acme.com", "acme-.com", "acme.-com", "acme..com",
    ".acme.com", "acme.com.", "acme", "[127.0.0.1]", "[IPv6:::1]", "acme.com ", "ac me.com",
    "example。com", "example．com", "example｡com", "ｅｘａｍｐｌｅ.com", "a" * 63 + ".com",
    "a" * 64 + ".com", ("a" * 60 + ".") * 4 + "com", "acme.co\u200d.uk", "ac\u200dme.com",
    "a\u00b7b.com", "l\u00b7l.cat", "\u0661\u0662.com", "\u05d0\u05d1.com", "a\u05d0.com", "ex\u0301ample.com",
    "acme.com\u0000", "acme\u2024com", "acme.xn--p1ai", "xn--e1afmkfd.xn--p1ai", "acme.co.-uk",
]


def answer(address, test_environment=False):
    try:
        v = validate_email(address, check_deliverability=False, strict=True, test_environment=test_environment)
        return {"input": address, "valid": True, "ascii_domain": v.ascii_domain.lower()}
    except EmailNotValidError as e:
        return {"input": address, "valid": False, "ascii_domain": None, "why": str(e)}


def corpus():
    seen = set()
    cases = []

    def add(address):
        if address not in seen:
            seen.add(address)
            cases.append(answer(address))

    for local in LOCALS:
        add(local + "@example.com")
    for domain in DOMAINS:
        add("john@" + domain)
    for c in map(chr, range(0x20, 0x7F)):
        add("a" + c + "b@example.com")
        add("john@ex" + c + "ample.com")
    for c in "äßçøłđħıĳœæ中文한글ひカ٣۳१०ΩωЖж€✓☃♥\u00b7\u0640\u200c\u2060\ufeff\ue000\U000e0001\U0010fffd":
        add("a" + c + "b@example.com")
        add("john@ex" + c + "ample.com")
    add("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com")  # 254 bytes
    add("a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com")  # 255 bytes
    add("no-at-sign.example.com")
    add("two@@example.com")
    add("a@b@example.com")
    add("John Smith <john@example.com>")
    rng = random.Random(20261206)
    for _ in range(3000):
        add(rng.choice(LOCALS) + rng.choice(["", ".", "+", "-"]) + rng.choice(LOCALS[:24]) + "@"
            + rng.choice(["", "mail.", "a-b.", "xn--"]) + rng.choice(DOMAINS))
    return cases


if __name__ == "__main__":
    cases = corpus()
    # .test: RFC 6761 6.2 test names, ordinary for us; email-validator refuses them.
    # The answer for them is the reference's own with `test_environment=True`.
    for case in cases:
        if case["input"].rpartition("@")[2].lower().endswith(".test"):
            case["as_ordinary_name"] = answer(case["input"], test_environment=True)
    json.dump({"version": VERSION, "cases": cases}, sys.stdout, ensure_ascii=False)
