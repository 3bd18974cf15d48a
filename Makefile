# ITSM Platform. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Tests run on PostgreSQL and Redis on 127.0.0.1 unless the environment says otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/itsm_db
TEST_REDIS_URL ?= redis://127.0.0.1:6379/8
# `make test` runs the suite in this many pytest-xdist workers, each with its own test database, Redis databases
# and var directory (tests/parallel.py); TEST_WORKERS=0 runs it in one process, one test after another.
TEST_WORKERS ?= 4

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...).")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the pinned requirements

.PHONY: run
run: venv ## Start the API (127.0.0.1:8000, PORT overrides), a Celery worker and Celery Beat; Ctrl-C stops all
	@mkdir -p var
	$(PY) manage.py ensure_database
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py setup_demo
	PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/var/prometheus} \
		ITSM_LOG_FORMAT=$${ITSM_LOG_FORMAT:-plain} exec $(PY) scripts/run_platform.py

.PHONY: test
test: venv ## Run the test suite in TEST_WORKERS parallel workers (0: serially) against PostgreSQL and Redis
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: venv ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: types
types: venv ## mypy with the Django and DRF plugins
	$(BIN)/mypy

.PHONY: migrations-check
migrations-check: venv ## Fail if a model change has no migration
	$(PY) manage.py makemigrations --check --dry-run

OPS_VENV := .venv-ops
OPS_STAMP := $(OPS_VENV)/.installed

$(OPS_STAMP): requirements-ops.txt
	test -x $(OPS_VENV)/bin/python || $(PYTHON) -m venv $(OPS_VENV)
	$(OPS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OPS_VENV)/bin/python -m pip install --quiet -r requirements-ops.txt
	touch $(OPS_STAMP)

.PHONY: ops-check
ops-check: $(OPS_STAMP) ## Validate Dockerfile, compose, nginx/, k8s/, monitoring/ offline (and that each validator bites)
	$(OPS_VENV)/bin/python scripts/validate_ops.py
	$(OPS_VENV)/bin/python scripts/validate_ops.py --self-test

.PHONY: operator-manifests
operator-manifests: $(OPS_STAMP) ## Regenerate the Prometheus Operator component's rules and dashboards from monitoring/
	$(OPS_VENV)/bin/python scripts/ops_operator.py generate

.PHONY: bench
bench: venv ## API benchmark: seed 1,000,000 tickets (database itsm_bench), gunicorn + wrk, table of medians
	$(PY) -m bench.run $(BENCH_ARGS)

.PHONY: bench-portal
bench-portal: venv ## The portal's server time for my tickets and a ticket's page, on the bench database (--smoke: 20,000)
	$(PY) -m bench.portal_bench $(BENCH_ARGS)

.PHONY: bench-mail
bench-mail: venv ## Mail intake in messages per second for one worker (Dovecot on loopback), against a bare floor
	$(PY) -m bench.mail_bench $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: venv ## The API benchmark on 20,000 tickets, 1 run of 3 s per scenario (about a minute)
	$(PY) -m bench.run --smoke $(BENCH_ARGS)

.PHONY: check
check: lint types migrations-check ops-check test ## Everything CI runs

.PHONY: clean
clean: ## Remove the embedded database, broker files and caches (not .venv)
	rm -rf var staticfiles .pytest_cache .mypy_cache .ruff_cache
