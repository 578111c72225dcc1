"""The dashboard in a real headless Chromium: topology, models, endpoints with live charts, history, and a
rollback through its confirm dialog; then the same dashboard on the control plane, where roles decide.

Screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

import loopline
from loopline import audit, catalog
from loopline.errors import ApprovalNeeded, LooplineError
from loopline.events import Registered
from loopline.instance import Instance
from tests.conftest import ProjectFactory
from tests.helpers import (
    batch_scorer_answering_otherwise,
    edit_yaml,
    git,
    heldout_request,
    mlflow_client,
    wait_for_samples,
)
from tests.servers import ControlPlane, Dashboard, PathProxy, Server, free_port
from tests.ui.browser import Browser

pytestmark = pytest.mark.slow


def _released_twice(
    a_live_b_registered: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str, str]:
    """A simple-tier project whose prod serves commit B, with A released before it."""
    monkeypatch.setenv("LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL", f"http://127.0.0.1:{free_port()}")
    project, a, b = a_live_b_registered
    loopline.outer_loop_prod(project)
    return project, a, b


def _score(project: Path, server: Server, count: int) -> None:
    """``count`` 3-row requests of held-out rows, with a caller's key (loopline's own are never sampled)."""
    bodies = [heldout_request(project, 3, start=3 * i) for i in range(count)]
    key = loopline.endpoint_keys("proj", regenerate="secondary", project=project).regenerated["secondary"]
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    url = f"{server.url}/endpoints/proj/score"
    with httpx.Client(timeout=10) as client:
        deadline = time.monotonic() + 5  # the server follows the new key within a second
        while (status := client.post(url, content=bodies[0], headers=headers).status_code) == 401:
            assert time.monotonic() < deadline, "the server did not take the new key"
            time.sleep(0.05)
        assert status == 200
        for body in bodies[1:]:
            assert client.post(url, content=body, headers=headers).status_code == 200


def test_a_release_is_seen_and_rolled_back_from_the_browser(
    a_live_b_registered: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch, playwright: Any
) -> None:
    project, a, b = _released_twice(a_live_b_registered, monkeypatch)
    port = int(loopline.get_endpoint("proj", project=project).url.split(":")[2].split("/")[0])
    monkeypatch.setenv("LOOPLINE_MONITORING__MIN_SAMPLES", "150")
    with Server(
        project, "prod", port=port, env={"LOOPLINE_MONITORING__SAMPLE_PER_SECOND": "100000"}
    ) as server:
        started = time.time()
        _score(project, server, 60)
        wait_for_samples(project, "proj", 180, started)
        check = loopline.monitor_check("proj", project=project)  # 180 rows sampled: drift per feature
        assert check.samples == 180
        rule = project / "watch.yaml"  # a rule that holds of any check: decided, audited, not carried out
        rule.write_text(
            "version: 1\nrules:\n  - name: watched\n    when: {p99_ms: {at_least: 0}}\n"
            "    action: rollback\ndefault: no-change\n"
        )
        decision = loopline.policy_evaluate(rule, endpoint="proj", project=project)
        assert (decision.action, decision.rule, decision.acted) == ("rollback", "watched", False)
        git(project, "remote", "add", "origin", "git@github.com:acme/proj.git")
        loopline.create_endpoint("try-out", "dev", project=project)  # an older version live in dev
        loopline.create_deployment("try-out", "old", version=1, check=False, project=project)
        board = Dashboard(project)
        browser = Browser(playwright)
        try:
            page = browser.page
            page.goto(f"{board.url}/ui/")
            prod = page.get_by_test_id("node-prod")
            assert b[:7] in prod.inner_text()
            assert prod.locator("a.ext").get_attribute("href") == f"https://github.com/acme/proj/commit/{b}"
            dev = page.get_by_test_id("node-dev").inner_text()  # dev's newest (what was shared), not the live
            assert b[:7] in dev and a[:7] not in dev and "v1 serving on try-out" in dev, dev
            assert "released" in page.get_by_test_id("move-prod").inner_text()
            browser.shot("1-topology")

            page.goto(f"{board.url}/ui/models")
            table = page.locator("table.models").inner_text()
            assert a[:7] in table and b[:7] in table and "accuracy" in table and "passed" in table
            page.goto(f"{board.url}/ui/models?commit={a[:7]}")
            assert b[:7] not in page.locator("table.models").inner_text()
            browser.shot("2-models")

            page.goto(f"{board.url}/ui/endpoints")
            endpoint = page.get_by_test_id("endpoint-prod-proj")
            traffic = page.get_by_test_id("traffic-prod-proj").inner_text()
            assert b[:7] in traffic and "100%" in traffic
            # What answers each deployment, as the running server reported it: the sample's model compiled.
            for deployment in loopline.get_endpoint("proj", project=project).deployments:
                served = page.get_by_test_id(f"serving-{deployment.name}").inner_text()
                assert served.startswith("numpy: the fitted arithmetic"), served
            # An endpoint that took no request says so where its charts would be.
            idle = page.get_by_test_id("endpoint-dev-try-out").locator("[data-last=rps]")
            idle.filter(has_text="no requests in the last hour").wait_for(timeout=10_000)
            # The charts fill from the serving statistics, and refresh by themselves.
            endpoint.locator("svg[data-series=rps] rect.dot").first.wait_for(timeout=10_000)
            first = endpoint.locator("[data-metrics]").get_attribute("data-updated")
            page.wait_for_function(
                "old => document.querySelector('[data-metrics]').dataset.updated !== old",
                arg=first,
                timeout=12_000,
            )
            # The latest check's drift, worst feature first, ten at most, amber above 0.1 and red above 0.25.
            psi = sorted(check.signals["psi"].items(), key=lambda kv: kv[1], reverse=True)[:10]
            rows = endpoint.locator("table.drift tbody tr")
            assert rows.count() == len(psi) == 10
            shown = [
                (
                    rows.nth(i).locator("td").nth(0).inner_text(),
                    rows.nth(i).locator("td").nth(1).inner_text(),
                    rows.nth(i).get_attribute("class"),
                )
                for i in range(len(psi))
            ]
            expected = [
                (name, f"{value:.3f}", "high" if value > 0.25 else "mid" if value > 0.1 else "")
                for name, value in psi
            ]
            assert shown == expected
            # Beside it, the check's other signals and what the policy decided of them.
            signals = page.get_by_test_id("signals-prod-proj").inner_text()
            assert f"error rate {check.signals['error_rate']:.1%}" in signals, signals
            assert f"p99 {check.signals['p99_ms']:.0f} ms" in signals, signals
            decided = page.get_by_test_id("decision-prod-proj").inner_text()
            assert decided.startswith("Policy: rollback (rule: watched), ") and "not carried out" in decided
            browser.shot("3-endpoints")

            # Roll back to A through the dialog, which says exactly what will move.
            page.get_by_test_id("rollback-target-prod-proj").select_option(a)
            page.get_by_test_id("rollback-prod-proj").click()
            dialog = page.locator("dialog#confirm")
            dialog.wait_for(state="visible")
            text = dialog.inner_text()
            assert (
                "Move 100% of the traffic of endpoint proj (prod)" in text and a[:7] in text and b[:7] in text
            )
            browser.shot("4-rollback-dialog")
            page.locator("#confirm-ok").click()
            page.wait_for_url("**/ui/endpoints?flash=*")
            assert (
                "rolled back" in page.locator(".flash").inner_text()
                or a[:7] in page.locator(".flash").inner_text()
            )
            traffic = page.get_by_test_id("traffic-prod-proj").inner_text()
            assert a[:7] in traffic and "100%" in traffic and b[:7] not in traffic
            browser.shot("5-rolled-back")

            page.goto(f"{board.url}/ui/")
            assert a[:7] in page.get_by_test_id("node-prod").inner_text()
            assert "rolled-back" in page.get_by_test_id("move-prod").inner_text()

            page.goto(f"{board.url}/ui/history?commit={a[:7]}")
            timeline = page.locator("table.timeline").inner_text()
            assert "rolled-back" in timeline and "released" in timeline
            page.goto(f"{board.url}/ui/commits/{a}")
            assert "rolled-back" in page.locator("table.timeline").inner_text()
            browser.shot("6-commit")

            # B turns out to be wrong: withdrawn, it is marked wherever it is listed, and not offered as
            # a rollback target any more (the rollback would be refused).
            loopline.withdraw(b, reason="trained on leaked labels", project=project)
            page.goto(f"{board.url}/ui/models?commit={b[:7]}")
            marked = page.locator("[data-testid^=withdrawn-]")
            assert marked.count() == page.locator("table.models tbody tr").count() == 3
            page.goto(f"{board.url}/ui/endpoints")
            assert page.get_by_test_id("rollback-target-prod-proj").count() == 0
            page.goto(f"{board.url}/ui/commits/{b}")
            assert page.locator("p.versions").inner_text().count("withdrawn") == 3
            browser.assert_clean(board.url)
        finally:
            browser.close()
            board.stop()
    assert {d.git_commit: d.traffic for d in loopline.get_endpoint("proj", project=project).deployments}[
        a
    ] == 100
    rolled = loopline.history(project, kind="rolled-back")[-1].event
    assert rolled.git_commit == a and rolled.reason == "from the dashboard"

    # On a phone's screen: nothing wider than the screen.
    phone = Browser(playwright, 390, 844)
    try:
        board = Dashboard(project)
        for name, path in (("topology", "/ui/"), ("endpoints", "/ui/endpoints"), ("models", "/ui/models")):
            phone.page.goto(f"{board.url}{path}")
            assert phone.page.evaluate("document.body.scrollWidth <= window.innerWidth + 1"), path
            phone.shot(f"7-phone-{name}")
        phone.assert_clean(board.url)
    finally:
        phone.close()
        board.stop()


def test_on_the_control_plane_the_rollback_is_refused_without_the_role_and_audited(
    a_live_b_registered: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch, playwright: Any
) -> None:
    project, a, b = _released_twice(a_live_b_registered, monkeypatch)
    tokens = {}
    for user, role, workspace in (("dev", "developer", "dev"), ("paul", "releaser", "prod")):
        loopline.user_add(user, project=project)
        loopline.user_grant(user, role, workspace, project=project)
        loopline.user_grant(user, "reader", "*", project=project)
        tokens[user] = loopline.token_create(user, project=project).secret
    # Releases need an approval now; dev asks to take prod back to commit A.
    edit_yaml(project / "loopline.yaml", release={"approvals": {"required": 1}})
    monkeypatch.setenv("LOOPLINE_USER", "dev")
    with pytest.raises(ApprovalNeeded):
        loopline.outer_loop_prod(project, commit=a)
    monkeypatch.delenv("LOOPLINE_USER")
    with ControlPlane(project) as plane:
        browser = Browser(playwright)
        try:
            page = browser.page
            page.goto(f"{plane.url}/ui/endpoints")
            assert page.url.endswith("/ui/signin")
            page.fill("input[name=token]", "ll_000000000000_" + "x" * 43)
            page.click("form.signin button")
            assert "not known" in page.locator(".flash.error").inner_text()
            page.fill("input[name=token]", str(tokens["dev"]))
            page.click("form.signin button")  # the refusal's page holds a .flash until the next one loads
            expect(page.locator(".flash")).to_contain_text("signed in as dev")
            page.goto(f"{plane.url}/ui/endpoints")
            page.get_by_test_id("rollback-target-prod-proj").select_option(a)
            page.get_by_test_id("rollback-prod-proj").click()
            page.locator("#confirm-ok").click()
            page.wait_for_url("**/ui/endpoints?error=*")
            refusal = page.locator(".flash.error").inner_text()
            assert "dev may not rollback: it needs the releaser role on workspace 'prod'" in refusal
            browser.shot("8-refused")
            assert b[:7] in page.get_by_test_id("traffic-prod-proj").inner_text()
            # A developer is no approver (approvers: the releasers of prod).
            page.goto(f"{plane.url}/ui/approvals")
            assert "waiting" in page.get_by_test_id(f"approval-{a[:7]}").inner_text()
            page.get_by_test_id(f"reason-{a[:7]}").fill("fine by me")
            page.get_by_test_id(f"approve-{a[:7]}").click()
            page.wait_for_url("**/ui/approvals?error=*")
            assert "dev is not an approver of releases to prod" in page.locator(".flash.error").inner_text()

            # A releaser may move prod's traffic, by the same dialog.
            page.click("button.link")
            page.fill("input[name=token]", str(tokens["paul"]))
            page.click("form.signin button")
            page.goto(f"{plane.url}/ui/endpoints")
            deployments = {
                d.git_commit: d.name for d in loopline.get_endpoint("proj", project=project).deployments
            }
            page.get_by_test_id(f"share-prod-proj-{deployments[a]}").fill("50")
            page.get_by_test_id(f"share-prod-proj-{deployments[b]}").fill("50")
            page.get_by_test_id("traffic-prod-proj-apply").click()
            assert "100% → 50%" in page.locator("dialog#confirm").inner_text()
            page.locator("#confirm-ok").click()
            page.wait_for_url("**/ui/endpoints?flash=*")
            assert "50%" in page.get_by_test_id("traffic-prod-proj").inner_text()

            # A releaser approves dev's release from the approvals page.
            page.goto(f"{plane.url}/ui/approvals")
            page.get_by_test_id(f"reason-{a[:7]}").fill("A was fine for a month")
            page.get_by_test_id(f"approve-{a[:7]}").click()
            page.wait_for_url("**/ui/approvals?flash=*")
            assert f"approved proj-classifier v1 ({a[:7]}) for prod" in page.locator(".flash").inner_text()
            row = page.get_by_test_id(f"approval-{a[:7]}").inner_text()
            assert "approved" in row and "approved by paul: A was fine for a month" in row
            browser.shot("9-approved")
            browser.assert_clean(plane.url)
        finally:
            browser.close()
    refused = [r.event for r in loopline.history(project, kind="refused") if r.event.outcome == "forbidden"]
    assert [(e.actor, e.details.get("operation", e.details.get("step"))) for e in refused][-2:] == [
        ("dev", "rollback"),
        ("dev", "approve"),
    ]
    assert loopline.history(project, kind="approval-decided")[-1].event.actor == "paul"
    changed = loopline.history(project, kind="traffic-changed")[-1].event
    assert changed.actor == "paul"
    assert sorted(loopline.get_endpoint("proj", project=project).traffic.values()) == [50, 50]


def test_the_experiments_page_shows_the_trend_the_runs_and_their_charts(
    a_live_b_registered: tuple[Path, str, str], playwright: Any
) -> None:
    project, a, b = a_live_b_registered
    board = Dashboard(project)
    browser = Browser(playwright)
    try:
        page = browser.page
        page.goto(f"{board.url}/ui/experiments")
        trend = page.get_by_test_id("trend").inner_text()
        assert "accuracy" in trend and "log_loss" in trend
        assert f"{b[:7]} against {a[:7]}" in page.locator("h2").first.inner_text()
        assert page.get_by_test_id("runs").locator("tbody tr").count() == 2
        charts = page.locator(".charts img")
        assert charts.count() == 4
        assert all(charts.nth(i).evaluate("img => img.naturalWidth") > 0 for i in range(4))  # drawn
        assert "No sweep yet" in page.locator("main").inner_text()
        browser.shot("10-experiments")
        browser.assert_clean(board.url)
    finally:
        browser.close()
        board.stop()


def test_a_long_history_is_shown_a_page_at_a_time_keeping_the_filters(
    trained_project: ProjectFactory, playwright: Any
) -> None:
    project = trained_project("simple")  # dev v1 and registry v1, from its commit
    instance = Instance.open(project)
    first = next(iter(catalog.list_versions(instance.db, workspace="dev")))
    assert first.created_at is not None
    with instance.db.write() as connection:  # a year of inner loops: dev v2..v120, one a minute
        for number in range(2, 121):
            made = first.created_at + timedelta(minutes=number)
            commit = f"{number:02x}" * 20
            catalog.add(connection, replace(first, version=number, git_commit=commit, created_at=made), "ci")
            for _ in range(5):  # and its events: 595 in all, with those of the first inner loop
                audit.append(
                    connection,
                    Registered(
                        actor="ci", workspace="dev", model=first.name, version=number, git_commit=commit
                    ),
                )
    board = Dashboard(project)
    browser = Browser(playwright)
    try:
        page = browser.page

        pager = page.get_by_test_id("pager")

        def shown(expected: str) -> list[str]:
            """The versions listed once the page that says `expected` in its pager has replaced this one."""
            expect(pager).to_contain_text(expected)  # a click only starts the next page's load
            cells = page.locator("table.models tbody tr td:nth-child(2)").all_inner_texts()
            return [" ".join(cell.split()[1:2]) for cell in cells]

        page.goto(f"{board.url}/ui/models")
        assert shown("Versions 1–50 of 121") == [f"v{n}" for n in range(120, 70, -1)]  # the newest 50
        assert "Newer" not in pager.inner_text()
        page.click("a[rel=next]")
        assert shown("Versions 51–100 of 121") == [f"v{n}" for n in range(70, 20, -1)]
        page.click("a[rel=next]")
        versions = shown("Versions 101–121 of 121")
        assert len(versions) == 21 and versions[-2:] == ["v1", "v1"]  # dev's first and the registry's
        assert "Older" not in pager.inner_text()
        page.click("a[rel=prev]")
        shown("Versions 51–100 of 121")
        page.goto(f"{board.url}/ui/models?page=99")  # past the end: the last page
        shown("Versions 101–121 of 121")
        page.goto(f"{board.url}/ui/models?page=first")  # not a number: the first page
        shown("Versions 1–50 of 121")

        # The filters hold across pages.
        page.goto(f"{board.url}/ui/models?commit=0707")  # v7's commit, and no other
        assert shown("Versions 1–1 of 1") == ["v7"] and "Older" not in pager.inner_text()
        page.fill("input[name=commit]", "")
        page.select_option("select[name=model]", first.name)
        page.click("form.filters button")
        shown("Versions 1–50 of 121")
        page.click("a[rel=next]")
        shown("Versions 51–100 of 121")
        assert f"model={first.name}" in page.url

        # The history page shows 500 events at a time, newest first, and pages back through the rest.
        total = len(loopline.history(project))
        rows = page.locator("table.timeline tbody tr")
        page.goto(f"{board.url}/ui/history")
        assert rows.count() == 500 and "Newest" not in page.get_by_test_id("pager").inner_text()
        newest_page = rows.all_inner_texts()
        # A click starts the next page's load; the rows are read once it has replaced this one.
        page.click("a[rel=next]")
        expect(rows).to_have_count(total - 500)
        assert "Older" not in page.get_by_test_id("pager").inner_text()
        assert rows.all_inner_texts()[0] != newest_page[-1]  # no event shown twice
        page.click("a[rel=first]")
        expect(rows).to_have_count(500)
        assert rows.all_inner_texts() == newest_page
        page.goto(f"{board.url}/ui/history?workspace=dev")  # the filters hold across pages
        page.click("a[rel=next]")
        page.wait_for_url("**before=*")
        assert "workspace=dev" in page.url and "before=" in page.url
        assert all("dev" in row for row in rows.all_inner_texts())
        page.goto(f"{board.url}/ui/history?commit=0707")
        assert rows.count() == 5 and page.get_by_test_id("pager").count() == 0
        browser.assert_clean(board.url)
    finally:
        browser.close()
        board.stop()


def test_behind_a_proxy_that_serves_it_under_a_path_every_link_and_redirect_stays_under_that_path(
    trained_project: ProjectFactory, playwright: Any
) -> None:
    project = trained_project("simple")
    commit = git(project, "rev-parse", "HEAD")
    loopline.user_add("ada", project=project)
    loopline.user_grant("ada", "reader", "*", project=project)
    token = str(loopline.token_create("ada", project=project).secret)
    served = {"LOOPLINE_CONTROL_PLANE__ROOT_PATH": "/loopline"}
    with ControlPlane(project, env=served) as plane, PathProxy(plane.url, "/loopline") as proxy:
        browser = Browser(playwright)
        try:
            page = browser.page
            page.goto(f"{proxy.url}/")
            assert page.url == f"{proxy.url}/ui/signin"
            page.fill("input[name=token]", token)
            page.click("form.signin button")
            assert page.url.startswith(f"{proxy.url}/ui/?flash=")
            assert "signed in as ada" in page.locator(".flash").inner_text()
            page.click("nav >> text=Models")
            assert page.url == f"{proxy.url}/ui/models"
            page.click(f"a.sha[title='{commit}']")
            assert page.url == f"{proxy.url}/ui/commits/{commit}"
            assert commit[:7] in page.locator("h1").inner_text()
            page.click("button.link")  # sign out: a form, then a redirect
            assert page.url == f"{proxy.url}/ui/signin"
            page.goto(f"{proxy.url}/ui/models")  # the session cookie went with the sign-out
            assert page.url == f"{proxy.url}/ui/signin"
            assert not browser.failed, browser.failed
            browser.assert_clean(proxy.url)
            # MLflow's own UI, from the experiments page, stays under the path too.
            page.fill("input[name=token]", token)
            page.click("form.signin button")
            page.click("nav >> text=Experiments")
            link = page.locator("[data-testid=runs] a").first
            run_id = str(link.get_attribute("href")).rsplit("/", 1)[1]
            link.click()
            assert page.url == f"{proxy.url}/ui/mlflow/#/runs/{run_id}"
            name = mlflow_client(project, "dev").get_run(run_id).info.run_name
            page.get_by_text(name).first.wait_for(timeout=60_000)
            assert all(url.startswith(proxy.url) for url in browser.requests), browser.requests
        finally:
            browser.close()
        # The SDK (and the CLI) reach the API under the same path, as LOOPLINE_URL names it.
        status = loopline.connect(proxy.url, token).status()
        assert {(m.workspace, m.git_commit) for m in status.models} == {("dev", commit), ("shared", commit)}


def test_the_batch_page_shows_each_endpoint_s_jobs_and_moves_its_default_behind_a_dialog(
    a_live_b_registered: tuple[Path, str, str], playwright: Any, tmp_path: Path
) -> None:
    project, _a, b = a_live_b_registered
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("x\n1.0\n")  # rows without the model's columns
    loopline.upload_data("narrow", narrow, project=project)
    loopline.register_data("heldout", "inbox://heldout.csv", project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    loopline.create_batch_deployment("scorer", "green", version=2, project=project)
    scored = loopline.batch_invoke("scorer", "heldout", project=project)
    with pytest.raises(LooplineError, match="no column"):
        loopline.batch_invoke("scorer", "narrow", project=project)
    failed = loopline.batch_jobs("scorer", limit=1, project=project)[0]
    assert (failed.status, failed.input) == ("failed", "narrow:1")
    released = next(m for m in loopline.status(project).models if m.workspace == "prod")
    loopline.create_batch_endpoint("nightly", "prod", project=project)
    loopline.create_batch_deployment("nightly", "blue", version=released.version, project=project)
    nightly = loopline.batch_invoke("nightly", "heldout", project=project)

    board = Dashboard(project)
    browser = Browser(playwright)
    try:
        page = browser.page
        page.goto(f"{board.url}/ui/")  # the topology says what each workspace's batch endpoints score with
        scoring = page.get_by_test_id("batch-prod-nightly").inner_text()
        assert scoring == f"batch nightly scores with {released.git_commit[:7]} v{released.version}"
        assert page.get_by_test_id("batch-dev-scorer").inner_text().endswith("v1")
        page.get_by_role("link", name="Batch").click()
        assert page.get_by_test_id("batch-default-is-dev-scorer").inner_text() == "blue"
        green = page.get_by_test_id("batch-deployment-dev-scorer-green").inner_text()
        assert "v2" in green and b[:7] in green
        rows = page.get_by_test_id("jobs-dev-scorer").locator("tr.job")
        assert [rows.nth(i).get_attribute("data-testid") for i in range(rows.count())] == [
            f"job-{failed.id}",  # newest first
            f"job-{scored.id}",
        ]
        done = page.get_by_test_id(f"job-{scored.id}").inner_text()
        assert "succeeded" in done and f"{scored.rows:,}" in done and "heldout:1" in done
        assert scored.output in done and " s" in done  # where its predictions are, and how long it took
        assert "failed" in page.get_by_test_id(f"job-{failed.id}").inner_text()
        assert failed.output not in page.locator("main").inner_text()  # it wrote nothing there
        assert "no column" in page.get_by_test_id(f"job-error-{failed.id}").inner_text()
        assert nightly.id in page.get_by_test_id("jobs-prod-nightly").inner_text()
        assert page.get_by_test_id("batch-default-prod-nightly").count() == 0  # one deployment: no choice
        browser.shot("11-batch")

        page.get_by_test_id("batch-default-choice-dev-scorer").select_option("green")
        page.get_by_test_id("batch-default-dev-scorer").click()
        asked = page.locator("dialog#confirm").inner_text()
        assert (
            f"Make green (v2, {b[:7]}) the default of batch endpoint scorer (dev) in place of blue" in asked
        )
        page.locator("#confirm-ok").click()
        page.wait_for_url("**/ui/batch?flash=*")
        assert "scorer scores with green (was blue)" in page.locator(".flash").inner_text()
        assert page.get_by_test_id("batch-default-is-dev-scorer").inner_text() == "green"

        # Someone else puts blue back while the page shows green: its form names green, and is refused.
        loopline.batch_rollback("scorer", project=project)
        page.get_by_test_id("batch-default-choice-dev-scorer").select_option("blue")
        page.get_by_test_id("batch-default-dev-scorer").click()
        page.locator("#confirm-ok").click()
        page.wait_for_url("**/ui/batch?error=*")
        assert "is blue, not green as expected" in page.locator(".flash.error").inner_text()
        browser.assert_clean(board.url)
    finally:
        browser.close()
        board.stop()
    promoted = [r.event for r in loopline.history(project, kind="batch-promoted")]
    assert [(e.target, e.reason) for e in promoted] == [
        ("batch:scorer/green", "from the dashboard"),
        ("batch:scorer/blue", "rollback"),
    ]

    # On the control plane, a reader of dev sees dev's batch endpoint only, and may not move its default.
    loopline.user_add("devon", project=project)
    loopline.user_grant("devon", "reader", "dev", project=project)
    token = str(loopline.token_create("devon", project=project).secret)
    with ControlPlane(project) as plane:
        browser = Browser(playwright)
        try:
            page = browser.page
            page.goto(f"{plane.url}/ui/signin")
            page.fill("input[name=token]", token)
            page.click("form.signin button")
            expect(page.locator(".flash")).to_contain_text("signed in as devon")
            page.goto(f"{plane.url}/ui/batch")
            assert page.get_by_test_id("batch-endpoint-dev-scorer").count() == 1
            assert page.get_by_test_id("batch-endpoint-prod-nightly").count() == 0
            assert nightly.id not in page.locator("main").inner_text()
            page.get_by_test_id("batch-default-dev-scorer").click()
            page.locator("#confirm-ok").click()
            page.wait_for_url("**/ui/batch?error=*")
            refusal = page.locator(".flash.error").inner_text()
            assert "devon may not batch promote: it needs the developer role on workspace 'dev'" in refusal
            browser.assert_clean(plane.url)
        finally:
            browser.close()
        # Nor does the API show prod's job to dev's reader by its id, as it did before the role was checked.
        assert plane.post("batch_job", {"job_id": nightly.id}, token).status_code == 403
        assert plane.post("batch_job", {"job_id": scored.id}, token).json()["id"] == scored.id


def test_the_batch_page_says_which_batch_endpoints_lag_the_model_their_workspace_serves_and_the_way_on(
    a_live_b_registered: tuple[Path, str, str],
) -> None:
    project, a, b = a_live_b_registered
    live = next(m for m in loopline.status(project).models if m.workspace == "prod")
    loopline.create_batch_endpoint("nightly", "prod", project=project)
    loopline.create_batch_deployment("nightly", "blue", version=live.version, project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)  # dev serves no online endpoint
    loopline.create_batch_deployment("scorer", "blue", version=1, project=project)
    board = Dashboard(project)
    try:

        def batch_page() -> str:
            answer = httpx.get(f"{board.url}/ui/batch", timeout=30)
            assert answer.status_code == 200, answer.text
            return answer.text

        assert 'data-testid="batch-behind-' not in batch_page()  # it scores with what prod serves
        # A release moves the online endpoint only: the page says nightly lags it, and how to catch up.
        loopline.outer_loop_prod(project, commit=b)
        released = next(
            m for m in loopline.status(project).models if m.workspace == "prod" and m.git_commit == b
        )
        page = batch_page()
        notice = page.split('data-testid="batch-behind-prod-nightly-proj">', 1)[1].split("</p>", 1)[0]
        assert f"Online endpoint proj serves v{released.version}" in notice and f">{b[:7]}</a>" in notice
        assert "nightly still scores with blue (" in notice and f">{a[:7]}</a>" in notice
        assert (
            f"<code>loopline batch-deployment create nightly NAME --commit {b[:7]} --workspace prod</code>, "
            "then <code>loopline batch promote nightly NAME --workspace prod</code>"
        ) in notice
        assert page.count('data-testid="batch-behind-') == 1
        # With a deployment of that commit, the way on is the page's own form; once default, all is said.
        loopline.create_batch_deployment("nightly", "green", version=released.version, project=project)
        notice = batch_page().split('data-testid="batch-behind-prod-nightly-proj">', 1)[1].split("</p>", 1)[0]
        assert f"To score with {b[:7]} too, make green the default below." in notice
        loopline.batch_promote("nightly", "green", workspace="prod", project=project)
        assert 'data-testid="batch-behind-' not in batch_page()
    finally:
        board.stop()


def test_a_deployment_answering_otherwise_becomes_the_batch_default_from_the_page_only_saying_why(
    trained_project: ProjectFactory, playwright: Any
) -> None:
    project = trained_project("simple")
    a = batch_scorer_answering_otherwise(project)  # blue (v1) answers a label, green (v2) probabilities

    board = Dashboard(project)
    browser = Browser(playwright)
    try:
        page = browser.page
        page.goto(f"{board.url}/ui/batch")
        page.get_by_test_id("batch-default-choice-dev-scorer").select_option("green")
        page.get_by_test_id("batch-default-dev-scorer").click()
        assert "Its answers may differ" not in page.locator("dialog#confirm").inner_text()
        page.locator("#confirm-ok").click()
        page.wait_for_url("**/ui/batch?error=*")
        refusal = page.locator(".flash.error").inner_text()
        assert f"answers a list of 2 numbers per row, where blue (v1, {a[:7]}), the default" in refusal
        assert refusal.endswith('tick "its answers change on purpose" and say why in the reason')
        assert "--breaking-change" not in refusal  # the way out on this page, not the command line's
        assert page.get_by_test_id("batch-default-is-dev-scorer").inner_text() == "blue"

        page.goto(f"{board.url}/ui/batch")  # a clean address: the next refusal's is awaited
        page.get_by_test_id("batch-default-choice-dev-scorer").select_option("green")
        page.get_by_test_id("batch-breaking-dev-scorer").check()  # ticked, but no reason given
        page.get_by_test_id("batch-default-dev-scorer").click()
        assert "Its answers may differ in form or labels" in page.locator("dialog#confirm").inner_text()
        page.locator("#confirm-ok").click()
        page.wait_for_url("**/ui/batch?error=*")
        assert "say in the reason why the answers" in page.locator(".flash.error").inner_text()
        assert page.get_by_test_id("batch-default-is-dev-scorer").inner_text() == "blue"

        why = "the nightly report reads probabilities from today"
        page.goto(f"{board.url}/ui/batch")
        page.get_by_test_id("batch-default-choice-dev-scorer").select_option("green")
        page.get_by_test_id("batch-reason-dev-scorer").fill(why)
        page.get_by_test_id("batch-breaking-dev-scorer").check()
        page.get_by_test_id("batch-default-dev-scorer").click()
        page.locator("#confirm-ok").click()
        page.wait_for_url("**/ui/batch?flash=*")
        assert "scorer scores with green (was blue)" in page.locator(".flash").inner_text()
        assert page.get_by_test_id("batch-default-is-dev-scorer").inner_text() == "green"
        browser.assert_clean(board.url)
    finally:
        browser.close()
        board.stop()
    refused = [r.event for r in loopline.history(project, kind="refused")]
    assert [e.details["step"] for e in refused] == ["batch promote"]  # the unticked try; the empty reason
    event = loopline.history(project, kind="batch-promoted")[-1].event  # never reached the promotion
    assert (event.target, event.reason) == ("batch:scorer/green", why)
    assert event.details["breaking_change"]["reason"] == why


def test_a_page_asked_for_with_any_query_answers_a_page_or_says_what_is_wrong(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    board = Dashboard(project)
    try:
        huge = "9" * 5000  # past the digits Python turns into a number
        for page in (
            f"models?page={huge}",
            "models?page=%C2%B2",
            f"history?before={huge}",
            "history?before=%C2%B2",
        ):
            answer = httpx.get(f"{board.url}/ui/{page}")
            assert answer.status_code == 200, (page, answer.text[-300:])
        assert "provisioned" in httpx.get(f"{board.url}/ui/history?before={huge}").text  # as with no before
        for commit, said in (("%00", "commit holds a NUL character"), ("--show-toplevel", "is not a commit")):
            answer = httpx.get(f"{board.url}/ui/history?commit={commit}")
            assert answer.status_code == 400 and said in answer.text, answer.text[-300:]
    finally:
        board.stop()


def test_the_dashboard_at_this_machine_answers_no_page_asked_for_by_another_name(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    board = Dashboard(project)
    try:
        port = board.url.rsplit(":", 1)[1]
        rebound = {"Host": f"rebound.example:{port}"}  # a site whose name now resolves to 127.0.0.1
        for path in ("/", "/ui/", "/ui/endpoints", "/ui/history", "/ui/mlflow/"):
            refused = httpx.get(f"{board.url}{path}", headers=rebound)
            assert refused.status_code == 403, (path, refused.text[:200])
            assert "as http://127.0.0.1 or http://localhost" in refused.text  # MLflow's UI says it in JSON
            assert 'name="csrf"' not in refused.text
        posted = httpx.post(f"{board.url}/ui/actions/rollback", headers=rebound, data={"endpoint": "proj"})
        assert posted.status_code == 403
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1"):
            assert httpx.get(f"{board.url}/ui/endpoints", headers={"Host": host}).status_code == 200
    finally:
        board.stop()
