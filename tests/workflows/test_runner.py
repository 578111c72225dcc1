"""The local runner: what it runs, and what it refuses with the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.errors import UsageError
from loopline.workflows.runner import WorkflowUnsupported, run_workflow
from tests.conftest import ProjectFactory
from tests.helpers import cli, commit_all, git, wait_until


def repo_with(tmp_path: Path, workflow: str, name: str = "w") -> Path:
    root = tmp_path / "repo"
    (root / ".github" / "workflows").mkdir(parents=True)
    git(root, "init", "--quiet")
    (root / ".github" / "workflows" / f"{name}.yml").write_text(workflow)
    commit_all(root, "workflow")
    return root


STEPS = """\
name: w
on:
  push:
  workflow_dispatch:
    inputs:
      who:
        required: true
        type: string
      mood:
        required: false
        default: calm
env:
  GREETING: hello
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      said: ${{ steps.say.outputs.said }}
    steps:
      - uses: actions/checkout@v4
      - id: say
        env:
          WHO: ${{ inputs.who }}
        run: |
          echo "said=$GREETING $WHO ($GITHUB_EVENT_NAME, ${GITHUB_SHA:0:7})" >> "$GITHUB_OUTPUT"
          echo "## Said hello" >> "$GITHUB_STEP_SUMMARY"
      - if: inputs.mood == 'angry'
        run: exit 1
  second:
    needs: first
    if: needs.first.outputs.said != ''
    runs-on: ubuntu-latest
    steps:
      - id: echo
        run: echo "heard=${{ needs.first.outputs.said }}" >> "$GITHUB_OUTPUT"
      - run: exit 3
      - id: never
        run: echo never
      - if: failure()
        id: cleanup
        run: echo "cleaned=yes" >> "$GITHUB_OUTPUT"
"""


def test_steps_outputs_inputs_conditions_and_summary(tmp_path: Path) -> None:
    root = repo_with(tmp_path, STEPS)
    head = git(root, "rev-parse", "HEAD")
    run = run_workflow(root, "w", inputs={"who": "ada"})
    first, second = run.jobs
    assert run.event == "workflow_dispatch" and run.inputs == {"who": "ada", "mood": "calm"}
    assert first.status == "success"
    assert first.outputs["said"] == f"hello ada (workflow_dispatch, {head[:7]})"
    assert [s.status for s in first.steps] == ["skipped", "success", "skipped"]
    assert first.steps[0].note == "actions/checkout@v4: this machine is set up already"
    assert second.status == "failure" and not run.succeeded
    assert [s.status for s in second.steps] == ["success", "failure", "skipped", "success"]
    assert second.steps[0].outputs == {"heard": first.outputs["said"]}
    assert second.steps[3].outputs == {"cleaned": "yes"}
    assert "## Said hello" in run.summary


CARRIED = """\
name: w
on: workflow_dispatch
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      tag: ${{ steps.use.outputs.tag }}
    steps:
      - name: Export
        run: |
          mkdir -p "$RUNNER_TEMP/bin" && printf '#!/bin/sh\\necho from-tool\\n' > "$RUNNER_TEMP/bin/mytool"
          chmod +x "$RUNNER_TEMP/bin/mytool"
          echo "MODEL_TAG=v1-$GITHUB_RUN_ID" >> "$GITHUB_ENV"
          { echo "NOTES<<EOF"; echo "line one"; echo "line two"; echo "EOF"; } >> "$GITHUB_ENV"
          echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
      - id: use
        if: env.MODEL_TAG != ''
        run: |
          echo "tag=$MODEL_TAG ${{ env.MODEL_TAG }} $(mytool)" >> "$GITHUB_OUTPUT"
          test "$NOTES" = "$(printf 'line one\\nline two')"
  other:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: test -z "${MODEL_TAG:-}"  # a job's variables stay in that job
"""


def test_variables_and_path_entries_a_step_sets_reach_the_job_s_later_steps(tmp_path: Path) -> None:
    run = run_workflow(repo_with(tmp_path, CARRIED), "w")
    build, other = run.jobs
    assert run.succeeded, [(s.id, s.status, s.note) for s in build.steps + other.steps]
    tag = build.outputs["tag"].split()
    assert tag[0] == tag[1] and tag[0].startswith("v1-") and tag[2] == "from-tool"


TIMEOUTS = """\
name: w
on: workflow_dispatch
jobs:
  train:
    runs-on: ubuntu-latest
    steps:
      - name: Runs away
        timeout-minutes: 0.02
        run: |
          sleep 600 &
          echo $! > "$GITHUB_WORKSPACE/away.pid"
          wait
      - if: always()
        run: echo "after=yes" >> "$GITHUB_OUTPUT"
        id: after
  slow:
    runs-on: ubuntu-latest
    timeout-minutes: 0.02
    steps:
      - run: sleep 600
"""


def test_a_step_or_job_past_its_timeout_minutes_is_stopped_with_its_processes(tmp_path: Path) -> None:
    from loopline.state.locks import process_alive

    root = repo_with(tmp_path, TIMEOUTS)
    run = run_workflow(root, "w")
    train, slow = run.jobs
    assert train.status == "failure" and slow.status == "failure"
    assert train.steps[0].note == "ran past the step's timeout-minutes and was stopped"
    away = int((root / "away.pid").read_text())  # the step's own processes are stopped too (and reaped
    wait_until(lambda: not process_alive(away), 10, "the step's sleep to be gone")  # by PID 1 in a while)
    assert train.steps[1].outputs == {"after": "yes"}  # always() steps still run
    assert slow.steps[0].note == "ran past its job's timeout-minutes and was stopped"
    wrong = repo_with(
        tmp_path / "wrong",
        TIMEOUTS.replace("timeout-minutes: 0.02\n    steps", "timeout-minutes: soon\n    steps"),
    )
    with pytest.raises(
        WorkflowUnsupported, match=r"w\.yml line 18: timeout-minutes is 'soon': give minutes above 0"
    ):
        run_workflow(wrong, "w")


SHELLS = """\
name: w
on: workflow_dispatch
defaults:
  run:
    shell: bash -el {0}
jobs:
  shells:
    runs-on: ubuntu-latest
    steps:
      - id: default
        run: echo "login=$(shopt -q login_shell && echo yes || echo no)" >> "$GITHUB_OUTPUT"
      - id: python
        shell: python
        run: |
          import os, sys
          with open(os.environ["GITHUB_OUTPUT"], "a") as out:
              out.write(f"python={sys.version_info[0]}\\n")
      - id: sh
        shell: sh
        run: echo "sh=$0" >> "$GITHUB_OUTPUT"
  unspecified:
    runs-on: ubuntu-latest
    defaults:
      run:
        shell: bash
    steps:
      - run: false | true  # `shell: bash` sets pipefail: this fails
"""


def test_steps_run_in_the_shell_github_would_run_them_in(tmp_path: Path) -> None:
    run = run_workflow(repo_with(tmp_path, SHELLS), "w")
    shells, unspecified = run.jobs
    outputs = {k: v for s in shells.steps for k, v in s.outputs.items()}
    assert outputs["login"] == "yes" and outputs["python"] == "3" and outputs["sh"].endswith(".sh")
    assert unspecified.status == "failure"
    unsaid = "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: false | true\n"
    alone = run_workflow(repo_with(tmp_path / "alone", unsaid), "w")
    assert alone.succeeded  # no shell said anywhere: bash without pipefail, as on GitHub


def test_a_required_input_and_unknown_inputs_are_named(tmp_path: Path) -> None:
    root = repo_with(tmp_path, STEPS)
    with pytest.raises(UsageError, match="needs the input 'who': pass --input who=VALUE"):
        run_workflow(root, "w")
    with pytest.raises(UsageError, match="has no input 'whom'"):
        run_workflow(root, "w", inputs={"who": "a", "whom": "b"})


def test_an_event_the_file_does_not_listen_to_is_refused(tmp_path: Path) -> None:
    root = repo_with(tmp_path, STEPS)
    with pytest.raises(UsageError, match="is not triggered by release"):
        run_workflow(root, "w", event="release")


@pytest.mark.parametrize(
    ("snippet", "line", "what"),
    [
        (
            "    strategy:\n      matrix: ${{ fromJSON(needs.a.outputs.m) }}\n",
            8,
            "'strategy' of job 'j': the matrix must be a mapping of lists, written out",
        ),
        (
            "    strategy:\n      matrix:\n        py: ${{ fromJSON(needs.a.outputs.m) }}\n",
            10,
            r"'strategy' of job 'j': matrix.py must be a list written out \(not an expression\)",
        ),
        ("    services:\n      db: {image: postgres}\n", 8, "'services' in job 'j' is not supported"),
    ],
)
def test_unsupported_job_features_are_refused_with_the_line(
    tmp_path: Path, snippet: str, line: int, what: str
) -> None:
    workflow = (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"
        + "\n"
        + snippet
    )
    workflow = workflow.replace("\n\n", "\n")
    root = repo_with(tmp_path, workflow)
    with pytest.raises(WorkflowUnsupported, match=rf"w.yml line {line - 1}: {what}"):
        run_workflow(root, "w")


EDITED = """\
on: workflow_dispatch
jobs:
  release:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: astral-sh/setup-uv@v5
      - uses: Azure/login@v2
        with:
          creds: ${{ secrets.AZURE_CREDENTIALS }}
      - id: report
        run: |
          mkdir -p out && echo '{"passed": true}' > out/report.json
          echo "made=yes" >> "$GITHUB_OUTPUT"
      - uses: actions/upload-artifact@v4
        with:
          name: report
          path: out/report.json
      - run: test "${{ steps.report.outputs.made }}" = yes
"""


def test_a_workflow_a_team_added_logins_tools_and_uploads_to_runs_here(tmp_path: Path) -> None:
    root = repo_with(tmp_path, EDITED)
    run = run_workflow(root, "w")
    (job,) = run.jobs
    assert job.status == "success", [(s.name, s.status, s.note) for s in job.steps]
    notes = [s.note for s in job.steps if s.status == "skipped"]
    assert notes == [
        "actions/checkout@v4: this machine is set up already",
        "astral-sh/setup-uv@v5: this machine is set up already",
        "Azure/login@v2: this machine uses its own credentials",
    ]
    assert job.steps[-2].status == "success" and job.steps[-2].outputs["artifact-id"] == "1"
    assert (root / "out" / "report.json").is_file()


HANDED_ON = """\
on: workflow_dispatch
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: |
          mkdir -p dist/wheels reports/a reports/b
          echo w > dist/wheels/m.whl && echo t > dist/wheels/m.tmp && echo r > dist/README
          echo 1 > reports/a/x.md && echo 2 > reports/b/y.md && echo 3 > reports/b/skip.txt
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: |
            dist/
            !dist/**/*.tmp
      - uses: actions/upload-artifact@v4
        with:
          name: reports
          path: reports/**/*.md
      - id: again
        uses: actions/upload-artifact@v4
        continue-on-error: true
        with:
          name: dist
          path: dist/README
      - id: outside
        uses: actions/upload-artifact@v4
        continue-on-error: true
        with:
          name: ../../escaped
          path: dist/README
      - id: none
        uses: actions/upload-artifact@v4
        continue-on-error: true
        with:
          name: missing
          path: nowhere/*.csv
          if-no-files-found: error
  use:
    needs: build
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: .github  # run steps only: an action's paths are the workspace's
    steps:
      - run: rm -rf ../dist ../reports  # a later job of GitHub's starts from a fresh checkout
      - id: one
        uses: actions/download-artifact@v4
        with:
          name: dist
          path: got/dist
      - uses: actions/download-artifact@v4
        with:
          path: all
      - run: |
          cd .. && test "$(cat got/dist/wheels/m.whl)" = w && test -f got/dist/README
          test ! -e got/dist/wheels/m.tmp
          test -f all/reports/a/x.md && test -f all/reports/b/y.md && test ! -e all/reports/b/skip.txt
          test -f all/dist/README
      - id: absent
        uses: actions/download-artifact@v4
        continue-on-error: true
        with:
          name: nothing-by-this-name
"""


def test_artifacts_a_job_uploads_are_downloaded_by_a_later_one_as_github_lays_them_out(
    tmp_path: Path,
) -> None:
    root = repo_with(tmp_path, HANDED_ON)
    run = run_workflow(root, "w")
    build, use = run.jobs
    notes = {s.id: s.note for s in build.steps + use.steps}
    assert run.succeeded, [(s.id, s.status, s.note) for s in build.steps + use.steps]
    assert notes["again"] == (
        "an artifact named 'dist' was uploaded in this run already: give another name, or overwrite: true"
    )
    assert notes["none"] == "no files were found with the path nowhere/*.csv; no artifact 'missing' uploaded"
    assert notes["outside"] == "artifact name '../../escaped' holds what GitHub refuses in one ('/')"
    assert [s.status for s in build.steps][-3:] == ["failure", "failure", "failure"]
    assert use.steps[1].outputs == {"download-path": str(root / "got" / "dist")}
    assert notes["absent"] == "no artifact named 'nothing-by-this-name' in this run (uploaded: dist, reports)"


MATRIX = """\
on: push
jobs:
  test:
    runs-on: ${{ matrix.os }}
    outputs:
      last: ${{ steps.say.outputs.said }}
    strategy:
      matrix:
        python-version: ["3.10", "3.11"]
        os: [ubuntu-latest, windows-latest]
        exclude:
          - os: windows-latest
            python-version: "3.10"
        include:
          - os: ubuntu-latest
            coverage: true
          - python-version: "3.12"
            os: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python-version }}
      - id: say
        env:
          PY: ${{ matrix.python-version }}
        run: |
          echo "$PY ${{ matrix.os }} ${{ matrix.coverage || 'plain' }}" >> ran.txt
          echo "said=$PY" >> "$GITHUB_OUTPUT"
          test "$PY" != "${{ inputs.fail_on || 'none' }}"
  after:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ needs.test.outputs.last }}" > after.txt
"""


def test_a_matrix_runs_each_combination_github_makes_here_in_turn(tmp_path: Path) -> None:
    root = repo_with(tmp_path, MATRIX)
    run = run_workflow(root, "w")
    test, after = run.jobs
    assert test.status == "success" and after.status == "success"
    assert (root / "ran.txt").read_text().splitlines() == [
        "3.10 ubuntu-latest true",
        "3.11 ubuntu-latest true",
        "3.11 windows-latest plain",
        "3.12 ubuntu-latest plain",
    ]
    assert (root / "after.txt").read_text() == "3.12\n"  # the outputs of the last combination


def test_a_matrix_expands_as_github_documents_it() -> None:
    """GitHub's own examples: include entries extend the combinations of the lists where they change none of
    their values, else stand as combinations of their own; a matrix of include alone is its entries."""
    from loopline.workflows.workflow_file import matrix_combinations

    fruits = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    assert matrix_combinations(fruits) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    sites = [{"site": "production", "datacenter": "site-a"}, {"site": "staging", "datacenter": "site-b"}]
    assert matrix_combinations({"include": sites}) == sites


def test_a_failed_combination_cancels_the_rest_unless_fail_fast_is_off(tmp_path: Path) -> None:
    failing = MATRIX.replace("${{ inputs.fail_on || 'none' }}", "3.10")
    root = repo_with(tmp_path, failing)
    run = run_workflow(root, "w")
    assert [j.status for j in run.jobs] == ["failure", "skipped"]
    assert (root / "ran.txt").read_text().splitlines() == ["3.10 ubuntu-latest true"]
    relaxed = repo_with(
        tmp_path / "relaxed", failing.replace("    strategy:\n", "    strategy:\n      fail-fast: false\n")
    )
    run = run_workflow(relaxed, "w")
    assert run.jobs[0].status == "failure"
    assert len((relaxed / "ran.txt").read_text().splitlines()) == 4


def test_an_unknown_action_is_refused_with_its_line(tmp_path: Path) -> None:
    root = repo_with(
        tmp_path,
        "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: docker/build-push-action@v5\n",
    )
    with pytest.raises(
        WorkflowUnsupported,
        match=r"w\.yml line 6: the action 'docker/build-push-action@v5' is not supported .*; "
        r"run what it does in a 'run:' step",
    ):
        run_workflow(root, "w")


FOLDERS = """\
on: push
defaults:
  run:
    working-directory: ml
jobs:
  workflow-default:
    runs-on: ubuntu-latest
    steps:
      - id: where
        run: echo "dir=$(basename "$PWD")" >> "$GITHUB_OUTPUT"
      - id: own
        working-directory: ml/churn
        run: echo "dir=$(basename "$PWD")" >> "$GITHUB_OUTPUT"
  job-default:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: ml/churn
        shell: bash
    steps:
      - id: where
        run: echo "dir=$(basename "$PWD")" >> "$GITHUB_OUTPUT"
      - run: echo never
        working-directory: ml/absent
"""


def test_steps_run_in_the_working_directory_of_the_step_the_job_or_the_workflow(tmp_path: Path) -> None:
    """`defaults.run.working-directory` (a project in a folder of its repository) as GitHub applies it."""
    root = tmp_path / "repo"
    (root / "ml" / "churn").mkdir(parents=True)
    (root / "ml" / "churn" / "train.py").write_text("")
    (root / ".github" / "workflows").mkdir(parents=True)
    git(root, "init", "--quiet")
    (root / ".github" / "workflows" / "w.yml").write_text(FOLDERS)
    commit_all(root, "workflow")
    run = run_workflow(root, "w")
    first, second = run.jobs
    assert [s.outputs.get("dir") for s in first.steps] == ["ml", "churn"]
    assert second.steps[0].outputs == {"dir": "churn"}
    assert second.steps[1].status == "failure" and not run.succeeded
    assert second.steps[1].note == "its working directory ml/absent does not exist"


@pytest.mark.parametrize(
    ("defaults", "line", "what"),
    [
        (
            "defaults:\n  run:\n    shell: pwsh\n",
            3,
            r"'shell: pwsh' is not supported here \(bash, sh, python",
        ),
        ("defaults:\n  run:\n    timeout: 3\n", 3, "'timeout' in 'defaults.run' is not supported"),
        ("defaults:\n  shell: bash\n", 1, "'defaults' of the workflow may hold only 'run'"),
    ],
)
def test_defaults_the_runner_cannot_honour_are_refused_with_the_line(
    tmp_path: Path, defaults: str, line: int, what: str
) -> None:
    root = repo_with(
        tmp_path, defaults + "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo hi\n"
    )
    with pytest.raises(WorkflowUnsupported, match=rf"w\.yml line {line}: {what}"):
        run_workflow(root, "w")


LINTED = """\
name: ci
on: push
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
      - name: Install
        if: env.LOOPLINE_LOCAL_RUN != 'true'
        run: pip install -r requirements-dev.txt
      - run: python -m lintwell_not_installed check .
  docs:
    runs-on: ubuntu-latest
    steps:
      - if: env.LOOPLINE_LOCAL_RUN != 'true'
        run: npm install -g docs-tool-not-installed
      - run: docs-tool-not-installed build
  plain:
    runs-on: ubuntu-latest
    steps:
      - run: python -m other_tool_not_installed
"""


def test_a_step_missing_a_tool_its_skipped_install_step_installs_says_so(
    new_project: ProjectFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = new_project()
    (root / ".github" / "workflows" / "ci.yml").write_text(LINTED)
    commit_all(root, "a workflow of the team's own")
    monkeypatch.chdir(root)
    done = cli(capsys, "workflow", "run", "ci", "--quiet")
    assert done.exit_code == 1
    lint, docs, plain = run_workflow(root, "ci").jobs
    said = (
        "'{}' is not installed here, where the file's install step is skipped (LOOPLINE_LOCAL_RUN): "
        "run it here once ({})"
    )
    assert lint.steps[2].note == "exited with 1: " + said.format(
        "lintwell_not_installed", "pip install -r requirements-dev.txt"
    )
    assert docs.steps[1].note == "exited with 127: " + said.format(
        "docs-tool-not-installed", "npm install -g docs-tool-not-installed"
    )
    assert plain.steps[0].note == "exited with 1"  # no install step skipped: nothing more to say
    printed = " ".join(done.stdout.split())  # as wide as the terminal
    assert f"step step-3 (python -m lintwell_not_installed check .): {lint.steps[2].note}" in printed
    assert "step step-1 (python -m other_tool_not_installed): exited with 1" in printed
