"""Kubernetes manifests for an instance: serving replicas of a workspace, or the control plane.

Each object is a plain mapping, checked in the tests against the Kubernetes OpenAPI schemas. The
configuration travels in a ConfigMap (``loopline.yaml`` as the project has it); credentials never appear:
every container reads its environment from the Secret ``loopline-credentials``, which the operator
creates (``LOOPLINE_STATE__URL``, store URIs with passwords, ``AZURE_STORAGE_CONNECTION_STRING``,
``LOOPLINE_AUDIT_KEY``, ...). A cluster shares nothing on disk, so the state database must be
PostgreSQL and every model store an object store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from loopline.config import CONFIG_FILE
from loopline.domain import SHARED
from loopline.errors import UsageError
from loopline.instance import Instance

__all__ = ["Manifests", "render"]

SECRET = "loopline-credentials"
CONFIG = "loopline-config"
PROJECT = "/srv/project"
CONTROL_PORT = 8600
_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


class _Dumper(yaml.SafeDumper):
    """Plain YAML as people write it: no anchors, and multi-line text (the configuration) as a block."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)


@dataclass(frozen=True)
class Manifests:
    """The Kubernetes objects for one part of an instance, in the order to apply them."""

    documents: list[dict[str, Any]]

    @property
    def text(self) -> str:
        """The objects as one multi-document YAML stream."""
        return "".join("---\n" + yaml.dump(d, Dumper=_Dumper, sort_keys=False) for d in self.documents)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"documents": self.documents}


def _labels(component: str, workspace: str | None, project: str) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "loopline",
        "app.kubernetes.io/instance": project,
        "app.kubernetes.io/component": component,
    }
    if workspace:
        labels["loopline.dev/workspace"] = workspace
    return labels


def _metadata(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels}


def _security() -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod's and each container's security context: not root, nothing to escalate, nothing writable
    but the mounted scratch folders."""
    pod = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return pod, container


def _probe(path: str, port: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


# On a pod's deletion Kubernetes sends SIGTERM while the Service's endpoints and every node's proxy are
# still being told to stop routing to it; a server that stopped listening at once would refuse what they
# send meanwhile. The pod keeps answering for DRAIN_SECONDS first; then the server finishes the requests
# it holds (the supervisor gives its workers 30 s), within the grace period.
DRAIN_SECONDS = 5
GRACE_SECONDS = DRAIN_SECONDS + 30 + 10


def _pod(
    labels: dict[str, str],
    container: dict[str, Any],
    *,
    port: int,
    ready: str,
    init: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    pod_security, container_security = _security()
    container.update(
        {
            "ports": [{"name": "http", "containerPort": port}],
            "envFrom": [{"secretRef": {"name": SECRET}}],
            "env": [{"name": "HOME", "value": "/tmp"}],
            "readinessProbe": _probe(ready, port, period=5, failures=3),
            "livenessProbe": _probe("/healthz", port, period=10, failures=3),
            # Models load before the socket accepts: give a new pod time before liveness counts.
            "startupProbe": _probe("/healthz", port, period=5, failures=60),
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}},
            "securityContext": container_security,
            "volumeMounts": [
                {"name": "config", "mountPath": f"{PROJECT}/{CONFIG_FILE}", "subPath": CONFIG_FILE},
                {"name": "state", "mountPath": f"{PROJECT}/.loopline"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
    )
    spec: dict[str, Any] = {
        "securityContext": pod_security,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": CONFIG}},
            {"name": "state", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if init:
        spec["initContainers"] = init
    return {"metadata": {"labels": labels}, "spec": spec}


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def _check_shared(instance: Instance, workspaces: list[str], config: str) -> None:
    """Refuse what a cluster cannot share: a SQLite state database, a model store on local disk, and a
    password written into loopline.yaml (it would land in the ConfigMap)."""
    settings = instance.settings
    if settings.state_url.startswith("sqlite"):
        raise UsageError(
            "the state database is SQLite, which pods cannot share; set state.url (or "
            "LOOPLINE_STATE__URL) to PostgreSQL first (see docs/team-deployment.md)"
        )
    for workspace in workspaces:
        store = settings.store(workspace).model_store
        if not urlsplit(store).scheme or store.startswith("file:"):
            raise UsageError(
                f"workspaces.{workspace}.model_store is a local folder, which pods cannot share; set it "
                "to an object store URL (az://, s3://) first"
            )
    if _PASSWORD.search(config):
        raise UsageError(
            f"{CONFIG_FILE} holds a password in a URL; move that URL to an environment variable in the "
            f"Secret {SECRET}, since {CONFIG_FILE} goes into a ConfigMap"
        )


def _config_map(text: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG, namespace, labels),
        "data": {CONFIG_FILE: text},
    }


def _service(name: str, namespace: str, labels: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _deployment(
    name: str, namespace: str, labels: dict[str, str], replicas: int, template: dict[str, Any], recreate: bool
) -> dict[str, Any]:
    strategy = (
        {"type": "Recreate"}
        if recreate
        else {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": strategy,
            "template": template,
        },
    }


def _serving(
    instance: Instance, workspace: str, namespace: str, image: str, replicas: int, workers: int
) -> list[dict[str, Any]]:
    project = instance.settings.config.project
    labels = _labels("serving", workspace, project)
    name = f"loopline-serve-{workspace}"
    port = urlsplit(instance.settings.endpoints_url(workspace)).port or 8700
    container = {
        "name": "serve",
        "image": image,
        "args": [
            "serve",
            "-C",
            PROJECT,
            "-w",
            workspace,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        "resources": _resources(f"{workers}", f"{2 * workers}Gi"),
    }
    template = _pod(labels, container, port=port, ready="/readyz")
    return [
        _deployment(name, namespace, labels, replicas, template, recreate=False),
        _service(name, namespace, labels, port),
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _metadata(name, namespace, labels),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": replicas,
                "maxReplicas": replicas * 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(name, namespace, labels),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
    ]


def _control_plane(instance: Instance, namespace: str, image: str) -> list[dict[str, Any]]:
    """One control plane (uploads wait on its disk between two calls): the repository is cloned into the
    pod first, from ``LOOPLINE_REPOSITORY`` in the Secret (a URL that may carry a read token)."""
    project = instance.settings.config.project
    labels = _labels("control-plane", None, project)
    name = "loopline-server"
    _, container_security = _security()
    clone = {
        "name": "clone",
        "image": image,
        "command": ["sh", "-c", f'git clone --quiet "$LOOPLINE_REPOSITORY" {PROJECT}/repo'],
        "envFrom": [{"secretRef": {"name": SECRET}}],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "securityContext": container_security,
        "resources": _resources("500m", "512Mi"),
        "volumeMounts": [
            {"name": "repo", "mountPath": f"{PROJECT}/repo"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    container = {
        "name": "server",
        "image": image,
        "args": ["server", "-C", f"{PROJECT}/repo", "--host", "0.0.0.0", "--port", str(CONTROL_PORT)],
        "resources": _resources("2", "4Gi"),
    }
    template = _pod(labels, container, port=CONTROL_PORT, ready="/readyz", init=[clone])
    spec = template["spec"]
    spec["volumes"].append({"name": "repo", "emptyDir": {}})
    mounts = spec["containers"][0]["volumeMounts"]
    mounts[:] = [
        {"name": "repo", "mountPath": f"{PROJECT}/repo"},
        {"name": "config", "mountPath": f"{PROJECT}/repo/{CONFIG_FILE}", "subPath": CONFIG_FILE},
        {"name": "state", "mountPath": f"{PROJECT}/repo/.loopline"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    return [
        _deployment(name, namespace, labels, 1, template, recreate=True),
        _service(name, namespace, labels, CONTROL_PORT),
    ]


def render(
    instance: Instance,
    workspace: str | None,
    *,
    namespace: str,
    image: str,
    replicas: int,
    workers: int,
) -> Manifests:
    """The manifests of ``workspace``'s serving replicas, or (``workspace`` None) of the control plane."""
    if replicas < 1 or workers < 1:
        raise UsageError("--replicas and --workers must be 1 or more")
    if workspace is not None:
        instance.require_workspace(workspace)
    # The control plane reads and writes every workspace's model store and the shared registry's.
    text = (instance.settings.root / CONFIG_FILE).read_text()
    _check_shared(instance, [workspace] if workspace else [*instance.settings.workspaces, SHARED], text)
    project = instance.settings.config.project
    config = _config_map(text, namespace, _labels("config", None, project))
    if workspace is None:
        return Manifests([config, *_control_plane(instance, namespace, image)])
    return Manifests([config, *_serving(instance, workspace, namespace, image, replicas, workers)])
