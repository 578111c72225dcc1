"""The experiment report through the control plane: dev's runs are read there (``experiment_data``), the
report is written and posted here, as the caller's own GitHub Actions job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopline.loops.experiments import ExperimentReport
    from loopline.remote.client import Client

__all__ = ["remote_report_experiment"]


def remote_report_experiment(client: Client, arguments: dict[str, Any]) -> ExperimentReport:
    """``report_experiment`` for a caller that reaches neither dev's store nor loopline's database."""
    from loopline import api
    from loopline.config import find_project_root
    from loopline.loops.experiments import publish, report_folder, write_report

    data = client.call(api.experiment_data, last=arguments.get("last", 20))
    out = arguments.get("out")
    folder = Path(out) if out else report_folder(find_project_root(arguments.get("project")))
    return publish(write_report(data, folder), bool(arguments.get("comment")), arguments.get("pull_request"))
