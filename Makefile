# Leadpush. `make run` starts the whole API locally; `make test` runs every test.
# Both install what they need (Python tools into .venv, pinned) on a fresh machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
PIP_PINS    := moto[server]==5.2.5 cfn-lint==1.58.0 dnslib==0.9.26 aiosmtpd==1.4.6 schemathesis==4.32.5 hypothesis==6.170.17 aws-sam-translator==1.115.0 phonenumbers==9.0.42 email-validator==2.4.0 disposable-email-domains==0.0.293
LAMBDA_PINS := cargo-lambda==1.9.2
ADDR        ?= 127.0.0.1:3000
DATA_DIR    ?= .leadpush
# Lambda functions (crates under functions/, except the CLI and the console, whose size
# is printed last).
FUNCTIONS   := $(filter-out leadpush console,$(notdir $(wildcard functions/*)))
CONSOLE_NPM := console/node_modules/.installed
CHROMIUM    ?= /usr/bin/chromium
# `make build` fails when a stripped arm64 bootstrap is larger than this many MiB, so a
# dependency that bloats every Lambda is caught at build time, not in production; the
# functions in BOOTSTRAP_SIZE_EXEMPT (phone metadata, a regex engine and, for the workers,
# the DNS resolver, SMTP probe and crawler) are printed only. Measured sizes and what
# keeps them small: docs/benchmarks.md. The largest checked ones measure 6.23 MiB
# (api-requests) and 6.33 (enrich-worker): 6.5 sits just above them, to catch the next jump.
MAX_BOOTSTRAP_MB ?= 6.5
BOOTSTRAP_SIZE_EXEMPT := finders finder-worker workflow-worker

.PHONY: help run check test test-build test-run conformance test-console test-lambdas console-screenshots console-vendor disposable-domains chromium lint lint-static clippy clippy-workspace clippy-lambdas openapi build bench invoke deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.installed: Makefile $(VENV)/bin/python
	@# --no-compile: Python compiles the modules the tests import on first use; compiling
	@# all of moto, botocore and cfn-lint up front cost 12 s of a fresh `make test`.
	$(VENV)/bin/pip install --quiet --no-compile --disable-pip-version-check $(PIP_PINS)
	touch $@

# cargo-lambda alone: `make build` needs none of the test tools.
$(VENV)/.lambda-installed: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(LAMBDA_PINS)
	touch $@

run: ## Build and start `leadpush serve` on the embedded store (ADDR, DATA_DIR)
	cargo run -p leadpush-cli -- serve --addr $(ADDR) --data-dir $(DATA_DIR)

check: $(VENV)/.installed ## The fast inner loop: rustfmt, the layer rules, clippy and the library's unit tests
	cargo fmt --all -- --check
	$(PY) scripts/check_layers.py
	@# --workspace, as `make test` builds it: the same features, so a tree warmed by
	@# either serves both.
	cargo clippy --workspace --all-targets -- -D warnings
	@scripts/with_moto.sh $(PY) cargo test -q --workspace --lib

# `make test` builds and runs its Rust targets with clippy-driver as the compiler of the
# workspace's crates, warnings denied (scripts/clippy_wrapper.sh): every target the tests
# build is linted as it is built, which saves `cargo clippy`'s second pass over every
# dependency (about 75 s fresh). Both steps must pass the same wrapper, or the run rebuilds.
TEST_CARGO := env RUSTC_WORKSPACE_WRAPPER=$(CURDIR)/scripts/clippy_wrapper.sh cargo

test: ## Every test: unit, contract (SQLite + moto), black-box, events, browser, lint
	@# The build beside the Python tools, the static checks and the console's npm packages,
	@# which use one core between them; each part's output is printed whole when it ends
	@# (-O). Then the tests. The run is CPU-bound on 2 cores: anything run beside the tests
	@# slows them about as much as it saves (docs/benchmarks.md).
	@$(MAKE) -j3 -O --no-print-directory test-build lint-static $(CONSOLE_NPM)
	@$(MAKE) --no-print-directory test-run
	@# The browser tests use the `leadpush` binary the steps above built.
	@$(MAKE) --no-print-directory test-console BUILT=1

test-build: ## Build (and lint) every target `make test` runs, without running them
	$(TEST_CARGO) test --workspace --no-run
	@$(MAKE) --no-print-directory test-lambdas

# Every Lambda as `make build` builds it (one invocation, no feature of the library, so
# every `cfg(not(feature = ...))` branch compiles and is linted), in debug: the bootstraps
# that tests/functions_as_deployed.rs starts with the events/ samples. `test-build-deps`
# gives third-party crates the features the test build gave them, so this compiles only
# the library and the mains (scripts/lambda_builds.py --check-shared holds it so).
test-lambdas: ## Build (and lint) every Lambda's debug bootstrap for the tests
	$(TEST_CARGO) build $$(python3 scripts/lambda_builds.py) --features leadpush/test-build-deps

test-run: $(VENV)/.installed test-lambdas ## Run the unit, contract, black-box and events tests on moto (building what is missing)
	@# Most tests wait on servers, not the CPU: 4 at a time on 2 cores.
	@scripts/with_moto.sh $(PY) $(TEST_CARGO) test --workspace -- --test-threads 4

# The long conformance run (tests/blackbox/conformance.rs): schemathesis against `leadpush
# serve` on the embedded store, at least 50,000 cases in every phase (coverage, fuzzing,
# stateful), 0 failures. 10 to 30 minutes; its JSON report stays in the target directory.
conformance: $(VENV)/.installed ## The long OpenAPI conformance run (>= 50,000 cases, every phase) on the embedded store
	LEADPUSH_SCHEMATHESIS_REPORT=$(abspath $(or $(CARGO_TARGET_DIR),target))/conformance-report.json \
	  cargo test -p leadpush-cli --test blackbox -- --ignored --exact --nocapture \
	  conformance::the_openapi_document_holds_for_50_000_cases_on_the_embedded_store

# npm packages pinned by console/package-lock.json: the vendored libraries' sources and
# playwright-core (install scripts off: nothing downloads a browser or phones home).
$(CONSOLE_NPM): console/package.json console/package-lock.json
	npm ci --prefix console --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

chromium: ## Install Debian's chromium for the browser tests when it is missing
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test-console: $(CONSOLE_NPM) chromium ## Browser tests of the console: real Chromium against `leadpush serve`
	$(if $(BUILT),,cargo build -q -p leadpush-cli)
	CHROMIUM=$(CHROMIUM) node console/tests/browser.mjs --bin target/debug/leadpush --screenshots target/console-screenshots

console-screenshots: $(CONSOLE_NPM) chromium ## The browser tests, saving their screenshots as docs/console-*.png
	cargo build -q -p leadpush-cli
	CHROMIUM=$(CHROMIUM) node console/tests/browser.mjs --bin target/debug/leadpush --screenshots docs

console-vendor: $(CONSOLE_NPM) ## Refresh console/vendor from the pinned npm packages (after changing a pin)
	node console/tests/vendor.mjs --write

disposable-domains: $(VENV)/.installed ## Refresh the vendored disposable-domain list from the pinned PyPI package (after changing its pin)
	$(PY) scripts/vendor_disposable_domains.py

lint: lint-static clippy ## cfn-lint, the template checker, the layer rules, rustfmt and clippy (warnings are errors)

lint-static: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	@# The Lambdas' debug build shares every third-party crate with the test build.
	python3 scripts/lambda_builds.py --check-shared
	@# The SAM transform offline, references, parameter defaults, functions, HTTP timeouts, alarms.
	$(PY) scripts/check_template.py template.yaml
	$(PY) scripts/check_template.py --self-test template.yaml
	@# Imports follow the layers in layers.toml (and the checker catches what it should).
	$(PY) scripts/check_layers.py --self-test
	$(PY) scripts/check_layers.py
	cargo fmt --all -- --check

clippy: clippy-workspace clippy-lambdas

clippy-workspace:
	cargo clippy --workspace --all-targets -- -D warnings

clippy-lambdas: ## clippy on every Lambda as built (the library without features)
	cargo clippy $$(python3 scripts/lambda_builds.py) -- -D warnings

openapi: ## Regenerate docs/openapi.json (served at /openapi.json) from the routes
	LEADPUSH_WRITE_OPENAPI=1 cargo test -q -p leadpush --lib the_served_openapi_document

build: $(VENV)/.lambda-installed ## Release Lambda bootstraps for arm64 (target/lambda/<fn>/bootstrap), size-checked
	rustup target add aarch64-unknown-linux-gnu
	@# One cargo invocation for all 18 (scripts/lambda_builds.py): none enables a feature
	@# of the library, so they share one compile of it and of every crate under it; what
	@# each bootstrap links is what its `main` reaches (fat LTO drops the rest).
	@# Source paths (panic and log locations) keep only the crate's own part: this checkout's
	@# and the registry's prefixes are remapped away, about 60 KB per bootstrap. These flags
	@# replace cargo-lambda's own build.rustflags, so its target CPU is repeated here.
	cargo fetch
	@flags="-C target-cpu=neoverse-n1 --remap-path-prefix=$(CURDIR)/="; \
	for d in $${CARGO_HOME:-$$HOME/.cargo}/registry/src/*/; do flags="$$flags --remap-path-prefix=$$d="; done; \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$$flags" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  cargo lambda build --release --arm64 $$(python3 scripts/lambda_builds.py)
	@EXEMPT="$(BOOTSTRAP_SIZE_EXEMPT)" scripts/bootstrap_sizes.sh target/lambda $(MAX_BOOTSTRAP_MB) $(FUNCTIONS) console

bench: $(VENV)/.installed ## Benchmarks on an optimised build: figures beside their floors
	cargo build --profile perf -p leadpush-cli -p leadpush-bench
	@# Function bootstraps on their own, without the bench's features (as `make build` does).
	cargo build --profile perf -p leads -p ingest-leads -p lambda-floor
	@scripts/with_moto.sh $(PY) target/perf/leadpush-bench

invoke: $(VENV)/.installed ## One event through a function's real bootstrap, on moto: make invoke FN=leads EVENT=events/leads.get.json
	@test -n "$(FN)" && test -f "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=events/<file>.json" >&2; exit 2; }
	cargo build -q -p $(FN) --features leadpush/test-build-deps
	cargo build -q -p leadpush-bench
	@scripts/with_moto.sh $(PY) target/debug/leadpush-bench invoke $(FN) $(EVENT)

deploy: build ## sam deploy (needs AWS credentials and the SAM CLI; not run in CI)
	sam deploy --guided --template-file template.yaml

clean: ## Remove build output, the local store and the virtualenv
	cargo clean
	rm -rf $(VENV) $(DATA_DIR) console/node_modules
