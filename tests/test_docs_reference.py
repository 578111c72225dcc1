"""The docs name only what exists: every `loopline` command line on a page (in its shell blocks and in its
code spans) names real commands and options, and a concrete one parses as the CLI parses it; every
`loopline.yaml` fragment, gate, ranking and policy file validates as loopline reads it; every SDK call in a
Python block names a real function, its real keywords and its result's real attributes.

The pages whose commands can run here in order run whole in ``test_docs.py``; this module reads every
page, so a renamed option or key fails here before a user types it."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import re
import shlex
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.exceptions import TyperException

import loopline
from loopline.cli import _command as _build_command
from loopline.cli import _directories
from loopline.errors import LooplineError
from loopline.remote.codec import _namespace

ROOT = Path(__file__).parents[1]
_command = functools.cache(_build_command)
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```", re.S | re.M)
_SPAN = re.compile(r"`(loopline [^`]+)`")
_SHELL_ENDS = {"&&", "||", ";", "|", "&", ")", "("}
_SYNOPSIS = re.compile(r"[\[\]()|<>…]|\.\.\.|\b[A-Z][A-Z0-9_]*\b")
_HELP = {"-h", "--help"}


@dataclasses.dataclass(frozen=True)
class Line:
    """A command line a page tells a user to type, or describes."""

    page: str
    text: str

    typed: bool = False
    """From a shell block: a command to type, not a mention in a sentence."""

    @property
    def synopsis(self) -> bool:
        """Brackets, alternatives or PLACEHOLDERS: it describes a command rather than giving one."""
        return bool(_SYNOPSIS.search(self.text))

    def __str__(self) -> str:
        return f"{self.page}: `{self.text}`"


def _fences(text: str) -> Iterator[tuple[str, str]]:
    for match in _FENCE.finditer(text):
        yield match["lang"], match["code"]


def _without_fences(text: str) -> str:
    return _FENCE.sub("", text)


def _without_substitutions(code: str) -> str:
    """``code`` with each ``$(...)`` (however deeply its parentheses nest) made a commit's short SHA."""
    out: list[str] = []
    depth = i = 0
    while i < len(code):
        if code.startswith("$(", i):
            out += [] if depth else ["3f2a9c1"]
            depth, i = depth + 1, i + 2
            continue
        if depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
        else:
            out.append(code[i])
        i += 1
    return "".join(out)


def _logical_lines(code: str) -> Iterator[str]:
    """The shell's lines of ``code``: continued lines joined, a quotation that spans lines kept whole, and
    the text of here-documents (``<<'EOF'`` ... ``EOF``) left out."""
    pending, end = "", None
    for line in _without_substitutions(code.replace("\\\n", " ")).splitlines():
        if end is not None:
            end = None if line.strip() == end else end
            continue
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quotation still open
            continue
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)", pending)
        end = heredoc[1] if heredoc else None
        yield pending
        pending = ""


def _shell_commands(code: str) -> Iterator[str]:
    """The ``loopline ...`` commands of a shell block, one per command (after environment assignments)."""
    for text in _logical_lines(code):
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token not in _SHELL_ENDS:
                words.append(token)
                continue
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                words.pop(0)
            if words[:1] == ["loopline"] and len(words) > 1:
                yield shlex.join(words)
            words = []


def command_lines() -> list[Line]:
    """Every ``loopline`` command line of every page."""
    found: list[Line] = []
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        text = page.read_text(encoding="utf-8")
        for lang, code in _fences(text):
            if lang in {"bash", "sh", "shell"}:
                found += [Line(name, command, typed=True) for command in _shell_commands(code)]
            else:  # a session shown with its output: the lines after a prompt
                prompted = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
                found += [Line(name, command, typed=True) for command in _shell_commands(prompted)]
        found += [Line(name, " ".join(span.split())) for span in _SPAN.findall(_without_fences(text))]
    return found


def _words(line: Line) -> list[str]:
    try:
        return shlex.split(line.text)[1:]
    except ValueError:  # a synopsis quoting an unfinished value
        return line.text.split()[1:]


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def _resolve(words: list[str]) -> tuple[Any, list[str], list[str]]:
    """The command the words name, its path, and the words after it."""
    words = list(words)
    command: Any = _command()
    path: list[str] = []
    while _is_group(command) and words and set(words[0].split("|")) <= set(command.commands):
        words[0] = words[0].split("|")[
            0
        ]  # `batch-endpoint create|list|show`: each is one, options of the first
        command = command.commands[words[0]]
        path.append(words[0])
        words = words[1:]
    return command, path, words


def _option_names(command: Any) -> set[str]:
    names = set(_HELP)
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts, param.secondary_opts)
    return names


def _parse(words: list[str]) -> None:
    """Parse the words as ``loopline`` does, down to the command, without running it."""
    command: Any = _command()
    context = command.make_context("loopline", list(words))
    while _is_group(command):
        rest = [*context._protected_args, *context.args]
        name, found, rest = command.resolve_command(context, rest)
        assert name is not None and found is not None
        command = found
        context = command.make_context(name, rest, parent=context)


LINES = command_lines()


def test_the_pages_give_many_commands_and_the_reader_finds_both_kinds() -> None:
    pages = {line.page for line in LINES}
    assert len(LINES) > 150 and {"README.md", "docs/cli.md", "docs/endpoints.md"} <= pages
    assert any(line.synopsis for line in LINES) and any(not line.synopsis for line in LINES)
    given = [line.text for line in LINES if line.page == "docs/outer-loops.md"]
    assert any(text.startswith("loopline rollback") for text in given), given


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("loopline releases", "is no command"),
        ("loopline approve --retires proj --reason x", "has no option --retires"),
        ("loopline endpoint traffic churn blue=100 --mirror", "requires an argument"),
        ("loopline endpoint show", "Missing argument"),
    ],
)
def test_a_line_naming_what_does_not_exist_fails(text: str, wrong: str) -> None:
    with pytest.raises(AssertionError, match=wrong):
        check_line(Line("page.md", text, typed=True))


@pytest.mark.parametrize("line", LINES, ids=str)
def test_every_command_line_names_a_real_command_and_its_real_options(line: Line) -> None:
    check_line(line)


def check_line(line: Line) -> None:
    """Fail naming the page and the line when it names a command or option that does not exist."""
    words, _ = _directories(_words(line))  # `loopline -C PATH COMMAND`, as the CLI reads it
    command, path, rest = _resolve(words)
    assert path, f"{line}: `loopline {words[0]}` is no command"
    if _is_group(command) and rest and not rest[0].startswith("-"):
        raise AssertionError(f"{line}: `{rest[0]}` is no command of `loopline {' '.join(path)}`")
    known = _option_names(command)
    for word in rest:
        option = word.strip("[](){}.,…").split("=", 1)[0]
        if re.fullmatch(r"-{1,2}[A-Za-z][-\w]*", option):
            assert option in known, f"{line}: `loopline {' '.join(path)}` has no option {option}"
    mention = not line.typed and (not rest or (len(rest) == 1 and rest[0].startswith("-")))
    if not line.synopsis and not mention:  # `loopline approve`, `loopline history --kind` in a sentence
        try:
            _parse(words)
        except TyperException as exc:
            raise AssertionError(f"{line}: {exc.format_message()}") from None


# --- YAML: every fragment of loopline.yaml, and the files it names, as loopline reads them ---------------


def _yaml_blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match["lang"] == "yaml":
                found.append(
                    (str(page.relative_to(ROOT)), text[: match.start()].count("\n") + 1, match["code"])
                )
    return found


def _placeholders_dropped(node: Any) -> Any:
    """A reference block's ``key: {...}`` (see another page) and ``(the tracking URI)`` dropped."""
    if isinstance(node, dict):
        return {
            key: _placeholders_dropped(value)
            for key, value in node.items()
            if value != {"...": None} and not (isinstance(value, str) and value.startswith("("))
        }
    return node


_WORKFLOW_KEYS = {"on", True, "jobs", "defaults", "permissions", "concurrency", "steps"}


def _validate_yaml(name: str, raw: Any, where: Path) -> str:
    """Validate one block as the file it is; the kind of file it was read as."""
    from loopline.config import load_config
    from loopline.gates import load_thresholds
    from loopline.monitoring.policy import load_policy
    from loopline.ranking import load_ranking

    if isinstance(raw, list) and all(isinstance(step, dict) and {"run", "uses"} & set(step) for step in raw):
        return "workflow"  # steps of a GitHub Actions job
    assert isinstance(raw, dict), f"{name}: a block that is no mapping"
    keys = set(raw)
    if keys & _WORKFLOW_KEYS:
        return "workflow"  # a part of a GitHub Actions workflow, checked with the written files
    readers = {
        "gate": ({"metrics"}, load_thresholds),
        "ranking": ({"primary"}, load_ranking),
        "policy": ({"rules"}, load_policy),
    }
    for kind, (marker, reader) in readers.items():
        if marker <= keys:
            path = where / f"{kind}.yaml"
            path.write_text(yaml.safe_dump(raw))
            reader(path)
            return kind
    config = {"project": "churn", "tier": "full", "model": {"name": "churn-classifier"}, **raw}
    (where / "loopline.yaml").write_text(yaml.safe_dump(config))
    load_config(where, environ={})
    return "loopline.yaml"


YAML_BLOCKS = _yaml_blocks()


def test_the_pages_hold_config_fragments_and_each_kind_of_file() -> None:
    pages = {page for page, _line, _code in YAML_BLOCKS}
    assert {"docs/configuration.md", "docs/monitoring.md", "docs/outer-loops.md"} <= pages


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"serving": {"max_body_mb": 1}}, "unknown key 'serving.max_body_mb'"),
        ({"metrics": {"accuracy": {"minimum": 0.9}}}, "metrics.accuracy needs 'min'"),
        ({"primary": {"metric": "log_loss", "direction": "down"}}, "down"),
    ],
)
def test_a_block_with_a_wrong_key_or_value_fails(raw: dict[str, Any], kind: str, tmp_path: Path) -> None:
    with pytest.raises(LooplineError, match=kind):
        _validate_yaml("page.md:1", raw, tmp_path)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: f"{b[0]}:{b[1]}")
def test_every_yaml_block_is_valid_as_the_file_it_shows(block: tuple[str, int, str], tmp_path: Path) -> None:
    page, line, code = block
    raw = _placeholders_dropped(yaml.safe_load(code))
    try:
        _validate_yaml(f"{page}:{line}", raw, tmp_path)
    except LooplineError as exc:
        raise AssertionError(f"{page} line {line}: {exc}") from None


# --- loopline.yaml keys named in sentences (`training.paths`, `compute.targets.NAME.workers`) ------------

_KEY_SPAN = re.compile(r"`((?:[a-z_]+)(?:\.[A-Za-z0-9_<>-]+)+)(?:[:=`\s])")
_FILES = (".yaml", ".yml", ".py", ".json", ".md", ".txt", ".ipynb", ".toml", ".db", ".csv")


def key_paths() -> list[tuple[str, str]]:
    """Every ``section.key...`` path a page names, for the sections ``loopline.yaml`` has."""
    from loopline.config.sections import ProjectConfig

    found = []
    for page in PAGES:
        prose = _without_fences(page.read_text(encoding="utf-8"))
        for path in _KEY_SPAN.findall(prose):
            if path.split(".")[0] in ProjectConfig.model_fields and not path.endswith(_FILES):
                found.append((str(page.relative_to(ROOT)), path))
    return sorted(set(found))


def _resolve_key(path: str) -> None:
    """Walk ``path`` through the configuration's models, failing at the first key that is none."""
    from pydantic import BaseModel

    from loopline.config.sections import ProjectConfig

    kind: Any = ProjectConfig
    keys = path.split(".")
    for position, key in enumerate(keys):
        kind = _unwrap_optional(kind)
        if typing.get_origin(kind) is dict:  # a name of the user's (a workspace, a target, a webhook)
            kind = typing.get_args(kind)[1]
            continue
        assert isinstance(kind, type) and issubclass(kind, BaseModel), (
            f"`{'.'.join(keys[:position])}` takes a value, not keys ({key})"
        )
        assert key in kind.model_fields, f"`{'.'.join(keys[: position + 1])}` is no key of loopline.yaml"
        kind = kind.model_fields[key].annotation


def _unwrap_optional(kind: Any) -> Any:
    arguments = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in {typing.Union, types.UnionType} and len(arguments) == 1:
        return arguments[0]
    return typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Annotated else kind


KEY_PATHS = key_paths()


def test_the_pages_name_keys_of_most_sections() -> None:
    sections = {path.split(".")[0] for _page, path in KEY_PATHS}
    assert {"training", "release", "validation", "serving", "compute", "registry"} <= sections, sections
    with pytest.raises(AssertionError, match=r"`release\.canary_steps` is no key"):
        _resolve_key("release.canary_steps")
    with pytest.raises(AssertionError, match=r"`training\.command` takes a value"):
        _resolve_key("training.command.argv")


@pytest.mark.parametrize(("page", "path"), KEY_PATHS, ids=lambda value: str(value))
def test_every_key_a_page_names_is_a_key_of_loopline_yaml(page: str, path: str) -> None:
    try:
        _resolve_key(path)
    except AssertionError as exc:
        raise AssertionError(f"{page}: {exc}") from None


# --- Python: the SDK calls of every Python block ------------------------------------------------------


def _python_blocks() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), code)
        for page in PAGES
        for lang, code in _fences(page.read_text(encoding="utf-8"))
        if lang == "python"
    ]


def _evaluated(annotation: Any, owner: Any) -> Any:
    """An annotation as a type, evaluated where ``owner`` was defined; None where it cannot be."""
    if not isinstance(annotation, str):
        return annotation
    namespace = _namespace(owner.__module__)  # with the names it imports only for type checkers
    try:
        return eval(annotation, namespace)
    except (NameError, TypeError, SyntaxError):
        return None


def _returned(function: Any) -> Any:
    return _evaluated(inspect.signature(function).return_annotation, function)


def _field_type(kind: type, name: str) -> Any:
    """The declared type of attribute ``name`` of ``kind``, failing when it has none."""
    for owner in kind.__mro__:
        if name in getattr(owner, "__annotations__", {}):
            return _evaluated(owner.__annotations__[name], owner)
        if isinstance(vars(owner).get(name), property):
            return _evaluated(inspect.signature(vars(owner)[name].fget).return_annotation, owner)
    raise AssertionError(f"{kind.__name__} has no attribute {name}")


def _unwrap(kind: Any) -> Any:
    """``X | None`` as X; anything not a class as None (not followed further)."""
    arguments = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in {typing.Union, types.UnionType} and len(arguments) == 1:
        kind = arguments[0]
    return kind if isinstance(kind, type) and typing.get_origin(kind) is None else None


class _Checker(ast.NodeVisitor):
    """Follow ``loopline.f(...)`` calls and the attributes read from what they return."""

    def __init__(self, page: str) -> None:
        self.page = page
        self.names: dict[str, Any] = {}
        self.calls = 0

    def _sdk(self, node: ast.expr) -> Any:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "loopline"
        ):
            assert hasattr(loopline, node.attr), f"{self.page}: loopline has no {node.attr}"
            return getattr(loopline, node.attr)
        return None

    def visit_Call(self, node: ast.Call) -> None:
        function = self._sdk(node.func)
        if function is not None:
            self.calls += 1
            keywords = {k.arg: None for k in node.keywords if k.arg}
            try:
                inspect.signature(function).bind_partial(*[None] * len(node.args), **keywords)
            except TypeError as exc:
                raise AssertionError(f"{self.page}: loopline.{function.__name__}: {exc}") from None
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call) and (function := self._sdk(node.value.func)) is not None:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    self.names[target.id] = _unwrap(_returned(function))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[str] = []
        inner: ast.expr = node
        while isinstance(inner, ast.Attribute):
            chain.insert(0, inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and (kind := self.names.get(inner.id)) is not None:
            for attribute in chain:
                kind = _unwrap(_field_type(kind, attribute))
                if kind is None:
                    break
            return
        self.generic_visit(node)


@pytest.mark.parametrize("block", _python_blocks(), ids=lambda b: b[0])
def test_every_python_block_compiles_and_calls_the_sdk_as_it_is(block: tuple[str, str]) -> None:
    page, code = block
    tree = ast.parse(code, filename=page)
    _Checker(page).visit(tree)


def test_the_sdk_page_s_calls_are_followed_to_their_results() -> None:
    (code,) = [code for page, code in _python_blocks() if page == "docs/sdk.md"][:1]
    checker = _Checker("docs/sdk.md")
    checker.visit(ast.parse(code))
    assert checker.calls >= 8 and "result" in checker.names and checker.names["result"] is not None
    broken = ast.parse(code.replace("result.gate.passed", "result.gate.passes"))
    with pytest.raises(AssertionError, match="has no attribute passes"):
        _Checker("docs/sdk.md").visit(broken)


# --- The CLI reference covers the CLI ------------------------------------------------------------------


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command a user can run (not a group), by its words after ``loopline``."""
    if not _is_group(command):
        return [(path, command)]
    return [
        found
        for name, sub in command.commands.items()
        if not getattr(sub, "hidden", False)
        for found in _commands(sub, (*path, name))
    ]


def _reference(page: Path) -> tuple[set[tuple[str, ...]], set[str]]:
    """The command paths the page's code spans name (``batch job list|show`` names both) and every option
    written on it."""
    text = page.read_text(encoding="utf-8")
    paths: set[tuple[str, ...]] = set()
    for span in re.findall(r"`([^`]+)`", _without_fences(text)):
        words = span.removeprefix("loopline ").split()
        found: list[tuple[str, ...]] = [()]
        for word in words:
            if not re.fullmatch(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*", word):
                break
            found = [(*path, part) for path in found for part in word.split("|")]
            paths.update(found)
    return paths, set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def test_the_cli_reference_names_every_command_and_option() -> None:
    paths, options = _reference(ROOT / "docs" / "cli.md")
    missing = []
    for path, command in _commands(_command()):
        if path not in paths:
            missing.append(" ".join(path))
            continue
        for param in command.params:
            names = {*param.opts, *param.secondary_opts} if param.param_type_name == "option" else set()
            if names and not names & (options | {"--help", "--json", "--project", "-C"}):
                missing.append(f"{' '.join(path)} {sorted(names)[-1]}")
    assert not missing, f"docs/cli.md does not mention: {', '.join(missing)}"
