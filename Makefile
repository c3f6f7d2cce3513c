# One command each: `make run` sets up and runs the cluster, `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

# compileall before the tests: the suite starts many `python -m runtime` and client processes, and
# with PYTHONDONTWRITEBYTECODE set (as on CI machines) each would compile every module again
# (~0.15 s a start). Bytecode files are read even when writing them is off.

$(STAMP): pyproject.toml setup.py runtime/store/_fastlog.c runtime/store/_fsyncer.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m runtime

# The suite runs in $(TEST_WORKERS) worker processes (pytest-xdist): most tests wait on real
# processes, sockets and timers, so three workers fit two CPUs (8 min serial, ~2.5 min so). Tests
# marked `serial` (the chaos scenarios: their pass criteria include timing under faults) run
# afterwards, alone. Each run fails on zero tests (pytest's exit 5).
TEST_WORKERS ?= 3

test: setup
	$(PY) -m ruff check .
	$(PY) -m compileall -q -j 0 actors runtime config bench examples tests > /dev/null
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not serial"
	$(PY) -m pytest -m serial

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
