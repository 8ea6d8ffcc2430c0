# Two commands on a fresh machine: `make run` and `make test`. Nothing here needs a hand install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test test-slow lint typecheck pytest install install-dev migrate seed-demo documents clean bench bench-import bench-fhir bench-workloads bench-q5 bench-booking bench-subscriptions bench-audit browser console console-unit cluster cluster-test nginx screenshots

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The app runs from the repository root: only its dependencies are installed, never the app itself.
$(VENV)/.deps-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	touch $@

$(VENV)/.deps-dev: pyproject.toml $(VENV)/.deps-run
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['optional-dependencies']['dev']))" > $(VENV)/requirements-dev.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-dev.txt
	touch $@

install: $(VENV)/.deps-run
install-dev: $(VENV)/.deps-dev

migrate: install
	$(PY) server.py migrate

seed-demo: migrate
	$(PY) server.py seed-demo

# The mini-program's trusted documents (clients/mini-program/manifest.json), so its sessions can run them.
documents: migrate
	$(PY) server.py load-documents --client mini-program clients/mini-program/manifest.json

run: seed-demo documents console
	$(PY) server.py serve --host $(HOST) --port $(PORT)

# The admin console (console/README.md), served at /admin/ from console/dist: built with Node 20 and npm when the
# build is missing or older than its sources (its code, its documents, the per-role SDL it is checked against).
CONSOLE_SOURCES := $(shell find console/src console/scripts console/public -type f -not -path 'console/src/gql/*' 2>/dev/null) \
	console/index.html console/vite.config.ts console/tsconfig.json console/tsconfig.app.json console/package.json \
	$(wildcard clients/schema/*.graphql)

console/node_modules/.package-lock.json: console/package-lock.json
	@command -v npm >/dev/null || { echo "the admin console needs Node 20 and npm (apt-get install nodejs npm, or nodejs.org)"; exit 1; }
	cd console && npm ci --no-audit --no-fund
	touch $@

console/dist/index.html: console/node_modules/.package-lock.json $(CONSOLE_SOURCES)
	cd console && npm run build
	touch $@

console: console/dist/index.html

# The console's unit tests (Vitest), with the document check against every role's SDL (npm run codegen).
console-unit: console/node_modules/.package-lock.json
	cd console && npm run codegen && npm test

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install-dev
	$(PY) -m mypy .

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser), and a Chinese font
# so the console's screenshots show its text.
browser:
	@if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then \
		echo "installing Debian's chromium and a CJK font for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; \
	fi

# The console's browser test (tests/test_console_browser.py) serves its build: built first, unit-tested first.
# CONSOLE_UNIT= skips the console's unit tests (CI runs them once, in the suite beside which the other runs).
CONSOLE_UNIT ?= console-unit
PYTEST_ARGS ?=
pytest: install-dev browser console $(CONSOLE_UNIT)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# The console's screenshots (console/screenshots/, shown in console/README.md), rendered again by its browser test.
screenshots: install-dev browser console
	CONSOLE_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_console_browser.py

# Tests that take minutes (a FHIR bulk export of a generated department of 10,000 patients): not in `make test`.
test-slow: install-dev
	RUN_SLOW=1 $(PY) -m pytest -q -m slow

# The multi-instance deployment on loopback (README "Cluster"): a three-node MariaDB Galera cluster (Debian's
# galera-4), Redis, two app instances and nginx in front; prints the URL, Ctrl-C stops it all. Its own ports and
# data directories: the machine's MariaDB (3306) and Redis (6379) are left alone.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "installing Debian's nginx-light for the balancer"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; }

cluster: install nginx
	$(PY) deploy/cluster.py up

# The cross-instance and fault tests on that cluster (tests/test_cluster_galera.py, about 10 minutes; not in
# `make test`): they print their counts; the last run's are in tests/results/cluster-*.md.
cluster-test: install-dev nginx
	RUN_CLUSTER=1 $(PY) -m pytest -q -s tests/cluster

# Benchmarks (bench/README.md): our API against a hand-written floor and a tutorial-style peer on MariaDB.
# BENCH_SCALE=full (100k patients, about 20 minutes) or small (10k); wrk comes from Debian when missing.
BENCH_SCALE ?= full
$(VENV)/.deps-bench: pyproject.toml $(VENV)/.deps-run
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['optional-dependencies']['bench']))" > $(VENV)/requirements-bench.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-bench.txt
	touch $@

# The PostGraphile peer (bench/postgraphile/: PostGraphile 4 from npm, pinned by its package-lock.json).
bench/postgraphile/node_modules/.installed: bench/postgraphile/package.json bench/postgraphile/package-lock.json
	cd bench/postgraphile && npm ci --no-audit --no-fund
	touch $@

bench: $(VENV)/.deps-bench bench/postgraphile/node_modules/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) bench/run.py --scale $(BENCH_SCALE)
	$(PY) bench/import_schedules.py --mysql
	$(PY) bench/fhir_export.py --scale $(BENCH_SCALE)

# importSchedules alone: a 10,000-row plan (CSV and XLSX) through the API, rows per second (bench/results/import.md).
bench-import: $(VENV)/.deps-run
	$(PY) bench/import_schedules.py
	$(PY) bench/import_schedules.py --mysql

# The FHIR bulk export alone (resources per second beside a raw-SQL floor, peak memory): bench/results/fhir-*.md
bench-fhir: $(VENV)/.deps-bench
	$(PY) bench/fhir_export.py --scale $(BENCH_SCALE)

# The new workloads beside their floors (bench/README.md "Workloads"): Q5's write, the booking rush, the
# subscription fan-out, the schedule import and audit verification, in one run: bench/results/workloads.{json,md}.
bench-workloads: $(VENV)/.deps-bench
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) bench/workloads.py

# One workload alone (full size), printing its JSON.
bench-q5: $(VENV)/.deps-bench
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) bench/wl_write.py
bench-booking: $(VENV)/.deps-run
	$(PY) bench/wl_booking.py
bench-subscriptions: $(VENV)/.deps-run
	$(PY) bench/wl_subscriptions.py
bench-audit: $(VENV)/.deps-run
	$(PY) bench/wl_audit.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
