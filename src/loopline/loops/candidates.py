"""Candidate runs of the dev workspace ranked by a ranking file (``loopline compare``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import NotFound, UsageError, shorten
from loopline.instance import Instance
from loopline.loops.trained import SWEEP_PARENT
from loopline.mlflow_store import RunInfo
from loopline.ranking import Candidate, Ranked, Ranking, load_ranking, rank

__all__ = ["MAX_RUNS", "Comparison", "candidate_of", "compare_runs"]

MAX_RUNS = 100
DEV = "dev"
_COMMIT_TAGS = ("loopline.git_commit", "mlflow.source.git.commit")


@dataclass(frozen=True)
class Comparison:
    """Runs ranked by a ranking file, best first, ineligible ones last."""

    ranking: Ranking
    ranked: tuple[Ranked, ...]

    @property
    def best(self) -> Ranked | None:
        """The first eligible run, if any."""
        return next((r for r in self.ranked if r.eligible), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``loopline compare --json`` prints."""
        primary, direction = self.ranking.primary
        return {
            "ranking": self.ranking.name,
            "primary": {"metric": primary, "direction": direction},
            "secondary": [{"metric": m, "direction": d, "weight": w} for m, d, w in self.ranking.secondary],
            "runs": [r.to_dict(self.ranking) for r in self.ranked],
        }


def candidate_of(run: RunInfo) -> Candidate:
    """A run as a candidate: its id, metrics, commit and start."""
    commit = next((run.tags[t] for t in _COMMIT_TAGS if run.tags.get(t)), "")
    return Candidate(run.run_id, dict(run.metrics), commit, run.start_time)


def compare_runs(
    instance: Instance,
    ranking_file: Path,
    *,
    run_ids: list[str] | None = None,
    last: int = 20,
    commit: str | None = None,
) -> Comparison:
    """Rank the named runs, or the newest ``last`` finished runs of dev (of one commit when given)."""
    ranking = load_ranking(ranking_file)
    if not 1 <= last <= MAX_RUNS:
        raise UsageError(f"--last must be between 1 and {MAX_RUNS}, not {last}")
    if run_ids and (commit or len(run_ids) > MAX_RUNS):
        raise UsageError(f"name at most {MAX_RUNS} runs with --runs, without --commit")
    store = instance.store(DEV)
    if run_ids:
        runs = [_run(store, run_id) for run_id in dict.fromkeys(run_ids)]
    else:
        where = "attributes.status = 'FINISHED'"
        if commit:
            if len(commit) < 7 or not all(c in "0123456789abcdef" for c in commit.lower()):
                raise UsageError(f"--commit takes a commit SHA (7 to 40 hex digits), not '{commit}'")
            where += f" AND tags.`mlflow.source.git.commit` LIKE '{commit.lower()}%'"
        # A sweep's parent run holds its best trial's figures again (as best_<metric>): the trials compete.
        runs = [
            run for run in store.search_all_runs(where, limit=last) if run.tags.get(SWEEP_PARENT) != "true"
        ]
        if not runs:
            scope = f"of commit {commit[:7]} " if commit else ""
            raise NotFound(f"dev has no finished runs {scope}to compare; run the inner loop first")
    return Comparison(ranking, tuple(rank(ranking, [candidate_of(run) for run in runs])))


_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}\Z", re.ASCII)


def _run(store: Any, run_id: str) -> RunInfo:
    if not _RUN_ID.match(run_id):  # MLflow's own rule for a run ID
        raise UsageError(
            f"'{shorten(run_id, 64)}' is not an MLflow run ID "
            "(`loopline compare` lists dev's runs with theirs)"
        )
    try:
        found: RunInfo = store.run(run_id)
    except Exception as exc:  # MLflow's "does not exist", whatever its class in this version
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
            or "not found" in str(exc).lower()
        ):
            raise NotFound(f"dev has no run {run_id}") from None
        raise
    return found
