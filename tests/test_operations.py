"""The operation table: every SDK operation once, with an explicit wire name, a rule, and a wire codec
that its route, the OpenAPI document and the remote client all share."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from loopline import api
from loopline.control.openapi import document
from loopline.errors import UsageError
from loopline.operations import _hide_root, operation, operations, refuse_nul
from loopline.remote.codec import LOCAL_ONLY, signature


def test_every_public_sdk_function_has_exactly_one_row() -> None:
    functions = {name for name in api.__all__ if inspect.isfunction(getattr(api, name))}
    rows = [op.function.__name__ for op in operations().values()]
    assert sorted(rows) == sorted(functions)
    assert len(set(rows)) == len(rows)


def test_the_control_plane_serves_the_remote_rows_under_their_wire_names() -> None:
    paths = {path.removeprefix("/v1/") for path in document()["paths"]}
    remote = {op.name for op in operations().values() if op.remote}
    assert paths == remote | {"uploads", "data_file"}
    assert "init" not in paths and "workflow_run" not in paths  # they write the caller's own files


def test_the_control_planes_openapi_document_is_valid_for_client_generators() -> None:
    """What openapi-generator, Swagger UI or an API gateway check before they take the document."""
    from openapi_spec_validator import OpenAPIV31SpecValidator

    assert [str(e) for e in OpenAPIV31SpecValidator(document()).iter_errors()] == []


def sample(schema: dict[str, Any]) -> Any:
    """A JSON value of ``schema`` (the first choice of a union that is not null)."""
    if "anyOf" in schema:
        return sample(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "some-name", "integer": 2, "number": 0.5, "boolean": True, "object": {}, "array": []}[
        schema.get("type", "object")
    ]


@pytest.mark.parametrize("name", sorted(n for n, op in operations().items() if op.remote))
def test_each_remote_operation_round_trips_through_the_wire_codec(name: str) -> None:
    op = operations()[name]
    shape = signature(op)
    parameters = inspect.signature(op.function).parameters
    assert set(shape.parameters) == set(parameters) - LOCAL_ONLY - op.local
    sent = {arg: sample(adapter.json_schema()) for arg, adapter in shape.parameters.items()}
    received = shape.decode_arguments(sent)
    assert shape.encode_arguments(received) == sent
    assert shape.result.json_schema(mode="serialization")  # the result has a JSON form too


def test_a_row_is_found_from_its_function_and_names_its_rule() -> None:
    assert operation(api.rollback).name == "rollback"
    assert operation(api.outer_loop_prod).caller_head
    with pytest.raises(KeyError):
        operation(print)


def test_the_package_exports_every_operation_and_launcher_and_nothing_else() -> None:
    import loopline
    from loopline import launch

    functions = {name for name in api.__all__ if inspect.isfunction(getattr(api, name))}
    launchers = {"demo", "serve", "server", "ui"}
    assert set(loopline.__all__) == functions | launchers | {"__version__", "connect"}
    assert all(callable(getattr(launch, name)) for name in launchers)


def test_the_instance_folder_is_hidden_as_dot_and_a_sibling_that_begins_like_it_is_not_cut() -> None:
    root = "/srv/loopline/proj"
    assert _hide_root(f"sqlite:///{root}/.loopline/state.db", root) == "sqlite:///./.loopline/state.db"
    assert _hide_root(root, root) == "." and _hide_root(f"file://{root}/", root + "/") == "file://./"
    # a folder beside it whose name only begins with the root's stays whole, not ".2/x"
    assert _hide_root(f"file://{root}2/x", root) == f"file://{root}2/x"


def test_a_nul_character_is_found_at_any_depth_of_an_argument_and_data_for_a_model_is_left_alone() -> None:
    deep: list[Any] = ["churn\0"]
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    with pytest.raises(UsageError, match=r"^tags holds a NUL character"):
        refuse_nul({"name": "churn", "tags": {"team": deep}})
    refuse_nul({"name": "churn", "tags": {"team": [[["churn"]]]}})  # none: nothing said
    refuse_nul({"payload": {"inputs": ["a text\0 as a client sent it"]}})  # a model's to read
