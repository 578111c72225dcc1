"""Kubernetes manifests: valid against the Kubernetes OpenAPI schemas (every field known to them), within
the policies of docs/team-deployment.md, and free of credentials; the repository's examples are exactly
what `loopline k8s render` makes of their configuration.

No cluster runs here: the schemas are those the `kubernetes-validate` package ships for each version.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import loopline
from tests.helpers import cli_process

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "deploy" / "kubernetes"
VERSIONS = ("1.29.0", "1.33.0")


@pytest.fixture
def cluster_project(tmp_path: Path) -> Path:
    """A project whose configuration is the repository's Kubernetes example."""
    project = tmp_path / "churn"
    project.mkdir()
    shutil.copy(EXAMPLE / "loopline.yaml", project / "loopline.yaml")
    return project


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = document["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def check(documents: list[dict[str, Any]]) -> None:
    """Each object valid for each version, strictly; every workload within the policies."""
    for document in documents:
        for version in VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
        assert document["kind"] != "Secret"  # credentials are the operator's, never rendered
        if document["kind"] != "Deployment":
            continue
        pod = document["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in containers(document):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
            assert security["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]) == {"requests", "limits"}
            assert container["envFrom"] == [{"secretRef": {"name": "loopline-credentials"}}]
            assert [e["name"] for e in container.get("env", [])] == ["HOME"]  # no value that is a secret
        main = pod["containers"][0]
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # Deleted, a pod answers while the Service stops routing to it, then stops within its grace period.
        drain = main["lifecycle"]["preStop"]["exec"]["command"]
        assert drain[0] == "sleep" and int(drain[1]) >= 5
        assert pod["terminationGracePeriodSeconds"] >= int(drain[1]) + 30


def test_serving_replicas_of_a_workspace(cluster_project: Path) -> None:
    manifests = loopline.k8s_render("prod", replicas=3, workers=2, project=cluster_project)
    check(manifests.documents)
    kinds = [d["kind"] for d in manifests.documents]
    assert kinds == ["ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    config = manifests.documents[0]["data"]["loopline.yaml"]
    assert config == (cluster_project / "loopline.yaml").read_text()
    deployment = manifests.documents[1]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:5] == ["serve", "-C", "/srv/project", "-w", "prod"] and args[-2:] == ["--workers", "2"]
    autoscaler = manifests.documents[3]["spec"]
    assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (3, 12)
    assert yaml.safe_load_all(manifests.text) and "&id" not in manifests.text


def test_the_control_plane(cluster_project: Path) -> None:
    manifests = loopline.k8s_render(project=cluster_project)
    check(manifests.documents)
    deployment = next(d for d in manifests.documents if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    clone = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert "$LOOPLINE_REPOSITORY" in clone["command"][-1]


def test_the_repository_examples_are_what_render_makes_of_their_configuration(
    cluster_project: Path, tmp_path: Path
) -> None:
    for name, flags in (
        ("serving-prod.yaml", ["--workspace", "prod"]),
        ("control-plane.yaml", ["--control-plane"]),
    ):
        out = tmp_path / name
        done = cli_process("k8s", "render", *flags, "--out", str(out), cwd=cluster_project)
        assert done.exit_code == 0, done.stderr
        assert out.read_text() == (EXAMPLE / name).read_text(), f"regenerate deploy/kubernetes/{name}"


def test_what_a_cluster_cannot_share_is_refused_with_the_key_to_change(
    cluster_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cluster_project / "loopline.yaml"
    cases = {
        "LOOPLINE_STATE__URL": ("sqlite:///state.db", "state database is SQLite"),
        "LOOPLINE_WORKSPACES__PROD__MODEL_STORE": (
            "/var/models",
            "workspaces.prod.model_store is a local folder",
        ),
    }
    for variable, (value, message) in cases.items():
        done = cli_process("k8s", "render", "-w", "prod", cwd=cluster_project, env={variable: value})
        assert done.exit_code == 2 and message in done.stderr and "Traceback" not in done.stderr
    config.write_text(config.read_text().replace("loopline@postgres", "loopline:hunter2@postgres"))
    done = cli_process("k8s", "render", "-w", "prod", cwd=cluster_project)
    assert done.exit_code == 2 and "holds a password" in done.stderr and "hunter2" not in done.stderr
    shared = {"LOOPLINE_WORKSPACES__SHARED__MODEL_STORE": "/var/m"}
    done = cli_process("k8s", "render", "--control-plane", cwd=cluster_project, env=shared)
    assert done.exit_code == 2 and "workspaces.shared.model_store is a local folder" in done.stderr
    neither = cli_process("k8s", "render", cwd=cluster_project)
    assert neither.exit_code == 2 and "--workspace W" in neither.stderr


def test_the_image_installs_dependencies_below_loopline_and_runs_as_nobody_in_particular() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    steps = [line.split()[0] for line in dockerfile.splitlines() if line and not line.startswith("#")]
    assert steps[0] == "FROM" and "USER" in steps
    dependencies = dockerfile.index("pip install --no-cache-dir -r")
    assert dependencies < dockerfile.index("COPY src") < dockerfile.index("--no-deps")
    assert "USER 10001" in dockerfile and "git" in dockerfile  # the control plane clones the repository
