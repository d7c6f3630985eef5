"""Test harness shared by every tier and the benchmarks, imported the ordinary way (`from harness.kube import Kubectl`;
pytest puts tests/ on sys.path, bench/ scripts run with PYTHONPATH=tests).

common.py: paths, CI, Unavailable, waits, ports, commands · controlplane.py: a control-plane-only cluster from
hack/cluster in a tier's own state dir and ports · operator_process.py: `tfscore operator` as a child process ·
kube.py: the pinned kubectl and helm · scoringjobs.py: ScoringJob manifests and a test-side view that plays the kubelet ·
kueue.py: the Kueue controller beside a harness API server (tier_ports: a tier's own ports).
"""
