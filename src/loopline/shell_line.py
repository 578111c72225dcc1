"""A training command read as people write one, as a line of the shell: ``make data && python train.py``,
``DATA=data/train.csv python train.py``, ``cd src && python -m train``. Such a line runs through
``/bin/sh -c``; a plain one (``python train.py --epochs 5``) runs as its words, as before.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable

__all__ = [
    "SHELL",
    "python_commands",
    "python_runs",
    "python_words",
    "run_from_its_folder",
    "substitute",
    "unset_variable_advice",
    "uses_shell",
]

SHELL = "/bin/sh"

# A word that sets a variable for the command after it: NAME=VALUE.
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# What only the shell reads: operators and redirections (outside quotes), expansions, a home folder.
_OPERATOR = frozenset("();<>|&")
# What a ``$`` expands: a variable (``$DATA``, ``${DATA}``), a command (``$(date)``), a parameter (``$1``).
_EXPANDED = re.compile(r"[A-Za-z_{(0-9?#@*!$]")


def uses_shell(command: str) -> bool:
    """Whether ``command`` needs the shell to mean what it says: an operator or redirection outside quotes
    (``&&``, ``;``, ``|``, ``>``), a ``$`` or backquote expansion, a ``# comment``, or a leading
    ``NAME=VALUE``."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: said by the training's own parse
        return False
    if words and _ASSIGNMENT.match(words[0]):
        return True
    state = _quoting(command)
    return any(_read_by_shell(command, at, state[at]) for at in range(len(command)))


def _read_by_shell(command: str, at: int, within: str | None) -> bool:
    """Whether the character of ``command`` at ``at`` (within the quote ``within``) is one only the shell
    reads: an operator, a word's leading ``~`` or a comment outside quotes, an expansion outside single
    quotes."""
    char = command[at]
    if within is None and (char in _OPERATOR or (char == "~" and _starts_word(command, at))):
        return True
    if within is None and char == "#" and (at == 0 or command[at - 1] in " \t"):  # a comment
        return True
    if within in ("'", "\\"):  # quoted, or escaped by a backslash
        return False
    return char == "`" or (char == "$" and bool(_EXPANDED.match(command, at + 1)))


def python_words(command: str) -> list[str]:
    """The words of the command of ``command`` that runs Python (``python ...``), less the variables set
    before it; of a line that runs none, its last command's. A command without shell syntax: its words."""
    commands = _commands(command)
    return next((c for c in commands if c[0].startswith("python")), commands[-1] if commands else [])


def python_commands(command: str) -> list[list[str]]:
    """The words of each command of ``command`` that runs Python, in order, less the variables set before
    each (``python prepare.py && python train.py``: both)."""
    return [found for found in _commands(command) if found[0].startswith("python")]


def python_runs(command: str) -> list[tuple[str, list[str]]]:
    """Each command of ``command`` that runs Python, with the folder it runs in, relative to where the line
    starts: a ``cd FOLDER`` before it moves it there (``cd training && python train.py`` runs train.py in
    ``training``). A ``cd`` elsewhere than into a relative folder ends what can be told: nothing after it."""
    folder = posixpath.curdir
    found = []
    for words in _commands(command):
        if words[0] == "cd":
            target = words[1] if len(words) == 2 else ""
            if not target or target.startswith(("-", "~", "/", "$")):
                break
            folder = posixpath.normpath(posixpath.join(folder, target))
        elif words[0].startswith("python"):
            found.append((folder, words))
    return found


def run_from_its_folder(command: str, script: str) -> str | None:
    """The plain ``command`` (``python training/train.py --k 1``) run from the folder of ``script``, one of
    its words: ``cd training && python train.py --k 1``; None where it is no word of it, or the command needs
    the shell."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if uses_shell(command) or script not in words:
        return None
    folder, name = posixpath.split(script)
    at = words.index(script)
    return f"cd {shlex.quote(folder)} && {shlex.join([*words[:at], name, *words[at + 1 :]])}"


def _commands(command: str) -> list[list[str]]:
    """The words of each command of the line ``command`` (one, without shell syntax), less the variables
    set before each."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    if not uses_shell(command):
        return [words] if words else []
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return [words] if words else []
    commands: list[list[str]] = [[]]
    for token in tokens:
        if set(token) <= _OPERATOR:
            commands.append([])
        elif commands[-1] or not _ASSIGNMENT.match(token):
            commands[-1].append(token)
    return [found for found in commands if found]


def substitute(command: str, pattern: re.Pattern[str], value: Callable[[re.Match[str]], str]) -> str:
    """``command`` with each match of ``pattern`` replaced by ``value(match)``, quoted as the place it is
    in needs, so that the shell (or ``shlex.split``) reads it back as that one value: unquoted, in single
    quotes, or in double quotes."""
    state = _quoting(command)
    parts: list[str] = []
    end = 0
    for match in pattern.finditer(command):
        text, within = value(match), state[match.start()]
        parts.append(command[end : match.start()])
        if within == "'":
            parts.append(text.replace("'", "'\\''"))
        elif within == '"':
            parts.append(re.sub(r'(["$`\\])', r"\\\1", text))
        else:
            parts.append(shlex.quote(text))
        end = match.end()
    return "".join(parts) + command[end:]


def _quoting(command: str) -> list[str | None]:
    """For each character of ``command``, the quote it is within (``'`` or ``"``), None outside quotes
    (a quote character itself counts as within; a backslash-escaped one outside single quotes does not
    open or close)."""
    state: list[str | None] = []
    within: str | None = None
    escaped = False
    for char in command:
        if escaped:
            escaped = False
            state.append(within or "\\")
            continue
        if char == "\\" and within != "'":
            escaped = True
        elif within is None and char in "'\"":
            within = char
            state.append(within)
            continue
        elif char == within:
            state.append(within)
            within = None
            continue
        state.append(within)
    return state


def _starts_word(command: str, at: int) -> bool:
    return at == 0 or command[at - 1] in " \t="


_UNSET = re.compile(r"^: KeyError: '([A-Za-z_][A-Za-z0-9_]*)'$")
_ENVIRON = re.compile(r'File "<frozen os>", line \d+, in __getitem__|environ\[')


def unset_variable_advice(cause: str, tail: str, command: str | None) -> str:
    """Where a training ended in ``KeyError: 'NAME'`` (``cause``) raised by reading ``os.environ`` (as its
    log's ``tail`` shows), how to set that variable for it: in the training command, as a line of the
    shell sets it. Empty for any other cause."""
    unset = _UNSET.match(cause)
    if unset is None or not _ENVIRON.search(tail):
        return ""
    name = unset[1]
    line = f"{name}=VALUE {command or 'python train.py'}"
    return (
        f"; the training reads the environment variable {name}, which is not set where it runs: set it in "
        f"the training command ('{line}' as training.command in loopline.yaml, or init's --command; a data "
        f"asset's path as {name}={{inputs.NAME}}, with training.inputs), or give the script a default "
        f"(os.environ.get('{name}', ...))"
    )
