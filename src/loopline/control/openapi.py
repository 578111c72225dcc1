"""The control plane's OpenAPI document: the operation table's routes, from the functions' annotations."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from loopline.operations import operations
from loopline.remote.codec import signature
from loopline.remote.upload import InnerLoopUpload

__all__ = ["document"]

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "the arguments are wrong (error_code, message)",
    "401": "no token, or a malformed, unknown, expired or revoked one",
    "403": "the caller's role does not allow this operation on this workspace",
    "404": "a model, version, commit, endpoint or job that does not exist",
    "409": "a precondition, gate or policy refused the operation",
    "429": "too many failed sign-ins from this address",
}


def _lift(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move a schema's local definitions into the document's components."""
    components.update(schema.pop("$defs", {}))
    return schema


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ``POST /v1/<function>`` route."""
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error = {
        "type": "object",
        "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error_code", "message"],
    }
    for op in sorted((op for op in operations().values() if op.remote), key=lambda op: op.name):
        name = op.name
        shape = signature(op)
        properties = {
            arg: _lift(adapter.json_schema(ref_template=_REF), components)
            for arg, adapter in shape.parameters.items()
        }
        body: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if shape.required:
            body["required"] = sorted(shape.required)
        if name == "inner_loop":
            # A trained run, uploaded first (POST /v1/uploads), then named here with its numbers.
            body = _lift(InnerLoopUpload.model_json_schema(ref_template=_REF), components)
        result = _lift(shape.result.json_schema(mode="serialization", ref_template=_REF), components)
        responses: dict[str, Any] = {
            "200": {"description": "the result", "content": {"application/json": {"schema": result}}}
        }
        for status, text in _ERRORS.items():
            responses[status] = {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        paths[f"/v1/{name}"] = {
            "post": {
                "operationId": name,
                "summary": shape.doc,
                "tags": [_tag(name)],
                "requestBody": {
                    "required": bool(shape.required),
                    "content": {"application/json": {"schema": body}},
                },
                "responses": responses,
            }
        }
    paths["/v1/uploads"] = {
        "post": {
            "operationId": "uploads",
            "summary": "Upload a trained run (tar.gz of model/ and artifacts/) for an inner_loop call",
            "tags": ["inner loop"],
            "requestBody": {
                "required": True,
                "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "200": {
                    "description": "the upload's id",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"upload": {"type": "string"}, "bytes": {"type": "integer"}},
                            }
                        }
                    },
                },
                **{s: responses[s] for s in ("400", "401", "403", "429")},
            },
        }
    }
    components["Error"] = error
    return {
        "openapi": "3.1.0",
        "info": {"title": "loopline control plane", "version": version("loopline")},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
    }


def _tag(name: str) -> str:
    for prefix, tag in (
        ("inner_loop", "inner loop"),
        ("user_", "users"),
        ("token_", "tokens"),
        ("batch_", "batch"),
        ("outer_loop", "promotion"),
        ("rollback", "promotion"),
    ):
        if name.startswith(prefix):
            return tag
    if "batch" in name:
        return "batch"
    if "endpoint" in name or "deployment" in name or name in ("set_traffic", "releases"):
        return "endpoints"
    return "instance"
