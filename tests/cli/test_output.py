"""What the CLI prints of text other people wrote (a reason, an actor's name) cannot act on the terminal
or on the CI log that shows it: no escape sequence reaches the terminal, and no newline starts a line."""

from __future__ import annotations

import io

import pytest

from loopline.cli.output import Output, SafeConsole, StepReporter, shown
from tests.conftest import ProjectFactory
from tests.helpers import cli

CLEAR_AND_COPY = "\x1b[2J\x1b]52;c;Y3VybCBldmlsLnNo\x07"  # clear the screen; put a command on the clipboard
FORGED = (
    "oops\n#99 2026-01-01 00:00:00  ada  released  prod\n"
    + "::error title=loopline::all green\n  ::stop-commands::x"
)


def test_a_console_shows_control_characters_and_keeps_its_own_colours() -> None:
    piped = io.StringIO()
    SafeConsole(file=piped, highlight=False).print(f"[red]reason:[/red] {CLEAR_AND_COPY} \u202eevil")
    assert piped.getvalue() == "reason: \\x1b[2J\\x1b]52;c;Y3VybCBldmlsLnNo\\x07 \\u202eevil\n"
    terminal = io.StringIO()
    SafeConsole(file=terminal, force_terminal=True, color_system="standard", highlight=False).print(
        "[red]x[/red]\ny\x1b[1A"
    )
    assert terminal.getvalue() == "\x1b[31mx\x1b[0m\ny\\x1b[1A\n"  # rich's colour, and our newline


def test_shown_text_is_one_line_with_its_markup_escaped() -> None:
    assert shown("[bold]fix[/bold]\n::error::x") == "\\[bold]fix\\[/bold]\\n::error::x"


def test_in_github_actions_no_line_printed_is_a_workflow_command_but_a_child_process_s_own(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    output = Output(json_mode=False)
    words = " ".join(["word"] * 30)  # wrapped at 160 columns, a line starts at "::set-output"
    output.out.print(shown(f"{words} ::set-output name=released::true ##[add-mask]secret [::1]:8700"))
    output.err.print("::stop-commands::token")
    StepReporter(output).output("::warning file=train.py::a training script's own annotation")
    output.warn("warning: loopline's own")
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    commands = [line.strip() for line in lines if line.lstrip().startswith("::") or "##[" in line]
    assert commands == [
        "::warning file=train.py::a training script's own annotation",
        "::warning title=loopline::loopline's own",
    ]
    assert any(line.startswith(":\u200b:set-output") for line in lines)  # where rich wrapped it
    # The text reads as it was written, but for the zero-width space inside each marker.
    assert "##[add-mask]secret [::1]:8700" in captured.out.replace("\n", "").replace("\u200b", "")


@pytest.mark.slow
def test_history_and_withdrawals_show_a_hostile_reason_and_actor_on_their_own_line(
    trained_project: ProjectFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = trained_project("simple")
    where = ("-C", str(project))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("LOOPLINE_USER", f"mallory\n::add-mask::{CLEAR_AND_COPY}")
    reason = FORGED + CLEAR_AND_COPY
    assert cli(capsys, "withdraw", "--commit", "HEAD", "--reason", reason, *where).exit_code == 0
    history = cli(capsys, "history", *where)
    listed = cli(capsys, "withdrawals", *where)
    for shown_text in (history.stdout, listed.stdout):
        assert "\x1b" not in shown_text and "\x07" not in shown_text
        assert not [line for line in shown_text.splitlines() if line.lstrip().startswith("::")]
        assert "#99" not in shown_text.replace("\\n#99", "")  # the forged event is inside its reason's line
    withdrawn = [line for line in history.stdout.splitlines() if "version-withdrawn" in line]
    assert len(withdrawn) == 1 and withdrawn[0].startswith("#")
    line = withdrawn[0].replace("\u200b", "")  # the zero-width space inside each "::"
    assert "mallory\\n::add-mask::\\x1b[2J" in line
    assert "— oops\\n#99 2026-01-01 00:00:00  ada  released  prod\\n::error title=loopline::all green" in line
    assert "withdrawn proj-classifier v1" in listed.stdout and "oops\\n#99" in listed.stdout
    # The JSON keeps what was written, exactly.
    event = cli(capsys, "history", "--json", *where).json()["events"][-1]
    assert (event["reason"], event["actor"]) == (reason, f"mallory\n::add-mask::{CLEAR_AND_COPY}")
