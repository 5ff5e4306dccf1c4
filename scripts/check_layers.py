#!/usr/bin/env python3
"""Fails on an import that breaks the layering in layers.toml.

Reads every `crate::<module>` path in shared/src outside test code (modules and files
compiled only under `cfg(test)`) and checks, for each top-level module:
  - it is listed in exactly one layer;
  - it imports no module of a higher layer (unless listed in `exceptions` with a reason);
  - imports within a layer form no cycle.
`--self-test` plants one break of each kind in a scratch tree and checks all are caught.
"""
import os
import re
import sys
import tempfile
import tomllib

TEST_ATTR = re.compile(r"^\s*#\[cfg\((?:all\()?test\b")
MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_0-9]+)\s*(;|\{)")
PATH_ATTR = re.compile(r'^\s*#\[path\s*=\s*"([^"]+)"\]')
CRATE_PATH = re.compile(r"\bcrate::([a-z_0-9]+)")


STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'')


def strip_comments(line):
    """The line without string and char literals (their braces and `//` would mislead the
    brace count) and without its comment."""
    return STRING.sub('""', line).split("//", 1)[0]


def child_file(parent, name, path_attr):
    folder = os.path.dirname(parent)
    if path_attr:
        return os.path.normpath(os.path.join(folder, path_attr))
    stem = os.path.basename(parent)[:-3]
    if stem not in ("mod", "lib"):
        folder = os.path.join(folder, stem)
    flat = os.path.join(folder, name + ".rs")
    return flat if os.path.exists(flat) else os.path.join(folder, name, "mod.rs")


def scan(path):
    """(crate paths used outside test code, child files that are test-only)."""
    used, test_children = set(), []
    lines = open(path, encoding="utf-8").read().split("\n")
    i, depth_skip = 0, None
    pending_test, pending_path = False, None
    depth = 0
    while i < len(lines):
        line = strip_comments(lines[i])
        if depth_skip is not None:
            depth += line.count("{") - line.count("}")
            if depth <= depth_skip:
                depth_skip = None
            i += 1
            continue
        if TEST_ATTR.match(line):
            pending_test = True
            i += 1
            continue
        m = PATH_ATTR.match(lines[i])
        if m:
            pending_path = m.group(1)
            i += 1
            continue
        m = MOD_DECL.match(line)
        if pending_test and m:
            if m.group(2) == ";":
                test_children.append(child_file(path, m.group(1), pending_path))
            else:
                depth_skip = depth
                depth += line.count("{") - line.count("}")
            pending_test, pending_path = False, None
            i += 1
            continue
        if line.strip() and not line.strip().startswith("#["):
            pending_test, pending_path = False, None
        depth += line.count("{") - line.count("}")
        used.update(CRATE_PATH.findall(line))
        i += 1
    return used, test_children


def edges_of(src):
    test_only = set()
    scanned = {}
    for folder, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".rs"):
                p = os.path.normpath(os.path.join(folder, f))
                scanned[p] = scan(p)
                test_only.update(os.path.normpath(c) for c in scanned[p][1])
    # A test-only module's own children are test-only too.
    test_dirs = {os.path.dirname(p) for p in test_only if p.endswith("mod.rs")}
    edges = {}
    for p, (used, _) in scanned.items():
        if p in test_only or any(p.startswith(d + os.sep) for d in test_dirs):
            continue
        rel = os.path.relpath(p, src)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top == "lib":
            continue
        for target in used:
            if target != top:
                edges.setdefault((top, target), set()).add(rel)
    return edges


def check(src, rules):
    layer_of = {}
    problems = []
    for n, layer in enumerate(rules["layers"]):
        for module in layer:
            if module in layer_of:
                problems.append(f"{module} is listed in two layers")
            layer_of[module] = n
    allowed = {(e["from"], e["to"]) for e in rules.get("exceptions", []) if e.get("reason")}
    tops = {
        e.removesuffix(".rs")
        for e in os.listdir(src)
        if (e.endswith(".rs") and e != "lib.rs") or os.path.isdir(os.path.join(src, e))
    }
    for module in sorted(tops - layer_of.keys()):
        problems.append(f"{module}: a top-level module that layers.toml does not place")
    edges = edges_of(src)
    same_layer = {}
    for (a, b), files in sorted(edges.items()):
        if a not in layer_of or b not in layer_of:
            continue
        if layer_of[b] > layer_of[a] and (a, b) not in allowed:
            problems.append(f"{a} -> {b} points up a layer ({', '.join(sorted(files))})")
        elif layer_of[b] == layer_of[a]:
            same_layer.setdefault(a, set()).add(b)
    # Cycles within a layer: depth-first search for a back edge.
    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(same_layer.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                problems.append("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(same_layer):
        if node not in state:
            visit(node, [node])
    return problems


def self_test():
    rules = {"layers": [["low"], ["a", "b"], ["high"]], "exceptions": []}
    cases = {
        "points up a layer": {"low.rs": "use crate::high::X;\n", "a.rs": "", "b.rs": "", "high.rs": ""},
        "import cycle": {"low.rs": "", "a.rs": "use crate::b::X;\n", "b.rs": "fn f() { crate::a::g() }\n", "high.rs": ""},
        "does not place": {"low.rs": "", "a.rs": "", "b.rs": "", "high.rs": "", "stray.rs": ""},
    }
    clean = {
        "low.rs": "#[cfg(test)]\nmod tests {\n    use crate::high::X;\n}\n",
        "a.rs": "#[cfg(test)]\nmod helpers;\n// crate::high is mentioned in a comment\nuse crate::low::Y;\n",
        "a/helpers.rs": "use crate::high::Z;\n",
        "b.rs": "use crate::a::Q;\n",
        "high.rs": "use crate::low::Y;\n",
    }
    failures = 0
    for expect, tree in list(cases.items()) + [("", clean)]:
        with tempfile.TemporaryDirectory() as d:
            for name, text in tree.items():
                os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
                open(os.path.join(d, name), "w").write(text)
            found = check(d, rules)
            ok = any(expect in p for p in found) if expect else not found
            print(("ok  " if ok else "FAIL"), expect or "clean tree passes", found)
            failures += not ok
    return failures


def main():
    if "--self-test" in sys.argv:
        sys.exit(1 if self_test() else 0)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "layers.toml"), "rb") as f:
        rules = tomllib.load(f)
    problems = check(os.path.join(root, "shared", "src"), rules)
    for p in problems:
        print(f"layers: {p}")
    if problems:
        print(f"layers: {len(problems)} problem(s); the rules are in layers.toml")
        sys.exit(1)
    print("layers: every import follows layers.toml")


if __name__ == "__main__":
    main()
