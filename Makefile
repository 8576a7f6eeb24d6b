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

.PHONY: help run run-s3 serve worker test test-fast lint format install install-dev chromium clean

help:
	@echo "make run    serve Stagecraft on http://127.0.0.1:8000 (SQLite + local Redis, demo data)"
	@echo "make run-s3 as make run, the data in a bucket of a local S3 server (moto; a fresh demo each time)"
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

# The demo with its data in object storage (README, "Data storage"): moto's S3 server (a dev
# dependency) on 127.0.0.1:$(S3_PORT), in memory, so the demo's database starts afresh each time.
S3_PORT ?= 9100
run-s3: export DEBUG ?= 1
run-s3: export DATABASE_URL ?= sqlite:///$(CURDIR)/var/demo-s3.sqlite3
run-s3: export STAGECRAFT_STORAGE = s3
run-s3: export STAGECRAFT_S3_BUCKET ?= stagecraft
run-s3: export STAGECRAFT_S3_ENDPOINT_URL ?= http://127.0.0.1:$(S3_PORT)
run-s3: export STAGECRAFT_S3_REGION ?= us-east-1
run-s3: export STAGECRAFT_S3_ACCESS_KEY_ID ?= stagecraft
run-s3: export STAGECRAFT_S3_SECRET_ACCESS_KEY ?= stagecraft-local
run-s3: export STAGECRAFT_S3_ADDRESSING_STYLE ?= path
run-s3: export STAGECRAFT_CACHE_DIR ?= $(CURDIR)/var/demo-s3-cache
run-s3: install-dev
	@mkdir -p var && rm -rf var/demo-s3.sqlite3 var/demo-s3-cache
	$(PY) -m moto.server -H 127.0.0.1 -p $(S3_PORT) >var/moto.log 2>&1 & moto=$$!; \
	trap "kill $$moto 2>/dev/null" EXIT; \
	for i in $$(seq 100); do curl -sf -o /dev/null $(STAGECRAFT_S3_ENDPOINT_URL)/moto-api/ && break; sleep 0.1; done; \
	$(PY) manage.py storage --create-bucket && $(PY) manage.py migrate --noinput && \
	$(PY) manage.py seed_demo && $(PY) manage.py serve 127.0.0.1:8000

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
