"""The long-running commands (`loopline ui`, `loopline server`): a stop signal ends them as a stop."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import ProjectFactory
from tests.servers import ControlPlane, Dashboard


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_dashboard_and_the_control_plane_with_exit_0(
    new_project: ProjectFactory, sig: int
) -> None:
    """uvicorn shuts down on the signal and raises it again after; that must not read as a failure to
    Kubernetes, Docker or systemd (SIGTERM), or as an error to a person (Ctrl-C)."""
    project = new_project("simple", commit=False)
    for kind in (Dashboard, ControlPlane):
        process = kind(project)
        try:
            assert process.stop(sig) == 0
            assert "error" not in process.log.read_text().lower()
            assert "warning" not in process.log.read_text().lower()
        finally:
            process.stop(signal.SIGKILL)


class _DashboardForAll(Dashboard):
    def argv(self) -> list[str]:
        return [*super().argv(), "--host", "0.0.0.0"]


def test_a_dashboard_served_beyond_this_machine_warns_that_it_has_no_sign_in(
    new_project: ProjectFactory,
) -> None:
    board = _DashboardForAll(new_project("simple", commit=False))
    try:
        said = " ".join(board.log.read_text().split())
        assert (
            "warning: the dashboard on 0.0.0.0 has no sign-in: whoever reaches this machine acts as you"
            in said
        )
        assert "serve a team with `loopline server`" in said
    finally:
        board.stop()
