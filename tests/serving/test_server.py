"""A real `loopline serve` process on 127.0.0.1: the scoring contract end to end."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import signal
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

import loopline
from loopline.endpoints.keys import hash_key, served_mark
from tests.helpers import cli, input_example, model_version, system_key
from tests.servers import Server

pytestmark = pytest.mark.slow


@dataclass
class Served:
    server: Server
    key: str
    columns: list[str]
    rows: list[list[float]]
    project: Path

    def post(
        self,
        endpoint: str,
        route: str,
        body: object,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"content-type": content_type, **(headers or {})}
        if key is not None:
            sent["authorization"] = f"Bearer {key}"
        return httpx.post(
            f"{self.server.url}/endpoints/{endpoint}/{route}", content=raw, headers=sent, timeout=30
        )


@pytest.fixture(scope="module")
def served(served_project: Path) -> Iterator[Served]:
    created = loopline.create_endpoint("srv", "dev", project=served_project)
    loopline.create_deployment("srv", "blue", version=1, project=served_project)
    loopline.create_deployment("srv", "green", version=2, check=False, project=served_project)
    loopline.create_endpoint("open", "dev", auth="none", project=served_project)
    loopline.create_deployment("open", "blue", version=1, check=False, project=served_project)
    loopline.create_endpoint("fragile", "dev", auth="none", project=served_project)
    loopline.create_deployment("fragile", "only", model="fragile", version=1, project=served_project)
    columns, rows = input_example(served_project)
    server = Server(served_project)
    with server:
        yield Served(server, created.keys["primary"], columns, rows, served_project)


def test_score_answers_with_the_models_predictions_and_names_who_answered(served: Served) -> None:
    import mlflow.pyfunc
    import pandas as pd

    answer = served.post(
        "srv",
        "score",
        {"input_data": {"columns": served.columns, "index": [0, 1, 2], "data": served.rows}},
        key=served.key,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["loopline-deployment"] == "blue"
    assert answer.headers["loopline-model-version"] == "1"
    assert len(answer.headers["loopline-git-commit"]) == 40
    source = model_version(served.project, 1)
    model = mlflow.pyfunc.load_model(source.source_uri)
    expected = model.predict(pd.DataFrame(served.rows, columns=served.columns)).tolist()
    assert answer.json() == expected


@pytest.mark.parametrize("body", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_invocations_accept_every_mlflow_format(served: Served, body: str) -> None:
    records = [dict(zip(served.columns, row, strict=True)) for row in served.rows]
    payload = {
        "dataframe_split": {"columns": served.columns, "data": served.rows},
        "dataframe_records": records,
        "instances": records,
        "inputs": {c: [row[i] for row in served.rows] for i, c in enumerate(served.columns)},
    }[body]
    answer = served.post("srv", "invocations", {body: payload}, key=served.key)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == len(served.rows)


def test_invocations_accept_csv(served: Served) -> None:
    lines = [",".join(served.columns)] + [",".join(str(v) for v in row) for row in served.rows]
    answer = served.post(
        "srv", "invocations", "\n".join(lines).encode(), key=served.key, content_type="text/csv"
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == 3


def test_keys_are_required_unless_the_endpoint_has_none(served: Served) -> None:
    body = {"input_data": {"columns": served.columns, "data": served.rows[:1]}}
    missing = served.post("srv", "score", body)
    assert missing.status_code == 401 and missing.json()["error_code"] == "UNAUTHORIZED"
    wrong = served.post("srv", "score", body, key="ll_wrong")
    assert wrong.status_code == 401
    assert served.post("open", "score", body).status_code == 200


def test_the_deployment_header_bypasses_traffic(served: Served) -> None:
    body = {"input_data": {"columns": served.columns, "data": served.rows}}
    green = served.post("srv", "score", body, key=served.key, headers={"loopline-deployment": "green"})
    assert green.status_code == 200 and green.headers["loopline-deployment"] == "green"
    assert green.headers["loopline-model-version"] == "2"
    unknown = served.post("srv", "score", body, key=served.key, headers={"loopline-deployment": "purple"})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "UNKNOWN_DEPLOYMENT"
    # The same by the path, for clients that can set a URL but no header; the key is checked as ever.
    split = {"dataframe_split": {"columns": served.columns, "data": served.rows}}
    for route, sent in (("deployments/green/score", body), ("deployments/green/invocations", split)):
        named = served.post("srv", route, sent, key=served.key)
        assert named.status_code == 200 and named.headers["loopline-deployment"] == "green", named.text
        assert named.content == green.content if route.endswith("score") else named.json()["predictions"]
    assert served.post("srv", "deployments/purple/score", body, key=served.key).status_code == 404
    assert served.post("srv", "deployments/green/score", body).status_code == 401
    assert served.post("srv", "deployments/green/predict", body, key=served.key).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{oops", "application/json", 400, "BAD_JSON"),
        (b"", "application/json", 400, "EMPTY_BODY"),
        (b"", "", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"input_data": {"data": [[1]]}}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"input_data": {"data": [[1]]}}', "application/json; charset=latin-1", 415, "UNSUPPORTED_CHARSET"),
        (b'{"input_data": {"columns": ["nope"], "data": [[1]]}}', "application/json", 400, "MISSING_COLUMN"),
    ],
)
def test_client_errors_are_4xx_with_a_code(
    served: Served, body: bytes, content_type: str, status: int, code: str
) -> None:
    answer = served.post("srv", "score", body, key=served.key, content_type=content_type)
    assert answer.status_code == status
    assert answer.json()["error_code"] == code
    assert "oops" not in answer.text


def test_a_body_over_the_limit_is_413_naming_the_limit(served: Served) -> None:
    big = b'{"input_data": {"data": [' + b"[1.0]," * 2_000_000 + b"[1.0]]}}"
    answer = served.post("srv", "score", big, key=served.key)
    assert answer.status_code == 413
    assert "limit of 10485760 bytes (serving.max_body_bytes" in answer.json()["message"]


def test_a_compressed_body_is_read_as_its_content_encoding_says_within_the_limit(served: Served) -> None:
    body = json.dumps({"input_data": {"columns": served.columns, "data": served.rows[:2]}}).encode()
    plain = served.post("srv", "score", body, key=served.key)
    assert plain.status_code == 200
    for name, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        answer = served.post("srv", "score", packed, key=served.key, headers={"content-encoding": name})
        assert (answer.status_code, answer.json()) == (200, plain.json()), name
    # a small body that inflates past the limit is refused as a large one, never inflated whole
    bomb = gzip.compress(b'{"input_data": {"data": [' + b" " * 20_000_000 + b"]}}")
    assert len(bomb) < 100_000
    answer = served.post("srv", "score", bomb, key=served.key, headers={"content-encoding": "gzip"})
    assert answer.status_code == 413 and answer.json()["error_code"] == "TOO_LARGE"
    cut = served.post(
        "srv", "score", gzip.compress(body)[:-9], key=served.key, headers={"content-encoding": "gzip"}
    )
    assert (cut.status_code, cut.json()["error_code"]) == (400, "BAD_ENCODING")
    brotli = served.post("srv", "score", body, key=served.key, headers={"content-encoding": "br"})
    assert (brotli.status_code, brotli.json()["error_code"]) == (415, "UNSUPPORTED_ENCODING")
    assert "gzip or deflate" in brotli.json()["message"]
    assert (
        served.post(
            "srv", "score", body, key=served.key, headers={"content-encoding": "identity"}
        ).status_code
        == 200
    )
    # inflated only for a caller with the key: a stranger's bomb costs the server no inflating
    stranger = served.post("srv", "score", bomb, headers={"content-encoding": "gzip"})
    assert stranger.status_code == 401


def test_a_model_that_raises_gives_500_and_the_server_keeps_serving(served: Served) -> None:
    bad = served.post("fragile", "invocations", {"dataframe_records": [{"x": -1.0, "name": "a", "count": 1}]})
    assert bad.status_code == 500
    assert bad.json() == {
        "error_code": "MODEL_ERROR",
        "message": "deployment 'only' failed on column 'x' (with the input example's value there, the model "
        "answers): ValueError: negative input",
    }
    good = served.post("fragile", "invocations", {"dataframe_records": [{"x": 2.0, "name": "a", "count": 1}]})
    # the model answers a pandas Series named x: written as MLflow's server writes it, a table of one column
    assert good.status_code == 200 and good.json() == {"predictions": [{"x": 4.0}]}
    logged = served.server.errors.read_text()  # the server logs the cause, with its traceback
    assert "the model failed on column 'x'" in logged and "ValueError: negative input" in logged
    assert "Traceback" in logged
    wrong = served.post(
        "fragile", "invocations", {"dataframe_records": [{"x": "two", "name": "a", "count": 1}]}
    )
    assert wrong.status_code == 400
    huge = served.post(
        "fragile", "invocations", {"dataframe_records": [{"x": 2.0, "name": "a", "count": 2**64}]}
    )
    assert huge.status_code == 400
    assert huge.json()["message"] == "column 'count' row 0: expected an integer that fits in 64 bits"


def test_health_readiness_metrics_and_openapi(served: Served) -> None:
    url = served.server.url
    # alive, with a mark of each endpoint served, by which loopline's commands know their workspace's server
    marks = {
        served_mark(hash_key(system_key(served.project, name, "dev"))) for name in ("srv", "open", "fragile")
    }
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok", "serves": sorted(marks)}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200 and ready.json()["endpoints"]["srv"] == {
        "blue": "ready",
        "green": "ready",
    }
    assert httpx.get(f"{url}/endpoints/srv/deployments/green/ready").json()["state"] == "ready"
    assert httpx.get(f"{url}/endpoints/srv/deployments/nope/ready").status_code == 404
    for path in ("/ping", "/health"):  # MLflow's server's, which probes written for it call
        assert httpx.get(f"{url}{path}").status_code == 200, path
    version = httpx.get(f"{url}/version")  # and its version route, as a client of it reads it: the text
    assert (version.status_code, version.text) == (200, importlib.metadata.version("mlflow"))
    assert version.headers["content-type"].startswith("text/plain")
    served.post(
        "srv", "score", {"input_data": {"columns": served.columns, "data": served.rows}}, key=served.key
    )
    metrics = httpx.get(f"{url}/metrics").text
    assert 'loopline_requests_total{deployment="blue",endpoint="srv",status="200"}' in metrics
    assert "loopline_request_latency_seconds_bucket" in metrics
    assert 'loopline_deployment_ready{deployment="green",endpoint="srv"} 1.0' in metrics
    document = httpx.get(f"{url}/openapi.json").json()
    score = document["paths"]["/endpoints/{name}/score"]["post"]["requestBody"]["content"]["application/json"]
    assert score["schema"]["oneOf"] == [{"required": ["input_data"]}, {"required": ["data"]}]
    from openapi_spec_validator import OpenAPIV31SpecValidator  # as client generators check it

    assert [str(e) for e in OpenAPIV31SpecValidator(document).iter_errors()] == []


def test_head_answers_as_get_without_a_body_and_a_405_names_the_methods(served: Served) -> None:
    """Uptime monitors and load balancers check health with HEAD (HTTP has every GET route take it)."""
    url = served.server.url
    for path in (
        "/healthz",
        "/readyz",
        "/ping",
        "/version",
        "/metrics",
        "/openapi.json",
        "/endpoints/srv/deployments/blue/ready",
    ):
        got, head = httpx.get(f"{url}{path}"), httpx.head(f"{url}{path}")
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers["content-type"] == got.headers["content-type"]
    described = httpx.head(f"{url}/endpoints/srv", headers={"Authorization": f"Bearer {served.key}"})
    assert described.status_code == 200
    assert httpx.head(f"{url}/endpoints/srv").status_code == 401  # as GET: a key first
    for method, path, allow in (
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/readyz", "GET, HEAD"),
        ("GET", "/endpoints/srv/score", "POST"),
        ("PUT", "/endpoints/srv/invocations", "POST"),
    ):
        refused = httpx.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {served.key}"})
        assert refused.status_code == 405 and refused.headers["allow"] == allow, (method, path)
        assert refused.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_mlflow_s_root_scoring_path_is_told_where_each_endpoint_scores(served: Served) -> None:
    """A client moved from ``mlflow models serve`` posts to ``/invocations``: it is told the endpoint's path,
    where a 405 said only that POST was not allowed."""
    for route in ("invocations", "score"):
        refused = httpx.post(
            f"{served.server.url}/{route}",
            json={"dataframe_split": {"columns": served.columns, "data": served.rows}},
            headers={"Authorization": f"Bearer {served.key}"},
        )
        assert refused.status_code == 404
        assert refused.json() == {
            "error_code": "NOT_FOUND",
            "message": f"no route /{route}: a loopline server serves several endpoints, each at "
            f"/endpoints/NAME/{route} (served here: fragile, open, srv)",
        }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_serve_as_a_stop_not_an_error(served_project: Path, sig: int) -> None:
    """Kubernetes, Docker and systemd stop a server with SIGTERM, a person with Ctrl-C: exit 0, no error."""
    server = Server(served_project, "dev")
    server.wait_ready()
    assert server.stop(sig) == 0
    assert "error" not in server.errors.read_text().lower()


def test_every_request_writes_one_structured_log_line(served: Served) -> None:
    served.post(
        "srv",
        "score",
        {"input_data": {"columns": served.columns, "data": served.rows}},
        key=served.key,
        headers={"loopline-deployment": "green"},
    )
    time.sleep(0.5)
    lines = [json.loads(line) for line in served.server.log.read_text().splitlines() if line.startswith("{")]
    last = [line for line in lines if line["deployment"] == "green"][-1]
    assert (
        last["endpoint"] == "srv"
        and last["model_version"] == 2
        and last["status"] == 200
        and last["rows"] == 3
    )
    assert len(last["git_commit"]) == 40 and last["latency_ms"] > 0
    assert served.key not in served.server.log.read_text()


@pytest.mark.timing
def test_key_rotation_is_followed_within_a_second(served: Served) -> None:
    body = {"input_data": {"columns": served.columns, "data": served.rows[:1]}}
    loopline.create_endpoint("rot", "dev", project=served.project)
    fresh = loopline.endpoint_keys("rot", regenerate="secondary", project=served.project).regenerated[
        "secondary"
    ]
    loopline.create_deployment("rot", "blue", version=1, check=False, project=served.project)
    served.server.wait_for("rot", "blue")
    assert served.post("rot", "score", body, key=fresh).status_code == 200
    started = time.monotonic()
    newer = loopline.endpoint_keys("rot", regenerate="secondary", project=served.project).regenerated[
        "secondary"
    ]
    while served.post("rot", "score", body, key=fresh).status_code == 200:
        assert time.monotonic() - started < 1.5
        time.sleep(0.02)
    assert served.post("rot", "score", body, key=newer).status_code == 200


def test_a_key_regenerated_a_moment_ago_is_taken_by_the_very_next_request(served: Served) -> None:
    # A script's next line after `endpoint keys --regenerate` (docs/endpoints.md does so) comes before the
    # server's next look at the database: an unknown key makes it look once before refusing.
    body = {"input_data": {"columns": served.columns, "data": served.rows[:1]}}
    loopline.create_endpoint("next", "dev", project=served.project)
    loopline.create_deployment("next", "blue", version=1, check=False, project=served.project)
    served.server.wait_for("next", "blue")
    for _ in range(5):
        fresh = loopline.endpoint_keys("next", regenerate="secondary", project=served.project)
        answered = served.post("next", "score", body, key=fresh.regenerated["secondary"])
        assert answered.status_code == 200, answered.text
    wrong = served.post("next", "score", body, key="ll_not-a-key")
    assert (wrong.status_code, wrong.json()["error_code"]) == (401, "UNAUTHORIZED")
    nowhere = served.post("nowhere", "score", body, key="ll_not-a-key")
    assert (nowhere.status_code, nowhere.json()["error_code"]) == (404, "UNKNOWN_ENDPOINT")


def test_predictions_match_in_process_predict_for_many_rows(served: Served) -> None:
    rng = np.random.default_rng(0)
    rows = (np.array(served.rows[0]) * rng.uniform(0.5, 1.5, size=(200, len(served.columns)))).tolist()
    answer = served.post(
        "srv", "score", {"input_data": {"columns": served.columns, "data": rows}}, key=served.key
    )
    import mlflow.sklearn

    source = model_version(served.project, 1)
    expected = mlflow.sklearn.load_model(source.source_uri).predict(np.array(rows)).tolist()
    assert answer.json() == expected


def test_the_cli_sends_a_table_file_as_the_table_its_suffix_says(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    monkeypatch.setenv("LOOPLINE_WORKSPACES__DEV__ENDPOINTS_URL", served.server.url)
    rows = pd.DataFrame(served.rows, columns=served.columns)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    rows.to_parquet(tmp_path / "rows.parquet")
    (tmp_path / "rows.json").write_text(json.dumps({"dataframe_split": rows.to_dict(orient="split")}))
    answers = []
    for name in ("rows.json", "rows.csv", "rows.parquet"):
        sent = cli(
            capsys,
            "endpoint",
            "invoke",
            "srv",
            "-d",
            "blue",
            "-f",
            str(tmp_path / name),
            "-C",
            str(served.project),
            "--json",
        )
        assert sent.exit_code == 0, sent.stdout + sent.stderr
        answers.append(sent.json()["body"]["predictions"])
    assert answers[0] == answers[1] == answers[2] and len(answers[0]) == len(served.rows)
