"""The control plane's OpenAPI document: the operation table's routes, from the functions' annotations."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from pydantic import BaseModel

from loopline.operations import operations
from loopline.remote.codec import signature
from loopline.remote.data import DataFile, DataUpload
from loopline.remote.upload import InnerLoopUpload

__all__ = ["NAMING_UPLOADS", "document"]

_REF = "#/components/schemas/{model}"
NAMING_UPLOADS: dict[str, type[BaseModel]] = {"inner_loop": InnerLoopUpload, "upload_data": DataUpload}
"""The calls that name an upload, with their bodies."""
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
        if name in NAMING_UPLOADS:
            # A trained run, or data files, uploaded first (POST /v1/uploads), then named here.
            body = _lift(NAMING_UPLOADS[name].model_json_schema(ref_template=_REF), components)
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
            "summary": "Upload a trained run (tar.gz of model/ and artifacts/) for an inner_loop call, or "
            "data files (tar.gz of data/) for an upload_data call (?for=upload_data)",
            "tags": ["inner loop"],
            "parameters": [
                {
                    "name": "for",
                    "in": "query",
                    "required": False,
                    "schema": {
                        "type": "string",
                        "enum": ["inner_loop", "upload_data"],
                        "default": "inner_loop",
                    },
                }
            ],
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
    paths["/v1/data_file"] = {
        "post": {
            "operationId": "data_file",
            "summary": "The bytes of one file of a data asset version (developers of dev)",
            "tags": ["instance"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": _lift(DataFile.model_json_schema(ref_template=_REF), components)
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "the file's bytes",
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **{s: responses[s] for s in ("400", "401", "403", "404", "429")},
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
