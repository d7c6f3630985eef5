#!/bin/bash
# tfscore image entrypoint (under tini, which reaps Spark's Python workers and forwards signals).
#   executor [ARG…]  a Spark executor, as Spark on Kubernetes starts it (container args ["executor"]): the
#                    KubernetesExecutorBackend JVM, configured from the SPARK_* environment the driver puts on the pod
#   anything else    run as given (tfscore run …, tfscore doctor, python …)
#
# The executor contract (Spark's BasicExecutorFeatureStep, resource-managers/kubernetes):
#   SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_EXECUTOR_MEMORY (JVM heap, e.g. 2048m),
#   SPARK_APPLICATION_ID, SPARK_RESOURCE_PROFILE_ID, SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME (downward API),
#   SPARK_JAVA_OPT_0..N (one JVM option each: the executor's extraJavaOptions and startup confs, in index order),
#   SPARK_CLASSPATH (spark.executor.extraClassPath), SPARK_EXECUTOR_LIBRARY_PATH, SPARK_CONF_DIR (the mounted
#   executor ConfigMap), SPARK_LOCAL_DIRS and SPARK_USER (read by the JVM itself).
set -euo pipefail

executor() {
  local var missing=()
  for var in SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY SPARK_APPLICATION_ID; do
    [[ -n "${!var:-}" ]] || missing+=("$var")
  done
  if ((${#missing[@]})); then
    echo "tfscore executor: ${missing[*]} not set: executors are started by the Spark driver on Kubernetes" \
      "(spark.kubernetes.container.image), not by hand" >&2
    exit 64
  fi
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"

  # JVM options: one per variable, in numeric index order; values are never word-split or evaluated.
  local -a opts=()
  local name
  while IFS= read -r name; do
    opts+=("${!name}")
  done < <(compgen -e | grep -E '^SPARK_JAVA_OPT_[0-9]+$' | sort -t _ -k 4,4n || true)
  # The operator's k8s:// master, so that Spark reads spark.authenticate.secret.file here too (SecurityManager reads
  # the file only under a k8s master; Spark refuses -Dspark.* in spark.executor.extraJavaOptions).
  [[ -z "${TFSCORE_SPARK_MASTER:-}" ]] || opts+=("-Dspark.master=$TFSCORE_SPARK_MASTER")
  # The executors' class-data-sharing archive (images/runtime/cds.sh), made for exactly the classpath below.
  [[ ! -r "${TFSCORE_CDS_DIR:-/nonexistent}/executor.jsa" ]] || opts+=("-XX:SharedArchiveFile=$TFSCORE_CDS_DIR/executor.jsa")

  local classpath="${SPARK_CONF_DIR:-/opt/spark/conf}:${SPARK_HOME:?SPARK_HOME is not set}/jars/*"
  [[ -z "${SPARK_CLASSPATH:-}" ]] || classpath+=":$SPARK_CLASSPATH"
  [[ -z "${SPARK_EXECUTOR_LIBRARY_PATH:-}" ]] ||
    export LD_LIBRARY_PATH="$SPARK_EXECUTOR_LIBRARY_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PYSPARK_PYTHON="${PYSPARK_PYTHON:-/opt/tfscore/venv/bin/python}"

  # Warm Python workers (tfscore.runtime.prewarm), one per core unless TFSCORE_PREWARM_WORKERS says otherwise (0: none):
  # each imports TensorFlow and the worker's modules while the JVM below starts and registers, and then serves as the
  # Python worker of a task (the driver sets spark.python.daemon.module=tfscore.runtime.daemon). Started detached, so
  # tini reaps them; PYTHONHASHSEED as pyspark gives its workers (SparkContext.environment), or the warm process refuses.
  local warm="${TFSCORE_PREWARM_WORKERS:-$SPARK_EXECUTOR_CORES}" i
  if [[ "$warm" =~ ^[0-9]+$ ]] && ((warm > 0)); then
    TFSCORE_PREWARM_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tfscore-prewarm.XXXXXX")"
    export TFSCORE_PREWARM_DIR
    for ((i = 0; i < warm; i++)); do
      (PYTHONHASHSEED="${PYTHONHASHSEED:-0}" PYTHONUNBUFFERED=YES \
        "$PYSPARK_PYTHON" -m tfscore.runtime.prewarm "$TFSCORE_PREWARM_DIR" </dev/null &)
    done
  fi

  local -a args=(
    --driver-url "$SPARK_DRIVER_URL"
    --executor-id "$SPARK_EXECUTOR_ID"
    --cores "$SPARK_EXECUTOR_CORES"
    --app-id "$SPARK_APPLICATION_ID"
    --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}"
  )
  [[ -z "${SPARK_EXECUTOR_POD_IP:-}" ]] || args+=(--hostname "$SPARK_EXECUTOR_POD_IP")
  [[ -z "${SPARK_EXECUTOR_POD_NAME:-}" ]] || args+=(--podName "$SPARK_EXECUTOR_POD_NAME")

  exec "$java" "${opts[@]}" -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" -cp "$classpath" \
    org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend "${args[@]}" "$@"
}

case "${1:-}" in
  executor)
    shift
    executor "$@"
    ;;
  driver | driver-py)
    echo "tfscore: Spark cluster-mode drivers are not supported; the driver is \`tfscore run\` (client mode)" >&2
    exit 64
    ;;
  "")
    exec tfscore --help
    ;;
  *)
    exec "$@"
    ;;
esac
