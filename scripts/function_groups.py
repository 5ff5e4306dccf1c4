"""Prints the Lambda function crates grouped by the features they enable on `leadpush`,
one group per line as cargo arguments (`-p a -p b`). Cargo unifies features within one
invocation, so building each group in its own invocation compiles every function with
exactly its own feature set, as `make build` does; a function whose feature set changes
moves to another group and is built with its new set.

Usage: function_groups.py [--without-features]   (run from anywhere; reads `cargo metadata`)
  --without-features: only the group that enables no feature of `leadpush` (the library
  as most Lambdas build it), for `make clippy-lambda`.
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


if __name__ == "__main__":
    found = groups()
    if sys.argv[1:] == ["--without-features"]:
        found = {key: names for key, names in found.items() if not key[1]}
        if len(found) != 1:
            sys.exit(f"expected one group without features, found {len(found)}")
    elif sys.argv[1:]:
        sys.exit(__doc__)
    for _, names in sorted(found.items()):
        print(" ".join(f"-p {n}" for n in sorted(names)))
