# Stagecraft — `make run` serves the app with demo data, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
PYTHON  ?= $(shell scripts/find-python)
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Test services (API.md): PostgreSQL and Redis on this machine; tests use their own Redis db.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/stagecraft
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15

.PHONY: help run serve worker test test-fast lint format install install-dev chromium clean

help:
	@echo "make run    serve Stagecraft on http://127.0.0.1:8000 (SQLite + local Redis, demo data)"
	@echo "make serve  production: DEBUG off, migrate + collectstatic, gunicorn with WEB_WORKERS on HOST:PORT"
	@echo "make worker production: one RQ worker for the jobs (run as many as you need)"
	@echo "make test   run the whole suite against PostgreSQL and Redis, browser tests included"
	@echo "make lint   ruff check + ruff format --check + mypy (services, selectors, engine, jobs)"

$(PY):
	@test -n "$(PYTHON)" || { scripts/find-python; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml | $(PY)
	$(UV) pip install --quiet --python $(PY) -r pyproject.toml
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(UV) pip install --quiet --python $(PY) -r pyproject.toml --extra dev
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: export DEBUG ?= 1
run: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py serve 127.0.0.1:8000

# Production (README, "Production"): DEBUG off, so SECRET_KEY (or SECRET_KEY_FILE),
# ALLOWED_HOSTS and DATABASE_URL / REDIS_URL come from the environment. collectstatic runs
# first, so the pages reference hashed, compressed files that WhiteNoise serves with
# far-future cache headers. Bind to loopback behind the TLS-terminating proxy by default.
# gunicorn's control socket is per port under var/ (its default, ~/.gunicorn/, is shared).
HOST        ?= 127.0.0.1
PORT        ?= 8000
WEB_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 + 1 )))
WEB_TIMEOUT ?= 120

serve: export DEBUG = 0
serve: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	exec $(VENV)/bin/gunicorn config.wsgi --bind $(HOST):$(PORT) --workers $(WEB_WORKERS) \
	  --timeout $(WEB_TIMEOUT) --access-logfile - --forwarded-allow-ips "$${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
	  --control-socket var/gunicorn-$(PORT).ctl

worker: export DEBUG = 0
worker: install
	exec $(PY) manage.py rqworker default exports imports webhooks --with-scheduler \
	  --worker-class queues.worker.PausableWorker

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core >/dev/null; \
	fi

# Two pytest-xdist workers: on two cores the suite waits much of the time (the browser, the
# live server, PostgreSQL, Redis). Each worker has its own test database, Redis db (counting
# down from TEST_REDIS_URL's, config/test_settings.py), media folder and live server.
# TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: install-dev chromium
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  $(PY) -m pytest -n $(TEST_WORKERS) --durations=15 $(PYTEST_ARGS)

# The suite without the browser tests.
test-fast: install-dev
	DATABASE_URL=$(TEST_DATABASE_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  $(PY) -m pytest -n $(TEST_WORKERS) -m "not e2e" $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) var
