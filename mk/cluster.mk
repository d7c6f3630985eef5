# Local single-node Kubernetes harness (issue 6): scripts and contract in hack/cluster/README.md.
# Binaries build from the Go module proxy into $(TFSCORE_CACHE)/k8s/<version>/bin; state in $(TFSCORE_CACHE)/cluster.
CLUSTER_SH := hack/cluster

.PHONY: cluster-build cluster-build-control-plane cluster cluster-control-plane cluster-down cluster-purge cluster-env \
	cluster-smoke cluster-kueue-build cluster-kueue cluster-kueue-down cluster-kueue-smoke

cluster-build:                 ## build every harness binary (etcd, kube-*, kubectl, helm) if missing
	bash $(CLUSTER_SH)/build.sh all
cluster-build-control-plane:   ## build only etcd, kube-apiserver, kube-controller-manager, kubectl
	bash $(CLUSTER_SH)/build.sh control-plane
cluster-control-plane:         ## etcd + kube-apiserver + kube-controller-manager (operator tier)
	bash $(CLUSTER_SH)/up.sh control-plane
cluster:                       ## full node level: + scheduler, containerd, kubelet, kube-proxy (e2e tier)
	bash $(CLUSTER_SH)/up.sh node
cluster-down:                  ## stop every harness process (state kept for a fast restart)
	bash $(CLUSTER_SH)/down.sh
cluster-purge:                 ## stop and delete the state dir (certs, etcd data, containerd images)
	bash $(CLUSTER_SH)/down.sh --purge
cluster-env:                   ## print KUBECONFIG=... KUBECTL=... HELM=... lines
	@bash $(CLUSTER_SH)/env.sh
cluster-smoke: cluster         ## a pod Running on the kubelet, reached through a ClusterIP Service
	bash $(CLUSTER_SH)/smoke.sh
cluster-kueue-build:           ## build the Kueue manager (sigs.k8s.io/kueue, KUEUE_VERSION in lib.sh) if missing
	bash $(CLUSTER_SH)/kueue.sh build
cluster-kueue:                 ## Kueue beside the running cluster: CRDs, webhooks, manager (hack/cluster/KUEUE.md)
	bash $(CLUSTER_SH)/kueue.sh up
cluster-kueue-down:            ## stop Kueue and remove its webhook configurations
	bash $(CLUSTER_SH)/kueue.sh down
cluster-kueue-smoke: cluster-kueue  ## Workloads admitted, finished, preempted, released, garbage-collected (kubectl only)
	bash $(CLUSTER_SH)/kueue-smoke.sh
