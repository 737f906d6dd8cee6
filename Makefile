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

.PHONY: demo test test-slow test-all lint install clean ui dashboard bench validate install-cluster test-cluster gallery

CLUSTER_VENV := .venv-cluster
CLUSTER_STAMP := $(CLUSTER_VENV)/.installed-stamp

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade "pip>=24"
	$(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# A second environment with the cluster extra (Ray, submitit, psycopg2): hydra-ray-launcher pins
# cloudpickle<3, which the main environment's joblib 1.6 cannot share.
$(CLUSTER_STAMP): pyproject.toml constraints-cluster.txt
	test -x $(CLUSTER_VENV)/bin/python || $(PYTHON) -m venv $(CLUSTER_VENV)
	$(CLUSTER_VENV)/bin/python -m pip install -qq --upgrade "pip>=24"
	$(CLUSTER_VENV)/bin/python -m pip install -qq -c constraints-cluster.txt -e '.[dev,cluster]'
	touch $(CLUSTER_STAMP)

install-cluster: $(CLUSTER_STAMP)

demo: $(STAMP)
	$(BIN)/lstmpaths-data describe synthetic
	$(BIN)/lstmpaths-run

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs

# Two tiers: `make test` (lint + every test not marked slow) while you work; `make test-slow`
# runs the end-to-end sweeps, reports, kills and the browser; CI runs both (.ci/run). Each ends
# with its 10 slowest tests, so the CI log shows where the tier's time goes.
test: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow and not cluster" --durations=10

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow and not cluster" --durations=10

test-all: $(STAMP) lint
	$(BIN)/python -m pytest

# The smoke sweep on a local Ray instance, tracked by an mlflow server on PostgreSQL.
test-cluster: $(CLUSTER_STAMP)
	$(CLUSTER_VENV)/bin/python -m pytest -m cluster -s tests/test_cluster.py

# Speed as ratios against plain PyTorch loops, measured in one run (not a test).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# The planted-truth check over {24, 48, 94} signs x {12, 27} recordings x 2 generator seeds.
validate: $(STAMP)
	$(BIN)/lstmpaths-validate

# The README's gallery, from the newest real-data robustness job and report in mlruns/.
gallery: $(STAMP)
	$(BIN)/python docs/make_gallery.py

# The MLflow UI on the project's store ($MLFLOW_TRACKING_URI when set), bound to loopback only.
ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlruns/mlflow.db} --host 127.0.0.1 --port 5000

# optuna-dashboard on the tune sweep's study (beside the default store), loopback only.
OPTUNA_STORAGE ?= sqlite:///$(CURDIR)/mlruns/optuna.db
dashboard: $(STAMP)
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port 8080 $(OPTUNA_STORAGE)

clean:
	rm -rf $(VENV) $(CLUSTER_VENV) .pytest_cache .ruff_cache
