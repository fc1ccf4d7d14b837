# The two commands (see README): `make run` and `make test`. Both set everything up first.
VENV ?= .venv
PY := $(VENV)/bin/python
IVR := $(VENV)/bin/ivr
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: setup run test lint bench

setup:
	bash scripts/bootstrap.sh

run: setup
	$(IVR) run

test: setup
	bash scripts/test.sh $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: setup
	$(PY) -m tests.bench.run_all $(BENCH_ARGS)
