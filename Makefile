# The two commands a new user needs:
#   make run    run the service locally (auth-local, with its own PostgreSQL)
#   make test   set up everything the tests need, then run the whole suite
# See README.md.

VENV   := .venv
CARGO  ?= cargo
# nextest when installed (per-test processes, timeouts), plain cargo test otherwise.
RUNNER := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo "$(CARGO) nextest run --workspace --no-fail-fast" || echo "$(CARGO) test --workspace --no-fail-fast")

.PHONY: run test tools build lint sam-build lint-template bench bench-kdf bench-tools clean-tools

# One build serves `make run` and `make test`: cargo unifies features per command, so `run`
# builds exactly what `test` builds (every binary and test of the workspace) and then starts
# auth-local, rather than `cargo run -p auth-local`, which would recompile most dependencies.
run:
	$(CARGO) build --workspace --bins --tests
	./target/debug/auth-local

test: tools
	$(CARGO) build --workspace --bins --tests
	./target/debug/tempdb -- $(RUNNER)

build:
	$(CARGO) build --workspace --bins

# The house rules: rustfmt, clippy with warnings as errors, ruff on the Python under bench/
# and e2e/ (ruff.toml), and no import circle among those scripts.
lint: $(VENV)/.installed
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check bench e2e scripts/python-import-cycles
	python3 scripts/python-import-cycles bench e2e/python

# Python tools for the tests, in .venv (redone when requirements-test.txt changes),
# Chromium for the browser tests and its WebDriver (chromedriver, which Selenium drives for the
# session page test) when they are missing and we may install packages, qemu-user and the arm64
# C library to run the arm64 bootstraps `sam build` makes (and the aarch64 PBKDF2 tests), and the
# arm64 Rust target for `sam build` (installed once, before parallel builds race for it).
tools: $(VENV)/.installed
	@./scripts/install-package chromium
	@./scripts/install-package chromium-driver chromedriver
	@./scripts/install-package qemu-user-static qemu-aarch64-static
	@./scripts/install-package libc6-arm64-cross /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1
	@rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

$(VENV)/.installed: requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

# `sam build` of every function for arm64 (cargo-lambda + zig from .venv; no Docker).
sam-build: tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build

lint-template: tools
	$(VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint

# Everything in bench/RESULTS.md, beside the Flask original and a Node.js peer, in one run (about 20 minutes), and
# its charts (bench/charts/*.svg).
bench: tools bench-tools
	$(CARGO) build --release --workspace --bins
	./target/release/tempdb -- bench/.venv/bin/python bench/run.py

# One PBKDF2 hash against this CPU's SHA-256 floor (no database, no Python): run it on a Graviton
# instance to see the arm64 figure this machine cannot measure (docs/benchmarks.md, "PBKDF2 on Graviton").
bench-kdf:
	$(CARGO) build --release -p auth-bench --bin kdf
	./target/release/kdf

bench-tools: bench/.venv/.installed bench/node_peer/node_modules/.installed
	@./scripts/install-package wrk

# The Node.js peer's packages, exactly as bench/node_peer/package-lock.json pins them.
bench/node_peer/node_modules/.installed: bench/node_peer/package.json bench/node_peer/package-lock.json
	cd bench/node_peer && npm ci --no-audit --no-fund --omit=dev
	touch $@

# The Flask peer's requirements, and the charts' (bench/requirements.txt, kept apart so the peer's
# zip size counts only its own).
bench/.venv/.installed: bench/flask_peer/requirements.txt bench/requirements.txt
	python3 -m venv bench/.venv
	bench/.venv/bin/pip install --quiet --disable-pip-version-check -r bench/flask_peer/requirements.txt -r bench/requirements.txt
	touch $@

clean-tools:
	rm -rf $(VENV)
