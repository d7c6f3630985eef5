# tfscore — every target installs what it needs (venv from hash-locked requirements, apt packages via hack/).
# Build caches live outside the repo ($(TFSCORE_CACHE)) so warm runs are fast and nothing binary is committed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := $(CURDIR)/.venv
BIN    := $(VENV)/bin
export TFSCORE_CACHE ?= $(HOME)/.cache/tfscore
# Spark local mode must run its Python workers in the same venv as the driver.
export PYSPARK_PYTHON := $(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(BIN)/python
export PATH := $(BIN):$(PATH)
PYTEST := $(BIN)/python -m pytest

# Test tiers; fragments in mk/ append theirs (operator, image, chart, e2e).
TEST_TIERS := lint unit runtime

.PHONY: help venv bench-venv locks-bench demo test bench lint fmt crd clean $(addprefix test-,$(TEST_TIERS))

help:
	@echo "make demo    run the demo ScoringJob locally (generates model + data)"
	@echo "make test    all test tiers this machine supports (CI=true: none may skip)"
	@echo "make bench   benchmarks -> bench/results.json, a table, bench/results.png"
	@echo "make images  build container images (podman or docker)"
	@echo "make cluster start the local single-node Kubernetes harness"

$(VENV)/.stamp: requirements/dev.lock requirements/jars.lock pyproject.toml
	bash hack/ensure-java.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	bash hack/install-jars.sh "$$($(BIN)/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars"
	touch $@

venv: $(VENV)/.stamp

demo: venv
	$(BIN)/tfscore demo

# The bench's own venv: the tools users would pick instead (Ray Data) and the chart (matplotlib), hash-locked in
# requirements/bench.lock; never tfscore's dependencies.
BENCH_VENV := $(CURDIR)/.venv-bench
$(BENCH_VENV)/.stamp: requirements/bench.lock
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --require-hashes -r requirements/bench.lock
	touch $@

bench-venv: $(BENCH_VENV)/.stamp

bench: venv bench-venv
	$(BIN)/python bench/run.py --bench-python $(BENCH_VENV)/bin/python

locks-bench:
	cd requirements && $(UV) pip compile -q --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -c dev.lock bench.in -o bench.lock

lint: venv
	$(BIN)/ruff check operator tests bench
crd: venv
	$(BIN)/tfscore crd > crds/scoringjob.yaml
	$(BIN)/tfscore crd --kind ScoringPolicy > crds/scoringpolicy.yaml
	$(BIN)/tfscore admission > charts/tfscore/files/admission-policies.yaml
	$(BIN)/tfscore crd --kind ScoringSchedule > crds/scoringschedule.yaml

test-lint: lint
test-unit: venv
	$(PYTEST) tests/unit
test-runtime: venv
	$(PYTEST) tests/runtime

-include mk/*.mk

# `make test` runs the tiers in two lanes at once, each lane's tiers in order, every line tagged with its lane: the
# cluster lane (e2e, then image: podman builds and a real node, mostly waiting on pods) beside the local lane (lint,
# unit, runtime, chart, operator: Spark local and control planes). Serially they took 31 min of a warm CI run, e2e 17
# of them. The tiers use their own ports and state dirs; the builds they share (Kubernetes, helm, Kueue, SeaweedFS)
# take a lock in their scripts. A failing tier fails `make test`; the other lane's tiers still run (-k).
# TEST_LANES=1 runs every tier in one lane, in TEST_TIERS order.
TEST_LANE_CLUSTER := $(filter image e2e,$(TEST_TIERS))
TEST_LANE_LOCAL := $(filter-out $(TEST_LANE_CLUSTER),$(TEST_TIERS))
TEST_LANES ?= 2

ifeq ($(TEST_LANES),1)
test: $(addprefix test-,$(TEST_TIERS))
else
test: venv
	@set -o pipefail; rc=0; \
	lane() { tag=$$1; shift; $(MAKE) --no-print-directory -k "$$@" 2>&1 | sed -u "s/^/[$$tag] /"; }; \
	lane cluster $(addprefix test-,$(TEST_LANE_CLUSTER)) & cluster=$$!; \
	lane local $(addprefix test-,$(TEST_LANE_LOCAL)) & local=$$!; \
	wait $$local || { rc=1; echo "make test: a tier of the local lane ($(TEST_LANE_LOCAL)) failed"; }; \
	wait $$cluster || { rc=1; echo "make test: a tier of the cluster lane ($(TEST_LANE_CLUSTER)) failed"; }; \
	exit $$rc
endif

clean:
	rm -rf $(VENV) .pytest_cache .demo bench/work
