"""MLflow's own web UI for dev through the control plane (``/ui/mlflow/``), in a real headless Chromium:
a member signed in to the dashboard reads dev's runs, metrics and files there, and changes only what their
role and ownership allow, exactly as with a token."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ProjectFactory
from tests.control.team import API, Team, mlflow_call, new_run, start_team
from tests.helpers import git, mlflow_client
from tests.servers import Dashboard
from tests.ui.browser import Browser

pytestmark = pytest.mark.slow

FILES = "api/2.0/mlflow-artifacts/artifacts"
_NOT_SERVED = re.compile(r"/ajax-api/[23]\.0/mlflow/(assistant/|gateway-proxy|users/current)")
PAGE = "<html><body><script>document.title = 'ran'</script>a report</body></html>"


@pytest.fixture
def team(new_project: ProjectFactory) -> Iterator[Team]:
    yield from start_team(new_project("full"))


def _logged(team: Team) -> tuple[str, str]:
    """A run dev logs through the control plane with a token: its experiment's and its own ID."""
    run = new_run(team, "dev", run_name="exploring")
    run_id, experiment = run["info"]["run_id"], run["info"]["experiment_id"]
    batch = {
        "run_id": run_id,
        "params": [{"key": "C", "value": "0.5"}],
        "metrics": [{"key": "loss", "value": v, "timestamp": 0, "step": i} for i, v in enumerate([0.9, 0.4])],
    }
    assert mlflow_call(team, "dev", "POST", f"{API}/runs/log-batch", json=batch).status_code == 200
    home = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for name, text in (("notes.txt", "first look at the data"), ("report.html", PAGE)):
        put = mlflow_call(team, "dev", "PUT", f"{FILES}/{home}/{name}", content=text.encode())
        assert put.status_code == 200, put.text
    return experiment, run_id


def _sign_in(browser: Browser, url: str, token: str) -> None:
    page = browser.page
    page.goto(f"{url}/ui/signin")
    page.fill("input[name=token]", token)
    page.click("form.signin button")
    page.wait_for_url("**/ui/?flash=*")


def _fetch(browser: Browser, route: str, body: dict[str, Any]) -> Any:
    """A change posted from the UI's own page, with the browser's session: its status and answer."""
    return browser.page.evaluate(
        """async ([route, body]) => {
            const answer = await fetch(route, {method: 'POST', body: JSON.stringify(body),
                                               headers: {'Content-Type': 'application/json'}});
            return [answer.status, await answer.text()];
        }""",
        [route, body],
    )


def test_a_signed_in_member_reads_dev_s_runs_in_mlflow_s_ui_and_changes_only_their_own(
    team: Team, playwright: Any
) -> None:
    experiment, run_id = _logged(team)
    url = team.plane.url
    browser = Browser(playwright)
    try:
        page = browser.page
        # No session: the page asks for a sign-in, the API behind it answers 401.
        page.goto(f"{url}/ui/mlflow")
        assert page.url == f"{url}/ui/signin"
        assert httpx.get(f"{url}/ui/mlflow/ajax-api/2.0/mlflow/runs/get?run_id={run_id}").status_code == 401

        # A reader sees the run, its parameters, metrics and files, in MLflow's own pages.
        _sign_in(browser, url, team.tokens["rita"])
        page.goto(f"{url}/ui/mlflow/#/experiments/{experiment}/runs/{run_id}")
        page.get_by_text("exploring").first.wait_for(timeout=60_000)
        overview = page.inner_text("body")
        assert "loss" in overview and "0.4" in overview and "0.5" in overview, overview[:2000]
        page.goto(f"{url}/ui/mlflow/#/experiments/{experiment}/runs/{run_id}/artifacts")
        page.get_by_text("notes.txt").first.click()
        page.get_by_text("first look at the data").first.wait_for(timeout=30_000)
        browser.shot("mlflow-ui-run")
        page.goto(f"{url}/ui/mlflow/#/experiments/{experiment}/runs")
        page.get_by_text("1 matching run").first.wait_for(timeout=60_000)
        assert all(request.startswith(url) for request in browser.requests), browser.requests
        assert any("/ui/mlflow/ajax-api/" in r for r in browser.requests), "no API call went through"
        # MLflow's page runs under a policy of its own scripts, never framed by another site
        assert not [e for e in browser.errors if "Content Security Policy" in e], browser.errors
        headers = page.request.get(f"{url}/ui/mlflow/").headers
        assert (
            headers["x-frame-options"] == "DENY"
            and "frame-ancestors 'none'" in headers["content-security-policy"]
        )
        # What failed is only what is not served here (the GenAI assistant, the AI gateway, MLflow's users)
        assert browser.failed and all(
            f.startswith("400 ") and _NOT_SERVED.search(f) for f in browser.failed
        ), browser.failed

        # A reader changes nothing; a file of dev's is never a page of this site.
        status, answer = _fetch(
            browser, "ajax-api/2.0/mlflow/runs/update", {"run_id": run_id, "run_name": "x"}
        )
        assert status == 403 and "rita may not" in answer, answer
        served = page.request.get(f"{url}/ui/mlflow/get-artifact?path=report.html&run_uuid={run_id}")
        assert served.status == 200 and served.text() == PAGE
        assert served.headers["content-security-policy"] == "sandbox"
        assert served.headers["content-disposition"].startswith("attachment")

        # The developer who made the run renames it in the UI; another's run stays read-only to them.
        _sign_in(browser, url, team.tokens["dev"])
        page.goto(f"{url}/ui/mlflow/#/experiments/{experiment}/runs/{run_id}")
        page.get_by_text("exploring").first.wait_for(timeout=60_000)
        status, answer = _fetch(
            browser, "ajax-api/2.0/mlflow/runs/update", {"run_id": run_id, "run_name": "v2"}
        )
        assert status == 200, answer
        others = new_run(team, "ada")["info"]["run_id"]
        status, answer = _fetch(
            browser, "ajax-api/2.0/mlflow/runs/update", {"run_id": others, "run_name": "x"}
        )
        assert status == 403 and "ada's" in answer, answer
        status, answer = _fetch(browser, "ajax-api/2.0/mlflow/registered-models/create", {"name": "m"})
        assert status == 403 and "read-only" in answer, answer
    finally:
        browser.close()
    assert mlflow_client(team.project, "dev").get_run(run_id).info.run_name == "v2"

    # Another site's page cannot make a change with the session: the browser says where it came from.
    cookie = {"loopline_token": team.tokens["dev"]}
    for headers in ({"sec-fetch-site": "cross-site"}, {"content-type": "text/plain"}):
        forged = httpx.post(
            f"{url}/ui/mlflow/ajax-api/2.0/mlflow/runs/update",
            json={"run_id": run_id, "run_name": "forged"},
            headers=headers,
            cookies=cookie,
        )
        assert forged.status_code == 403, forged.text
    assert mlflow_client(team.project, "dev").get_run(run_id).info.run_name == "v2"


def test_loopline_ui_serves_mlflow_s_ui_to_the_person_at_this_machine_who_may_change_any_run(
    trained_project: ProjectFactory, playwright: Any
) -> None:
    project = trained_project("simple")  # dev holds the inner loop's run
    board = Dashboard(project)
    try:
        browser = Browser(playwright)
        try:
            page = browser.page
            page.goto(f"{board.url}/ui/experiments")
            link = page.locator("[data-testid=runs] a").first
            run_id = str(link.get_attribute("href")).rsplit("/", 1)[1]
            link.click()
            name = mlflow_client(project, "dev").get_run(run_id).info.run_name
            page.get_by_text(name).first.wait_for(timeout=60_000)
            assert all(url.startswith(board.url) for url in browser.requests), browser.requests
            # They hold dev's store, so the inner loop's run is theirs to note; not the registry, nor
            # loopline's own tags.
            note = {"run_id": run_id, "key": "reviewed", "value": "yes"}
            status, answer = _fetch(browser, "ajax-api/2.0/mlflow/runs/set-tag", note)
            assert status == 200, answer
            status, answer = _fetch(browser, "ajax-api/2.0/mlflow/registered-models/create", {"name": "m"})
            assert status == 403 and "read-only" in answer, answer
            forged = {**note, "key": "loopline.git_commit"}
            status, answer = _fetch(browser, "ajax-api/2.0/mlflow/runs/set-tag", forged)
            assert status == 400 and "set by loopline" in answer, answer
        finally:
            browser.close()
        # A page of another site whose name was made to resolve to this machine (DNS rebinding) gets nothing.
        port = board.url.rsplit(":", 1)[1]
        rebound = httpx.get(
            f"{board.url}/ui/mlflow/ajax-api/2.0/mlflow/runs/get",
            params={"run_id": run_id},
            headers={"host": f"attacker.example:{port}"},
        )
        assert rebound.status_code == 403 and "127.0.0.1" in rebound.json()["message"]
        assert httpx.get(f"http://localhost:{port}/ui/mlflow/").status_code == 200
        # MLflow's server ends with the dashboard, before it: on every system, not only where the kernel
        # signals a child whose parent died.
        listed = subprocess.run(["ps", "-o", "pid=", "--ppid", str(board.process.pid)], capture_output=True)
        (backend,) = [int(pid) for pid in listed.stdout.split()]
    finally:
        board.stop()
    assert not Path(f"/proc/{backend}").exists()
    tags = mlflow_client(project, "dev").get_run(run_id).data.tags
    assert tags["reviewed"] == "yes" and tags["loopline.git_commit"] == git(project, "rev-parse", "HEAD")
