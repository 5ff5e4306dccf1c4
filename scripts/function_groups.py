"""Prints the Lambda function crates grouped by the features they enable on `leadpush`,
one group per line as cargo arguments (`-p a -p b`). Cargo unifies features within one
invocation, so building each group in its own invocation compiles every function with
exactly its own feature set, as `make build` does; a function whose feature set changes
moves to another group and is built with its new set.

Usage: function_groups.py [--without-features | --check-aligned]   (run from anywhere)
  --without-features: only the group that enables no feature of `leadpush` (the library
  as most Lambdas build it), for `make clippy-lambda`.
  --check-aligned: fails when a third-party crate that two groups both build gets other
  features in one of them (read from `cargo tree` for the Lambdas' target). Cargo would
  then compile it, and every crate above it, once per group: the SDK stack again for each
  capability. The fix it prints goes under "Feature alignment" in shared/Cargo.toml.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Crates under functions/ that are not Lambda functions.
NOT_FUNCTIONS = {"leadpush-cli"}


def groups():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    functions_dir = ROOT / "functions"
    out = {}
    for package in meta["packages"]:
        manifest = Path(package["manifest_path"])
        if manifest.parent.parent != functions_dir or package["name"] in NOT_FUNCTIONS:
            continue
        deps = [d for d in package["dependencies"] if d["name"] == "leadpush" and d["kind"] is None]
        if len(deps) != 1:
            sys.exit(f"{package['name']}: expected one dependency on leadpush, found {len(deps)}")
        key = (deps[0]["uses_default_features"], tuple(sorted(deps[0]["features"])))
        out.setdefault(key, []).append(package["name"])
    return out


# The Lambdas' target (`make build`); host crates (proc macros, build scripts) are listed
# with it by `cargo tree` and aligned the same way.
TARGET = "aarch64-unknown-linux-gnu"


def crate_features(names):
    """Each third-party crate the group `names` builds, as (name version, "host" or
    "target"), with its features. Host crates are proc macros, build dependencies and what
    they use: `cargo tree` shows them under a proc macro or a `[build-dependencies]` line."""
    args = [a for n in names for a in ("-p", n)]
    out = subprocess.run(
        ["cargo", "tree", *args, "-e", "normal,build", "--target", TARGET, "--format", "{p}|{f}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    found = {}
    host_at = []  # for each depth on the current path: is that node built for the host?
    section_host = {}  # depth -> a `[build-dependencies]` line opened a host section there
    for line in out.splitlines():
        body = line.lstrip("│├└─ \u00a0")
        depth = (len(line) - len(body)) // 4
        del host_at[depth:]
        for d in [d for d in section_host if d > depth]:
            del section_host[d]
        if body.startswith("["):
            # A section header sits one level left of the entries it heads.
            section_host[depth + 1] = body.startswith("[build-dependencies]")
            continue
        package, _, features = body.partition("|")
        host = (bool(host_at) and host_at[-1]) or section_host.get(depth, False) or "(proc-macro)" in package
        host_at.append(host)
        if not _ or "(/" in package:  # workspace crates have a path
            continue
        crate = (" ".join(package.split()[:2]), "host" if host else "target")
        found[crate] = frozenset(f for f in features.replace(" (*)", "").split(",") if f)
    return found


def check_aligned(found):
    built = {key: crate_features(names) for key, names in found.items()}
    by_crate = {}
    for key, crates in built.items():
        for crate, features in crates.items():
            by_crate.setdefault(crate, {})[key] = features
    problems = []
    for (crate, platform), sets in sorted(by_crate.items()):
        if len(set(sets.values())) > 1:
            union = sorted(set().union(*sets.values()))
            groups_with = ", ".join(" ".join(found[key]) + ": " + (",".join(sorted(f)) or "none")
                                    for key, f in sorted(sets.items()))
            problems.append(f"{crate} ({platform}): align on {', '.join(union)}\n    ({groups_with})")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit("feature sets are not aligned (see `Feature alignment` in shared/Cargo.toml)")
    print(f"{len(built)} feature sets, third-party crates built alike in each")


if __name__ == "__main__":
    found = groups()
    if sys.argv[1:] == ["--check-aligned"]:
        check_aligned(found)
        sys.exit(0)
    if sys.argv[1:] == ["--without-features"]:
        found = {key: names for key, names in found.items() if not key[1]}
        if len(found) != 1:
            sys.exit(f"expected one group without features, found {len(found)}")
    elif sys.argv[1:]:
        sys.exit(__doc__)
    for _, names in sorted(found.items()):
        print(" ".join(f"-p {n}" for n in sorted(names)))
