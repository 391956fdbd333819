# The NAMD portal. `make demo` runs everything; `make test` runs the whole test suite.
# Both install what they need on a fresh Debian 12 (as root) and are safe to run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
export UV_LINK_MODE := copy

UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
LOCALCLUSTER := scripts/localcluster/localcluster
DEMO_CLUSTER_USERS := labadmin alice bob
WEB_PORT ?= 8000

.PHONY: help demo test stop status system browser venv services cluster migrate lint bench compose-test backup restore upgrade

help:
	@echo "make demo    set up and run the whole portal (web, Celery, PostgreSQL, Redis, local SLURM)"
	@echo "make test    set up the services and run the whole test suite"
	@echo "make stop    stop everything demo/test started"
	@echo "make status  show what is running"
	@echo "make lint    ruff"
	@echo "make bench   run the benchmarks"
	@echo "make compose-test  build and run the docker-compose deployment here and drive a job through it"
	@echo "make backup | make restore FILE=... | make upgrade   operate a docker-compose deployment (README)"

system:
	@scripts/system-packages

# Debian's Chromium and its matching driver, for the browser tests (tests/browser).
browser:
	@scripts/system-packages chromium chromium-driver

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	@$(VENV)/bin/uv sync --frozen --python $(PY) --quiet
	@touch $@

venv: $(VENV)/.synced

services: system venv
	@scripts/services start postgres redis smtp

cluster: system
	@$(LOCALCLUSTER) start
	@for user in $(DEMO_CLUSTER_USERS); do $(LOCALCLUSTER) add-user $$user >/dev/null; done

migrate: services
	@$(PY) manage.py migrate --noinput -v 0

demo: services cluster migrate
	@$(PY) manage.py seed_demo > /dev/null
	@$(PY) manage.py register_local_cluster $(DEMO_CLUSTER_USERS)
	@$(PY) manage.py load_builtin_templates > /dev/null
	@$(PY) manage.py collectstatic --noinput -v 0
	@PORTAL_WEB_PORT=$(WEB_PORT) scripts/services start worker beat web
	@echo
	@echo "The NAMD portal is running at http://127.0.0.1:$(WEB_PORT)/"
	@echo "  admin pages: http://127.0.0.1:$(WEB_PORT)/admin/   API docs: http://127.0.0.1:$(WEB_PORT)/api/v1/docs"
	@echo "Logins (username, password, role):"
	@$(PY) manage.py seed_demo
	@echo "Mails the portal sends (local SMTP server on 127.0.0.1:$${PORTAL_SMTP_PORT:-51025}): one .eml file each in $${PORTAL_VAR:-/var/lib/namd-portal}/mail/"
	@echo "Local SLURM cluster: ssh on 127.0.0.1:2222 as $(DEMO_CLUSTER_USERS) ($(LOCALCLUSTER) status)"
	@echo "Stop everything with: make stop"

test: services cluster browser
	@$(VENV)/bin/ruff check --quiet .
	@$(VENV)/bin/ruff format --check --quiet .
	@$(VENV)/bin/lint-imports --no-cache
	@$(PY) -m pytest -p no:cacheprovider

# The deployment, exercised: docker-compose.yml built on this machine (its own dockerd, a local Debian 12
# base image) and run with host networking; a real job driven through its TLS proxy (tests/test_compose_stack.py).
compose-test: services cluster
	@$(PY) -m pytest -p no:cacheprovider tests/test_compose_stack.py

# Operations on a docker-compose deployment; PORTAL_COMPOSE says how to reach it
# (default: docker-compose --env-file deploy.env).
backup:
	@scripts/compose/backup $(FILE)

restore:
	@scripts/compose/restore $(FILE)

upgrade:
	@scripts/compose/upgrade

stop:
	@scripts/services stop
	@$(LOCALCLUSTER) stop
	@scripts/compose/engine stop

status:
	@scripts/services status || true
	@$(LOCALCLUSTER) status || true

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

# Every module of bench/ that runs as a program (the others are their shared parts), bench/faults.py included.
bench: services cluster
	@for b in bench/*.py; do if grep -q '^if __name__ == "__main__":' $$b; then $(PY) -m bench.$$(basename $$b .py); fi; done
