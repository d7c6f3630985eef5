#!/bin/sh
# Spark's GPU discovery script (spark.executor.resource.gpu.discoveryScript): print the GPUs this executor may use as
# Spark's resource JSON, e.g. {"name":"gpu","addresses":["0","1"]}. The indexes come from nvidia-smi, which the NVIDIA
# container runtime mounts into pods that request nvidia.com/gpu.
set -eu
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-discovery: nvidia-smi not found: GPU executors need a GPU node with the NVIDIA container runtime" >&2
  exit 1
fi
indexes="$(nvidia-smi --query-gpu=index --format=csv,noheader)"
addresses="$(printf '%s\n' "$indexes" | tr -d ' \t\r' | grep -E '^[0-9]+$' | sed 's/.*/"&"/' | paste -sd, -)" || true
printf '{"name":"gpu","addresses":[%s]}\n' "$addresses"
