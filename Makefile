# `make run` serves the function app locally; `make test` runs the test suite.
# Both create .venv, install the requirements and, unless MONGODB_URI is set, build and start
# a local FerretDB (a MongoDB-protocol server) on 127.0.0.1.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FERRETDB := .data/bin/ferretdb
PORT ?= 7071

# Keep every tool offline: no telemetry, no update checks.
export DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export FERRETDB_BIN := $(abspath $(FERRETDB))

.PHONY: run test infra-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

$(FERRETDB):
	scripts/install-ferretdb.sh $(FERRETDB)

run: $(VENV)/.installed $(FERRETDB)
	$(PY) -m cosync init --if-missing
	$(PY) -m cosync serve --port $(PORT) --local-database

test: $(VENV)/.installed $(FERRETDB) infra-check
	$(PY) -m pytest

# Static checks of the Bicep templates (filled in with the infrastructure).
infra-check: $(VENV)/.installed

clean:
	rm -rf $(VENV) .data
