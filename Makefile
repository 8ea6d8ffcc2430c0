# Two commands on a fresh machine: `make run` and `make test`. Nothing here needs a hand install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint typecheck pytest install install-dev migrate seed-demo clean bench bench-import browser

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

run: seed-demo
	$(PY) server.py serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: install-dev
	$(PY) -m mypy .

# Debian's Chromium for the GraphiQL browser test (Playwright drives it; it never downloads a browser).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

pytest: install-dev browser
	$(PY) -m pytest -q

test: lint typecheck pytest

# Benchmarks (bench/README.md): our API against a hand-written floor and a tutorial-style peer on MariaDB.
# BENCH_SCALE=full (100k patients, about 20 minutes) or small (10k); wrk comes from Debian when missing.
BENCH_SCALE ?= full
$(VENV)/.deps-bench: pyproject.toml $(VENV)/.deps-run
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['optional-dependencies']['bench']))" > $(VENV)/requirements-bench.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-bench.txt
	touch $@

bench: $(VENV)/.deps-bench
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(PY) bench/run.py --scale $(BENCH_SCALE)
	$(PY) bench/import_schedules.py --mysql

# importSchedules alone: a 10,000-row plan (CSV and XLSX) through the API, rows per second (bench/results/import.md).
bench-import: $(VENV)/.deps-run
	$(PY) bench/import_schedules.py
	$(PY) bench/import_schedules.py --mysql

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
