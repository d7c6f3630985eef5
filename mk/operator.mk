# Operator tier (issue 3): the kopf operator against a real kube-apiserver + etcd + kube-controller-manager.
# The tier starts its own control plane from hack/cluster (own state dir and ports) unless
# $TFSCORE_OPERATOR_KUBECONFIG names one (plain $KUBECONFIG is ignored on purpose); it
# skips with the reason when the binaries are missing, except under CI=true, where it builds them or fails.
TEST_TIERS += operator

.PHONY: test-operator bench-admission bench-schedules crd-check

test-operator: venv            ## operator tier (tests/operator)
	$(PYTEST) tests/operator

crd-check: venv                ## fail when crds/*.yaml drifted from the pydantic models
	@diff -u crds/scoringjob.yaml <($(BIN)/tfscore crd) && echo "crds/scoringjob.yaml is up to date"
	@diff -u crds/scoringschedule.yaml <($(BIN)/tfscore crd --kind ScoringSchedule) && \
		echo "crds/scoringschedule.yaml is up to date"

bench-admission: venv          ## 1,000 ScoringJobs → driver pods: jobs/min and p50/p99 latency → bench/admission.json
	PYTHONPATH=tests $(BIN)/python bench/admission.py

bench-schedules: venv          ## 1,000 ScoringSchedules due in one minute: p50/p99 start lateness → bench/schedules.json
	PYTHONPATH=tests $(BIN)/python bench/schedules.py
