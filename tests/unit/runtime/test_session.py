"""The SparkSession a run gets: in-pod addresses, the operator properties file, spec.env for local runs (runtime/session.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tfscore.runtime.errors import TfscoreError
from tfscore.runtime.session import driver_java_options

BASE = dict(id=pa.int64(), a=pa.float64(), b=pa.float32(), c=pa.int32(), pix=pa.list_(pa.float32()), w=pa.string())


def test_in_pod_overrides_use_ips():
    from tfscore.runtime.session import in_pod_overrides

    conf = {"spark.master": "k8s://https://kubernetes.default.svc:443", "spark.driver.host": "j-driver.ns.svc"}
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "POD_IP": "10.244.0.7"}
    assert in_pod_overrides(conf, env) == {"spark.master": "k8s://https://10.96.0.1:443",
                                           "spark.driver.host": "10.244.0.7", "spark.driver.bindAddress": "10.244.0.7"}
    assert in_pod_overrides({"spark.master": "local[2]"}, env) == {}
    assert in_pod_overrides(conf, {"KUBERNETES_SERVICE_HOST": "fd00::1"})["spark.master"] == "k8s://https://[fd00::1]:443"


def test_read_properties_round_trip(tmp_path):
    from tfscore.api import properties
    from tfscore.runtime.session import read_properties

    props = {"spark.app.name": "a b=c", "spark.x": "line1\nline2"}
    path = tmp_path / "spark.properties"
    path.write_text(properties.render(props, header="by the operator"))
    assert read_properties(str(path)) == props
    with pytest.raises(TfscoreError, match="--spark-properties: cannot read"):
        read_properties(str(tmp_path / "missing"))


@pytest.mark.parametrize("value, expected", [
    ("$(A)/x", "1/x"), ("$(B)", "2-1"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"), ("a$$b", "a$b"),
    ("$(A", "$(A"), ("$x", "$x"), ("end$", "end$"), ("$(HOME_DIR)$(A)", "/h1"),
])
def test_env_expansion_follows_kubernetes(value, expected):
    from tfscore.runtime.session import expand

    known = {"A": "1", "B": "2-1", "HOME_DIR": "/h"}
    assert expand(value, known.get) == expected


def test_local_environment_orders_expands_and_notes_cluster_only_sources():
    from tfscore.api.scoringjob import ScoringJobSpec
    from tfscore.runtime.session import local_environment

    spec = ScoringJobSpec.model_validate({
        "model": {"uri": "/m"}, "input": {"uri": "/in"}, "output": {"uri": "/out"},
        "env": [{"name": "BASE", "value": "s3://b"}, {"name": "URI", "value": "$(BASE)/$(USER)/$(LATER)"},
                {"name": "LATER", "value": "x"}, {"name": "EMPTY"},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "envFrom": [{"secretRef": {"name": "creds"}}]})
    env, notes = local_environment(spec, {"USER": "ana", "TOKEN": "from-shell"})
    # Like a container: only earlier entries (and the environment) expand; a later one is left as written.
    assert env == {"BASE": "s3://b", "URI": "s3://b/ana/$(LATER)", "LATER": "x", "EMPTY": ""}
    assert notes == ["spec.env[4] POD_IP: fieldRef is resolved only by Kubernetes; left unset: export it to set it",
                     "spec.env[5] TOKEN: secretKeyRef is resolved only by Kubernetes; kept from this shell",
                     "spec.envFrom[0] (secretRef creds) is resolved only by Kubernetes; not applied to a local run"]


def test_the_driver_jvm_maps_the_images_archive_and_compiles_less_on_a_cluster(tmp_path):
    (tmp_path / "driver.jsa").write_bytes(b"")
    local = driver_java_options("local[2]", {"TFSCORE_CDS_DIR": str(tmp_path)})
    assert local[0].startswith("-Dlog4j2.configurationFile=file:") and local[0].endswith("log4j2.properties")
    assert local[1:] == [f"-XX:SharedArchiveFile={tmp_path / 'driver.jsa'}"]
    cluster = driver_java_options("k8s://https://kubernetes.default.svc:443", {})  # no image archive: none named
    assert cluster[1:] == ["-XX:TieredStopAtLevel=1"]
    assert driver_java_options("local", {"TFSCORE_CDS_DIR": str(tmp_path / "absent")})[1:] == []


@pytest.mark.parametrize("master, local", [("local", True), ("local[*]", True), ("local[2,4]", True),
                                           ("local-cluster[2,1,1024]", True), ("k8s://https://10.0.0.1:443", False),
                                           ("spark://host:7077", False), ("yarn", False)])
def test_one_decision_says_which_masters_run_everything_on_this_machine(master, local, monkeypatch):
    from tfscore.api.scoringjob import ScoringJobSpec
    from tfscore.runtime.doctor.executors import executor_check_wanted
    from tfscore.runtime.engine import executors_wanted
    from tfscore.runtime.session import is_local_master, runtime_defaults

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")  # a local master's defaults set it when unset
    assert is_local_master(master) is local
    # what follows from it: the daemon module and the executors' check only where executors run elsewhere, and a
    # count of executors to wait for only there
    spec = ScoringJobSpec.model_validate({"model": {"uri": "/m"}, "input": {"uri": "/in"}, "output": {"uri": "/o"}})
    assert ("spark.python.daemon.module" in runtime_defaults(spec, master)) is not local
    assert executor_check_wanted(master, {}) is not local
    assert (executors_wanted(master, "2") is None) is local
