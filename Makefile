# `make run` serves the function app locally; `make test` runs the test suite; `make bench`
# measures request cost and cold start and writes docs/benchmarks.md.
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

.PHONY: run database test bench infra-check clean

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

# Only the local FerretDB on 127.0.0.1:27017, for `func start` with local.settings.json.
database: $(VENV)/.installed $(FERRETDB)
	$(PY) -m cosync database

test: $(VENV)/.installed $(FERRETDB) infra-check
	$(PY) -m pytest

# Takes a few minutes; the test suite only runs its quick mode (bench/run.py --quick).
bench: $(VENV)/.installed $(FERRETDB)
	$(PY) bench/run.py

# checkov pins its own versions of packages that the app also uses (it would downgrade pytest
# and pycep-parser in .venv), so it lives in a virtual environment of its own.
CHECKOV_VENV := .venv-checkov

$(CHECKOV_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-infra.txt
	touch $@

# Static checks of the Bicep templates; fails on any failed check or any file checkov cannot
# parse. checkov stays offline: --skip-download keeps it from fetching guidelines and
# policies from its vendor's platform (BC_SKIP_MAPPING=TRUE sets the same switch in checkov
# 3.3), and CKV_SKIP_PACKAGE_UPDATE_CHECK=true stops its release look-up on PyPI at start.
infra-check: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE CKV_PARSE_ERROR_FAIL=true \
		$(CHECKOV_VENV)/bin/checkov --directory infra --framework bicep --skip-download --compact --quiet

clean:
	rm -rf $(VENV) .venv-checkov .data
