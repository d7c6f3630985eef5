# Chart tier (issue 5): charts/tfscore linted, rendered and checked against the real kube-apiserver of hack/cluster
# (server-side dry run, Pod Security "restricted" admission, RBAC as the chart's ServiceAccounts, the real operator).
# helm is the harness's pinned build in $(TFSCORE_CACHE) (hack/cluster/env.sh: HELM), built here when missing.
TEST_TIERS += chart
CHART      := charts/tfscore
HELM_BIN    = $(shell bash hack/cluster/env.sh | sed -n 's/^HELM=//p')

.PHONY: chart-helm chart-lint chart-template test-chart

chart-helm:                    ## the pinned helm (hack/cluster/build.sh builds it when missing)
	@test -x "$(HELM_BIN)" || bash hack/cluster/build.sh all

chart-lint: chart-helm         ## helm lint --strict, default values and tests/chart/values-all.yaml
	"$(HELM_BIN)" lint --strict $(CHART)
	"$(HELM_BIN)" lint --strict $(CHART) -f tests/chart/values-all.yaml

chart-template: chart-helm     ## render the chart with the default values (VALUES=file to add a values file)
	@"$(HELM_BIN)" template tfscore $(CHART) --namespace tfscore-system $(if $(VALUES),-f $(VALUES))

test-chart: venv chart-helm    ## chart tier (tests/chart): lint, render, schema, server-side checks
	$(PYTEST) tests/chart
