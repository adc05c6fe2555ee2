# The suite's commands. `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SERVICES := users orders notifications
STAMP := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | cksum | cut -d' ' -f1)

.PHONY: help venv tools run test chaos bench migrate topology keys superuser clean contracts contracts-write catalogue lint

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements/base.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)  ## create .venv and install the pinned requirements

keys: venv  ## create the local RS256 key pair for tokens (kept if present)
	@$(PY) -m common.auth.keygen var/jwt

migrate: venv keys  ## migrate every service's database
	@for s in $(SERVICES); do $(PY) manage.py $$s migrate --noinput -v0 || exit 1; done

topology: venv  ## declare every service's queues on RabbitMQ (migrating old ones), set their policies
	@for s in $(SERVICES); do $(PY) manage.py $$s declare_topology --migrate || exit 1; done
	@$(PY) -m common.ops.rabbitmq_policies || echo "[topology] warning: no delivery-limit policy set" \
	  "(a message that keeps killing a worker is not parked by RabbitMQ); see docs/operations.md"

run: venv  ## set up and run the whole suite in the foreground, restarting what dies (Ctrl-C stops it)
	@$(PY) -m common.bus.amqp.connection
	@$(MAKE) --no-print-directory migrate topology
	@$(PY) -m common.ops.supervisor var/supervisord.conf
	@echo "users :8001  orders :8002  notifications :8003  flower :5555  (a process that dies is restarted)"
	@exec $(VENV)/bin/supervisord -n -c var/supervisord.conf

test: venv tools  ## set up and run every test against the real RabbitMQ and PostgreSQL
	@$(PY) -m tests.run $(if $(GROUPS),$(GROUPS)) $(if $(ARGS),-- $(ARGS))

chaos: venv  ## the fault matrix: every fault under load, checked for loss, duplicates and order (long)
	@$(PY) -m tests.chaos $(ARGS)

tools:  ## install the system tools the tests use (Chromium, promtool, Node and npm) if missing
	@bash tests/support/system-tools.sh

contracts: venv  ## check the committed JSON Schemas and AsyncAPI against the code (drift, breaking changes)
	@$(PY) manage.py users contracts check
	@command -v npm >/dev/null && command -v node >/dev/null || { echo "the AsyncAPI parser needs Node.js and npm: make tools installs them" >&2; exit 1; }
	@test -d tests/support/asyncapi/node_modules || npm ci --prefix tests/support/asyncapi --no-audit --no-fund --silent
	@node tests/support/asyncapi/check.mjs docs/asyncapi.yaml

contracts-write: venv  ## regenerate docs/ (JSON Schemas, AsyncAPI); refuses breaking changes to released versions
	@$(PY) manage.py users contracts write

catalogue: venv  ## print the event catalogue: type, versions, producer, consumers, queue
	@$(PY) manage.py users contracts catalogue

lint: venv  ## ruff, mypy --strict, import-linter, the contract gate (also part of make test)
	@$(PY) -m tests.run static

bench: venv  ## pipeline vs plain Celery vs raw AMQP, on the local RabbitMQ and PostgreSQL (a few minutes)
	@$(PY) -m common.bus.amqp.connection
	@$(PY) -m bench.run $(if $(REPEAT),--repeat $(REPEAT))

superuser: migrate  ## create an admin for one service: make superuser SERVICE=orders
	@$(PY) manage.py $(or $(SERVICE),users) createsuperuser

clean:  ## remove local databases, keys and mail (not the venv)
	rm -rf var
