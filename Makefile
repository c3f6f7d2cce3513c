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

test: setup
	$(PY) -m ruff check .
	$(PY) -m compileall -q -j 0 actors runtime config bench examples tests > /dev/null
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
