"""A team on a control plane: five people with different grants, their tokens, and the server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import loopline
from tests.helpers import mlflow_client
from tests.servers import ControlPlane

PROD = "proj"  # the sample project's prod endpoint
API = "api/2.0/mlflow"  # MLflow's REST API, below a tracking URI

# Five people with different grants: the matrix below says, route by route, who may call it.
GRANTS = {
    "rita": [("reader", "*")],
    "dev": [("developer", "dev")],
    "tess": [("releaser", "test"), ("reader", "*")],
    "paul": [("releaser", "prod"), ("reader", "*")],
    "ada": [("admin", "*")],
}


@dataclass
class Team:
    """An instance (a full tier's, unless a test says) with five users, their tokens, and its control
    plane."""

    project: Path
    plane: ControlPlane
    tokens: dict[str, str]

    def ensure_fixtures(self) -> None:
        """Recreate the endpoints the cases name, when an allowed delete removed them."""
        have = {e.name for e in loopline.list_endpoints(project=self.project)}
        for name, workspace in (("dev-ep", "dev"), (PROD, "prod")):
            if name not in have:
                loopline.create_endpoint(name, workspace, project=self.project)
        if "dev-batch" not in {b.name for b in loopline.list_batch_endpoints(project=self.project)}:
            loopline.create_batch_endpoint("dev-batch", "dev", project=self.project)


def start_team(project: Path, **env: str) -> Iterator[Team]:
    """Add the users, grant their roles (those on a workspace of the tier), mint their tokens, and start
    the control plane with ``env``."""
    from loopline.instance import Instance

    tokens, workspaces = {}, {"*", *Instance.open(project).store_names}
    for user, grants in GRANTS.items():
        loopline.user_add(user, project=project)
        for role, workspace in grants:
            if workspace in workspaces:
                loopline.user_grant(user, role, workspace, project=project)
        secret = loopline.token_create(user, project=project).secret
        assert secret is not None
        tokens[user] = secret
    with ControlPlane(project, env=env) as plane:
        team = Team(project, plane, tokens)
        team.ensure_fixtures()
        yield team


def mlflow_call(
    team: Team, user: str | None, method: str, route: str, workspace: str = "dev", **kwargs: Any
) -> httpx.Response:
    """A call to a workspace's MLflow tracking URI (dev's) through the control plane, with ``user``'s
    token (None: none)."""
    headers = {"Authorization": f"Bearer {team.tokens[user]}"} if user else {}
    return httpx.request(
        method, f"{team.plane.url}/mlflow/{workspace}/{route}", headers=headers, timeout=120, **kwargs
    )


def new_run(team: Team, user: str, **body: Any) -> dict[str, Any]:
    """A run ``user`` makes in dev's experiment of the project, through the control plane."""
    experiment = mlflow_client(team.project, "dev").get_experiment_by_name("proj").experiment_id
    answer = mlflow_call(team, user, "POST", f"{API}/runs/create", json={"experiment_id": experiment, **body})
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["run"])
