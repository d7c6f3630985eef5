#!/bin/bash
# Class-data-sharing archives for the image's two Spark JVMs (issue 14: a Spark JVM spends most of its start-up loading
# and verifying ~11,000 classes; mapped from an archive they cost a fraction). Each archive only maps into a JVM whose
# classpath is the one it was made with, so there are two:
#   $TFSCORE_CDS_DIR/driver.jsa    the driver's (pyspark's launcher: $SPARK_HOME/conf, slf4j, $SPARK_HOME/jars/*),
#                                  written when the training run's JVM exits (-XX:ArchiveClassesAtExit)
#   $TFSCORE_CDS_DIR/executor.jsa  the executors' (images/runtime/entrypoint.sh: /opt/spark/conf:$SPARK_HOME/jars/*),
#                                  dumped from the classes the training run loaded (-XX:DumpLoadedClassList)
# A JVM whose classpath differs maps neither and starts as it would without (silently; -Xlog:cds says why).
# The runtime adds the driver's (tfscore.runtime.session), the entrypoint the executors'.
set -euo pipefail
dir="${TFSCORE_CDS_DIR:?TFSCORE_CDS_DIR is not set}"
java="${JAVA_HOME:?JAVA_HOME is not set}/bin/java"
executor_cp="/opt/spark/conf:$SPARK_HOME/jars/*"  # what entrypoint.sh gives executors (Spark sets SPARK_CONF_DIR so)
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SPARK_LOCAL_IP=127.0.0.1 python "$(dirname "$0")/cds-train.py" \
  "-XX:ArchiveClassesAtExit=$dir/driver.jsa -XX:DumpLoadedClassList=$work/classes.lst -Xlog:cds=error"
"$java" -Xshare:dump -Xlog:cds=error -XX:SharedClassListFile="$work/classes.lst" \
  -XX:SharedArchiveFile="$dir/executor.jsa" -cp "$executor_cp"
chmod 0444 "$dir"/*.jsa
# Both must map (-Xshare:on fails otherwise) into a JVM with the classpath their users have.
"$java" -Xshare:on -XX:SharedArchiveFile="$dir/executor.jsa" -cp "$executor_cp" -version 2>/dev/null
ls -la "$dir"
