"""A one-node stand-in for Kubernetes, just enough for a Spark driver's executor allocator: an HTTP API server that
stores ConfigMaps and Pods, and a "kubelet" that runs each executor Pod Spark creates as a podman container.

The point is the executor contract: the container gets exactly the image, args (`executor`), environment (SPARK_DRIVER_URL,
SPARK_EXECUTOR_ID, SPARK_JAVA_OPT_*, … with the downward-API pod IP and name filled in) and volumes (emptyDirs as tmpfs,
the executor ConfigMap as files) that Spark put into the Pod, on a read-only root filesystem as uid 1000. Spark is
configured to poll (spark.kubernetes.executor.enableApiWatcher=false), so the API needs no watch streams.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from imagekit import run_args


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeKube:
    def __init__(self, workdir: Path, volumes: dict[str, str] | None = None):
        self.workdir = workdir
        self.volumes = volumes or {}  # extra host → container mounts for every executor (the job's data)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, namespace, name) → object
        self.containers: dict[str, str] = {}  # pod name → container name
        self.requests: list[str] = []
        self.executor_logs: dict[str, str] = {}  # pod name → its container's output (kept after deletion)
        self.lock = threading.Lock()
        self.version = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def master(self) -> str:
        return f"k8s://http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeKube:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        for pod in list(self.containers):
            self._stop(pod)

    def logs(self) -> str:
        for pod in list(self.containers):
            self._keep_logs(pod)
        return "\n".join(f"--- executor pod {pod}\n{text}" for pod, text in self.executor_logs.items())

    def _keep_logs(self, pod: str) -> None:
        container = self.containers.get(pod)
        if container:
            res = subprocess.run(["podman", "logs", container], capture_output=True, text=True)
            self.executor_logs[pod] = res.stdout + res.stderr

    def pods(self) -> list[dict[str, Any]]:
        return [o for (kind, _, _), o in self.objects.items() if kind == "pods"]

    # ------------------------------------------------------------ the kubelet

    def _start(self, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        spec = pod["spec"]
        container = spec["containers"][0]
        env: dict[str, str] = {}
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"] or ""
            else:
                path = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                env[var["name"]] = {"status.podIP": "127.0.0.1", "metadata.name": name}.get(path, "")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = dict(self.volumes)
        tmpfs = []
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                tmpfs.append(mount["mountPath"])
            elif "configMap" in volume:
                mounts[str(self._config_dir(pod, volume["configMap"]))] = f"{mount['mountPath']}:ro"
        cname = f"tfscore-it-{name}-{uuid.uuid4().hex[:6]}"
        args = run_args(container["image"], *container.get("args", []), volumes=mounts, env=env, network="host",
                        name=cname, detach=True)
        args.remove("--rm")  # kept after the executor exits, for its logs; _stop removes it
        at = args.index(container["image"])
        args[at:at] = [arg for path in tmpfs for arg in ("--tmpfs", f"{path}:rw,mode=1777")]
        subprocess.run(args, check=True, capture_output=True, text=True)
        with self.lock:
            self.containers[name] = cname
            pod["status"] = {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
                             "containerStatuses": [{"name": container["name"], "ready": True, "restartCount": 0,
                                                    "image": container["image"], "imageID": "",
                                                    "state": {"running": {}}}]}
            self._bump(pod)

    def _config_dir(self, pod: dict[str, Any], ref: dict[str, Any]) -> Path:
        cm = self.objects[("configmaps", pod["metadata"]["namespace"], ref["name"])]
        target = self.workdir / f"cm-{ref['name']}"
        target.mkdir(parents=True, exist_ok=True)
        items = ref.get("items") or [{"key": k, "path": k} for k in cm.get("data", {})]
        for item in items:
            (target / item["path"]).write_text(cm.get("data", {}).get(item["key"], ""))
        target.chmod(0o755)
        return target

    def _stop(self, pod_name: str) -> None:
        self._keep_logs(pod_name)
        container = self.containers.pop(pod_name, None)
        if container:
            subprocess.run(["podman", "rm", "-f", "-t", "2", container], capture_output=True)

    # ------------------------------------------------------------ the API server

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def _handler(self):
        kube = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, str, str | None, dict[str, list[str]]]:
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                # /api/v1/namespaces/{ns}/{kind}[/{name}]
                if len(parts) >= 5 and parts[:3] == ["api", "v1", "namespaces"]:
                    return parts[4], parts[3], parts[5] if len(parts) > 5 else None, parse_qs(url.query)
                return "", "", None, parse_qs(url.query)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_POST(self):  # noqa: N802
                kind, ns, _, _ = self._route()
                kube.requests.append(f"POST {self.path}")
                obj = self._body()
                if kind not in ("pods", "configmaps"):
                    return self._send(404, {"kind": "Status", "status": "Failure", "code": 404})
                meta = obj.setdefault("metadata", {})
                meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp="2026-01-01T00:00:00Z")
                with kube.lock:
                    kube._bump(obj)
                    kube.objects[(kind, ns, meta["name"])] = obj
                if kind == "pods":
                    obj["status"] = {"phase": "Pending"}
                    threading.Thread(target=kube._start, args=(obj,), daemon=True).start()
                self._send(201, obj)

            def do_GET(self):  # noqa: N802
                kind, ns, name, query = self._route()
                kube.requests.append(f"GET {self.path}")
                if name:
                    obj = kube.objects.get((kind, ns, name))
                    return self._send(200, obj) if obj else self._send(404, {"kind": "Status", "code": 404})
                selector = query.get("labelSelector", [""])[0]
                with kube.lock:
                    items = [o for (k, n, _), o in kube.objects.items()
                             if k == kind and n == ns and selector_matches(selector, o["metadata"].get("labels", {}))]
                    self._send(200, {"kind": "List", "apiVersion": "v1",
                                     "metadata": {"resourceVersion": str(kube.version)}, "items": items})

            def do_DELETE(self):  # noqa: N802
                kind, ns, name, query = self._route()
                kube.requests.append(f"DELETE {self.path}")
                selector = query.get("labelSelector", [""])[0]
                with kube.lock:
                    doomed = [key for key, o in kube.objects.items()
                              if key[0] == kind and key[1] == ns and (key[2] == name if name else
                                                                      selector_matches(selector,
                                                                                       o["metadata"].get("labels", {})))]
                    gone = [kube.objects.pop(key) for key in doomed]
                for key in doomed:
                    if kind == "pods":
                        kube._stop(key[2])
                if name:
                    return self._send(200, gone[0] if gone else {"kind": "Status", "status": "Success"})
                self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": gone})

            def do_PATCH(self):  # noqa: N802 - Spark labels executors it gave up on
                kind, ns, name, _ = self._route()
                kube.requests.append(f"PATCH {self.path}")
                self._body()
                obj = kube.objects.get((kind, ns, name or ""))
                self._send(200, obj) if obj else self._send(404, {"kind": "Status", "code": 404})

        return Handler
