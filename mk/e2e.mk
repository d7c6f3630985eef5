# End-to-end tier (issue 6): charts/tfscore installed with the locally built images on a real cluster, the example job
# (examples/e2e-job.yaml) scored by real driver/executor pods and compared with a local `tfscore run`, and faults injected
# mid-run (executor pod, driver pod, operator pod deleted; an invalid ScoringJob applied). tests/e2e/README.md.
# Cluster: $KUBECONFIG when set; else kind when docker + kind work; else the local harness (hack/cluster/up.sh node,
# torn down with down.sh when this run started it). `make test` runs it under CI=true; elsewhere it skips (it takes
# minutes): `make e2e` runs it anyway.
TEST_TIERS += e2e

.PHONY: e2e test-e2e bench-cluster

e2e: venv                      ## the e2e tier, always (TFSCORE_E2E_KEEP=1 leaves cluster + release up for debugging)
	TFSCORE_E2E=1 $(PYTEST) tests/e2e

test-e2e: venv                 ## the e2e tier as part of `make test`: runs under CI=true, skips with the reason otherwise
	$(PYTEST) tests/e2e

bench-cluster: venv            ## the cluster path timed: apply → first batch → Succeeded, 1 vs 2 executors (bench/results.json)
	TFSCORE_E2E=1 TFSCORE_E2E_ROWS=1200000 $(PYTEST) tests/e2e/bench_cluster.py
	$(BIN)/python bench/run.py --report $(if $(wildcard $(BENCH_VENV)/bin/python),--bench-python $(BENCH_VENV)/bin/python)
