"""Training commands read as lines of the shell: which need it, the Python command of one, and values put
into one that the shell reads back whole."""

from __future__ import annotations

import re
import subprocess

import pytest

from loopline.shell_line import (
    python_commands,
    python_runs,
    python_words,
    run_from_its_folder,
    substitute,
    unset_variable_advice,
    uses_shell,
)


@pytest.mark.parametrize(
    ("command", "shell", "python"),
    [
        ("python train.py --epochs 5", False, ["python", "train.py", "--epochs", "5"]),
        ("make data && python train.py", True, ["python", "train.py"]),
        ("DATA=data/train.csv python train.py", True, ["python", "train.py"]),
        ("cd src && python -m train --fast", True, ["python", "-m", "train", "--fast"]),
        ("python train.py > train.log 2>&1", True, ["python", "train.py"]),
        ("python train.py --data $DATA_DIR", True, ["python", "train.py", "--data", "$DATA_DIR"]),
        ("python train.py --out ~/models", True, ["python", "train.py", "--out", "~/models"]),
        ("dvc repro train; echo done", True, ["echo", "done"]),  # no Python: its last command
        ("python train.py --fast  # as the README runs it", True, ["python", "train.py", "--fast"]),
        # what only looks like shell syntax, quoted or escaped, is a word as it is
        ("python train.py --note 'a && b; c > d'", False, ["python", "train.py", "--note", "a && b; c > d"]),
        (
            'python train.py --price "5 $" --x a~b',
            False,
            ["python", "train.py", "--price", "5 $", "--x", "a~b"],
        ),
        (r"python train.py --pattern \$1\&", False, ["python", "train.py", "--pattern", "$1&"]),
        (
            "python train.py --color=#fff --tag v#2",
            False,
            ["python", "train.py", "--color=#fff", "--tag", "v#2"],
        ),
    ],
)
def test_a_command_needs_the_shell_where_only_the_shell_reads_what_it_says(
    command: str, shell: bool, python: list[str]
) -> None:
    assert uses_shell(command) is shell
    assert python_words(command) == python
    assert python_commands(command) == ([python] if python[0].startswith("python") else [])


def test_each_command_of_a_line_that_runs_python_is_told_apart_from_the_others() -> None:
    line = "make data && X=1 python prep.py 'a b' | tee log; python -m train --k=v || echo failed"
    assert python_commands(line) == [["python", "prep.py", "a b"], ["python", "-m", "train", "--k=v"]]


def test_a_plain_command_is_moved_into_its_script_s_folder_keeping_its_arguments() -> None:
    moved = run_from_its_folder("python 'my jobs/train.py' --data 'a b.csv'", "my jobs/train.py")
    assert moved == "cd 'my jobs' && python train.py --data 'a b.csv'"
    assert python_runs(moved) == [("my jobs", ["python", "train.py", "--data", "a b.csv"])]
    assert run_from_its_folder("python train.py", "other.py") is None
    assert run_from_its_folder("DATA=x python jobs/train.py", "jobs/train.py") is None  # the shell's line


def test_each_python_command_runs_in_the_folder_the_cds_before_it_move_to() -> None:
    assert python_runs("cd training && python train.py") == [("training", ["python", "train.py"])]
    assert python_runs("cd src; python -m prep && cd ../fit && python fit.py --k 1") == [
        ("src", ["python", "-m", "prep"]),
        ("fit", ["python", "fit.py", "--k", "1"]),
    ]
    assert python_runs("python train.py") == [(".", ["python", "train.py"])]
    # a folder the line cannot tell (absolute, home, a variable, back): nothing after it is told
    for where in ("/opt/app", "~/app", "$APP", "-"):
        assert python_runs(f"python prep.py && cd {where} && python train.py") == [
            (".", ["python", "prep.py"])
        ]


@pytest.mark.parametrize(
    "command",
    [
        "printf '%s\\n' {inputs.x} && true",
        "X={inputs.x} && printf '%s\\n' \"$X\"",
        "printf '%s\\n' \"{inputs.x}\"",
        "printf '%s\\n' '{inputs.x}'",
        "printf '%s\\n' --data={inputs.x}",
    ],
)
def test_a_value_put_into_a_line_is_read_back_whole_by_the_shell_wherever_it_stands(command: str) -> None:
    value = '/tmp/my project/it\'s "$HOME" `x`.csv'
    line = substitute(command, re.compile(r"\{inputs\.(\w+)\}"), lambda match: value)
    said = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True).stdout
    assert said.removeprefix("--data=") == value + "\n"


def test_an_unset_variable_the_script_reads_is_told_how_to_set_it_in_the_command() -> None:
    tail = (
        'Traceback (most recent call last):\n  File "train.py", line 9, in <module>\n'
        '    DATA = os.environ["TRAINING_DATA"]\n  File "<frozen os>", line 679, in __getitem__\n'
        "KeyError: 'TRAINING_DATA'\n"
    )
    said = unset_variable_advice(": KeyError: 'TRAINING_DATA'", tail, "python train.py --fast")
    assert said.startswith(
        "; the training reads the environment variable TRAINING_DATA, which is not set where it runs: set "
        "it in the training command ('TRAINING_DATA=VALUE python train.py --fast' as training.command"
    )
    # a KeyError of a dict of the script's own is not about the environment
    own = 'Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n    params["lr"]\n'
    assert unset_variable_advice(": KeyError: 'lr'", own + "KeyError: 'lr'\n", None) == ""
