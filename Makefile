# Every target installs into .venv/ first (with the pinned versions in constraints.txt),
# so `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

# glibc's malloc returns big LSTM/batch buffers to the OS after every step (mmap threshold),
# which doubles epoch time at batch >= 128 here; keep them in the heap instead.
export MALLOC_MMAP_THRESHOLD_ ?= 1073741824
export MALLOC_TRIM_THRESHOLD_ ?= 1073741824

.PHONY: demo test lint install clean ui bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade "pip>=24"
	$(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lstmpaths-data describe synthetic
	$(BIN)/lstmpaths-run

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest

# Speed as ratios against plain PyTorch loops, measured in one run (not a test).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# The MLflow UI on the project's store, bound to loopback only.
ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
