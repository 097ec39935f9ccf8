# sceau: the two commands a newcomer needs are `make run` and `make test`.
# GNU make. Every recipe runs in bash with -e and pipefail, so a failing command
# anywhere in a pipeline (cargo test | tee …) fails the target.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Where cargo builds; honours a CARGO_TARGET_DIR set in the environment.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
SCEAU := $(TARGET_DIR)/debug/sceau

# Development instance (make run).
DEV_CONFIG := deploy/sceau.dev.toml
HSM_DIR := var/softhsm

# Debian packages, by name. What running needs: the embedded HSM (SoftHSMv2),
# and curl and openssl for the commands `make run` prints.
RUN_PACKAGES := softhsm2 openssl curl
# What the test suite adds: Python for its tools, the PDF checkers (qpdf,
# poppler's pdfsig and pdfinfo; Ghostscript, MuPDF and poppler's cairo output as
# corpus producers) and the browser (also a corpus producer: print to PDF).
TEST_PACKAGES := python3 python3-venv qpdf poppler-utils ghostscript chromium mupdf-tools
# Python test tools: the top-level pins are tests/python/requirements.in, the
# whole tree with hashes is the lock (`make python-lock` regenerates it). Tests
# find them on PATH through .venv/bin.
VENV := .venv
PY_LOCK := tests/python/requirements.lock
# pip-compile, for `make python-lock` only.
PIP_TOOLS := pip-tools==7.5.2
# The test OpenID provider (node oidc-provider, versions locked in its package-lock.json).
TEST_IDP := tests/oidc-provider
# playwright-core driving the system Chromium for the /docs test (no browser download).
DOCS_PAGE := tests/docs-page
# playwright-core and axe-core for the portal's flows in Chromium.
PORTAL_BROWSER := tests/portal-browser
# pdf-lib, PDFKit and jsPDF for the seal corpus (versions locked in its package-lock.json).
PDF_PRODUCERS := tests/pdf-producers

# PostgreSQL for the `_on_postgres` tests.
PG_HOST := 127.0.0.1
PG_PORT := 5432
TEST_DATABASE_URL := postgres://postgres@$(PG_HOST):$(PG_PORT)/test
TEST_LOG := var/test.log

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help run test smoke build lint bench bench-ocsp bench-seal deps deps-check run-deps test-deps apt-install venv idp python-lock postgres clean reset

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: run-deps build ## build and serve the development instance (tokens and CA made on first start)
	@if [ ! -f $(HSM_DIR)/softhsm2.conf ]; then \
	  echo "first start: creating SoftHSM tokens in $(HSM_DIR)"; \
	  hsm-sim/create-tokens.sh $(HSM_DIR) >/dev/null; \
	fi
	SOFTHSM2_CONF=$(CURDIR)/$(HSM_DIR)/softhsm2.conf $(SCEAU) serve --config $(DEV_CONFIG)

test: deps deps-check postgres ## fmt, clippy, unit and integration tests (SQLite and PostgreSQL)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --features dev-idp -- -D warnings
	@mkdir -p $(dir $(TEST_LOG))
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	SCEAU_TEST_DATABASE_URL=$(TEST_DATABASE_URL) \
	$(if $(CI),SCEAU_REQUIRE_PG=1) \
	cargo test --workspace --all-targets --features testing,dev-idp 2>&1 | tee $(TEST_LOG)
	@if [ -n "$(CI)" ]; then \
	  if grep -Eq 'test .*_on_postgres.* \.\.\. ok' $(TEST_LOG); then \
	    echo "PostgreSQL suite ran: $$(grep -Ec 'test .*_on_postgres.* \.\.\. ok' $(TEST_LOG)) test(s) passed"; \
	  else \
	    echo "CI: no test ending in _on_postgres passed; the PostgreSQL suite did not run" >&2; \
	    exit 1; \
	  fi; \
	fi
	.ci/smoke-make-run

smoke: build ## make run from a fresh clone serves /readyz and the root certificate
	.ci/smoke-make-run

build: ## compile the service (debug)
	cargo build --features dev-idp

lint: ## formatting and clippy, warnings as errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --all-targets --features dev-idp -- -D warnings

bench: deps postgres ## journal appends/s; certificates issued/s against raw HSM rates; OCSP load; seals
	SCEAU_TEST_DATABASE_URL=$(TEST_DATABASE_URL) cargo bench --bench journal
	cargo bench --bench issuance
	$(MAKE) bench-ocsp
	$(MAKE) bench-seal

bench-seal: deps ## hash seals/s against raw C_Sign; PAdES time and memory against pyHanko on large files
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo bench --bench seal_load

# The load tool is wrk (Debian package), installed here only: `make test` does not need it.
bench-ocsp: run-deps ## OCSP responses/s under wrk: cached vs static and openssl ocsp, nonce vs raw C_Sign
	@command -v wrk >/dev/null || { \
	  echo "installing wrk"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; \
	}
	cargo bench --bench ocsp_load

deps: run-deps test-deps venv idp ## install what is missing (quiet when everything is there)
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.94 or later from https://rustup.rs" >&2; exit 1; }

# Each installs the Debian packages of its list that are missing.
run-deps:
	@$(MAKE) apt-install PACKAGES="$(RUN_PACKAGES)"

test-deps:
	@$(MAKE) apt-install PACKAGES="$(TEST_PACKAGES)"

apt-install:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The Python tools exactly as locked: every package with its hash, nothing
# resolved at install time (--no-deps; `pip check` then proves the tree is
# whole). The stamp is the lock's digest, so a new lock rebuilds .venv from
# empty (--clear) and nothing of the old one lingers.
venv:
	@if [ "$$(cat $(VENV)/.sceau-lock 2>/dev/null)" != "$$(sha256sum < $(PY_LOCK))" ]; then \
	  echo "installing the Python test tools in $(VENV) from $(PY_LOCK)"; \
	  python3 -m venv --clear $(VENV); \
	  $(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps -r $(PY_LOCK); \
	  $(VENV)/bin/pip check --disable-pip-version-check >/dev/null; \
	  sha256sum < $(PY_LOCK) > $(VENV)/.sceau-lock; \
	fi

# What is installed is what the locks name: in .venv, every distribution at
# its locked version and nothing unlocked; in each node tree, `npm ls` finds
# nothing missing, extraneous or of another version than package-lock.json.
deps-check: ## the installed test tools are exactly the locked ones
	@$(VENV)/bin/python tests/python/check_lock.py $(PY_LOCK)
	@for dir in $(TEST_IDP) $(DOCS_PAGE) $(PORTAL_BROWSER) $(PDF_PRODUCERS); do \
	  npm ls --prefix $$dir --all >/dev/null || { echo "$$dir/node_modules differs from its package-lock.json" >&2; exit 1; }; \
	done
	@echo "deps-check: .venv and the node tools match their locks"

# Regenerates the Python lock from tests/python/requirements.in: the whole
# dependency tree, each package with the hashes of every file the index has
# for it. Run after changing requirements.in, and commit both files.
python-lock: ## regenerate tests/python/requirements.lock from requirements.in
	rm -rf var/pip-tools
	python3 -m venv var/pip-tools
	var/pip-tools/bin/pip install -q --disable-pip-version-check $(PIP_TOOLS)
	cd tests/python && env -u PIP_FIND_LINKS ../../var/pip-tools/bin/pip-compile --quiet \
	  --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	  --output-file requirements.lock requirements.in
	rm -rf var/pip-tools

# npm ci from the lock file, again whenever the lock file changes.
idp:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "installing nodejs and npm"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; \
	}
	@for dir in $(TEST_IDP) $(DOCS_PAGE) $(PORTAL_BROWSER) $(PDF_PRODUCERS); do \
	  if [ ! -f $$dir/node_modules/.package-lock.json ] || [ $$dir/package-lock.json -nt $$dir/node_modules/.package-lock.json ]; then \
	    echo "installing the node test tools in $$dir"; \
	    npm ci --prefix $$dir --no-audit --no-fund --loglevel=error; \
	  fi; \
	done

# Starts the local cluster when nothing listens on $(PG_PORT), and makes sure the
# test database exists. Without PostgreSQL the _on_postgres tests skip (CI fails).
postgres:
	@reachable() { (exec 3<>/dev/tcp/$(PG_HOST)/$(PG_PORT)) 2>/dev/null; }; \
	if ! reachable && [ -d /etc/postgresql ]; then \
	  echo "starting PostgreSQL"; \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start || true; \
	  for _ in $$(seq 20); do reachable && break; sleep 0.5; done; \
	fi; \
	if reachable; then \
	  psql -h $(PG_HOST) -p $(PG_PORT) -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1 \
	    || psql -h $(PG_HOST) -p $(PG_PORT) -U postgres -qc 'CREATE DATABASE test' >/dev/null 2>&1 \
	    || echo "warning: cannot create database 'test' on $(PG_HOST):$(PG_PORT)" >&2; \
	else \
	  echo "warning: PostgreSQL is not reachable on $(PG_HOST):$(PG_PORT); PostgreSQL tests will skip" >&2; \
	fi

clean: ## remove build output and the test log (keeps var/: the dev CA and its tokens)
	cargo clean
	rm -f $(TEST_LOG)

reset: ## remove the development instance (var/: tokens, CA, database, journal)
	rm -rf var
