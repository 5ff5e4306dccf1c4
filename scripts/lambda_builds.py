"""Prints the Lambda function crates as cargo arguments (`-p a -p b ...`), for `make build`
and `make test`, which build them all in one cargo invocation: no function enables a
feature of `leadpush` (`runtime::features` holds them to it), so all share one compile of
the library and of every crate under it.

Usage: lambda_builds.py [--check-shared]   (run from anywhere)
  --check-shared: fails when a third-party crate that both `make test`'s own build and its
  build of the Lambdas (`--features leadpush/test-build-deps`) compile gets other features
  in one of them (read from `cargo tree`). Cargo would then compile it, and every crate
  above it (the AWS SDK, the HTTP stack), twice in `make test`. The fix it prints goes in
  `test-build-deps` in shared/Cargo.toml.
"""

import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Crates under functions/ that are not Lambda functions.
NOT_FUNCTIONS = {"leadpush-cli"}
# The feature of `leadpush` that `make test`'s build of the Lambdas turns on.
TEST_BUILD_DEPS = "leadpush/test-build-deps"


def functions():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    functions_dir = ROOT / "functions"
    names = []
    for package in meta["packages"]:
        manifest = Path(package["manifest_path"])
        if manifest.parent.parent != functions_dir or package["name"] in NOT_FUNCTIONS:
            continue
        deps = [d for d in package["dependencies"] if d["name"] == "leadpush" and d["kind"] is None]
        if len(deps) != 1 or deps[0]["features"] or deps[0]["uses_default_features"]:
            sys.exit(f"{package['name']}: expected one dependency on leadpush, without features")
        names.append(package["name"])
    return sorted(names)


def crate_features(args, edges):
    """Each third-party crate that `cargo tree <args>` builds, as (name version, "host" or
    "target"), with its features. Host crates are proc macros, build dependencies and what
    they use: `cargo tree` shows them under a proc macro or a `[build-dependencies]` line."""
    target = f"{platform.machine()}-unknown-linux-gnu"
    out = subprocess.run(
        ["cargo", "tree", *args, "-e", edges, "--target", target, "--format", "{p}|{f}"],
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
        found.setdefault(crate, set()).update(f for f in features.replace(" (*)", "").split(",") if f)
    return found


def check_shared(names):
    # `cargo test --workspace`: every member with its dev-dependencies.
    tests = crate_features(["--workspace"], "normal,build,dev")
    lambdas = crate_features([a for n in names for a in ("-p", n)] + ["--features", TEST_BUILD_DEPS], "normal,build")
    problems = []
    for crate in sorted(set(tests) & set(lambdas)):
        if tests[crate] != lambdas[crate]:
            name, kind = crate
            only_tests = ",".join(sorted(tests[crate] - lambdas[crate])) or "none"
            only_lambdas = ",".join(sorted(lambdas[crate] - tests[crate])) or "none"
            problems.append(f"{name} ({kind}): only the test build has {only_tests}; only the Lambdas', {only_lambdas}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit("the Lambdas' test build would compile these crates again (see `test-build-deps` in shared/Cargo.toml)")
    print(f"{len(names)} functions share every third-party crate with the test build")


if __name__ == "__main__":
    names = functions()
    if sys.argv[1:] == ["--check-shared"]:
        check_shared(names)
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        print(" ".join(f"-p {n}" for n in names))
