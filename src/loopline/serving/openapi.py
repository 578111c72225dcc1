"""The OpenAPI document of a serving process's routes."""

from __future__ import annotations

from typing import Any

__all__ = ["document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_SPLIT = {
    "type": "object",
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "index": {"type": "array"},
        "data": {"type": "array", "items": {"type": "array"}},
    },
    "required": ["data"],
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
        for code in codes
    }


def document(title: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    target = {
        "name": "loopline-deployment",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Send the request to this deployment, bypassing the traffic split.",
    }
    answered = {
        "description": "predictions; headers name the deployment, model version and commit",
        "content": {"application/json": {}},
    }
    score_errors = _errors(400, 401, 404, 413, 415, 500, 503)
    paths = _scoring_paths(name, target, answered, score_errors)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"key": []}],
        "paths": {
            **paths,
            "/endpoints/{name}": {
                "get": {
                    "summary": "Deployments and traffic",
                    "parameters": [name],
                    "responses": {"200": {"description": "the endpoint"}, **_errors(401, 404)},
                }
            },
            "/endpoints/{name}/deployments/{deployment}/ready": {
                "get": {
                    "summary": "Is the deployment loaded and answering here?",
                    "security": [],
                    "parameters": [
                        name,
                        {"name": "deployment", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "ready"}, **_errors(404, 503)},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up",
                    "security": [],
                    "responses": {"200": {"description": "ok, with an opaque mark of each endpoint served"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Every deployment that takes traffic is loaded",
                    "security": [],
                    "responses": {"200": {"description": "ready"}, "503": {"description": "loading"}},
                }
            },
            **{
                path: {
                    "get": {
                        "summary": "MLflow's health check: as /readyz",
                        "security": [],
                        "responses": {"200": {"description": "ready"}, "503": {"description": "loading"}},
                    }
                }
                for path in ("/ping", "/health")
            },
            "/version": {
                "get": {
                    "summary": "MLflow's server's version route: the version of MLflow serving",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "the version, as text",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {"200": {"description": "metrics"}},
                }
            },
        },
    }


def _scoring_paths(
    name: dict[str, Any], target: dict[str, Any], answered: dict[str, Any], errors: dict[str, Any]
) -> dict[str, Any]:
    """The two scoring routes, and each for one deployment named in the path."""
    azure = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "input_data": _SPLIT,
                    # rows by position, for a model without column names
                    "data": {"type": "array", "items": {"type": "array"}},
                },
                "oneOf": [{"required": ["input_data"]}, {"required": ["data"]}],
            }
        }
    }
    mlflow = {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "dataframe_split": _SPLIT,
                    "dataframe_records": {"type": "array", "items": {"type": "object"}},
                    "instances": {"type": "array"},
                    "inputs": {},
                },
            }
        },
        "text/csv": {"schema": {"type": "string"}},
    }
    deployment = {"name": "deployment", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {}
    for route, style, content in (("score", "Azure ML", azure), ("invocations", "MLflow", mlflow)):
        for prefix, parameters, whose in (
            ("/endpoints/{name}", [name, target], ""),
            ("/endpoints/{name}/deployments/{deployment}", [name, deployment], ", by one deployment"),
        ):
            post = {
                "summary": f"Score rows ({style} style){whose}",
                "parameters": parameters,
                "requestBody": {"required": True, "content": content},
                "responses": {"200": answered, **errors},
            }
            paths[f"{prefix}/{route}"] = {"post": post}
    return paths
