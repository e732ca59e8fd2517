"""An OpenAPI 3.1 document built from declared operations and their pydantic models."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

OPENAPI_VERSION = "3.1.0"
PROBLEM_MEDIA_TYPE = "application/problem+json"
REF_TEMPLATE = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([^{}:]+)(?::[^{}]*)?\}")

Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    """One HTTP operation of the API, as it appears in the OpenAPI document."""

    method: str
    path: str
    summary: str
    tag: str
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    status: int = 200
    query_model: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()
    auth: bool = True
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    # (name, description) or (name, description, JSON schema of the value)
    headers: tuple[tuple[str, str] | tuple[str, str, Mapping[str, Any]], ...] = ()


def build_openapi(
    operations: Sequence[Operation], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """Return an OpenAPI 3.1.0 document describing the operations."""
    refs, schemas = _component_schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for op in operations:
        path_item = paths.setdefault(openapi_path(op.path), {})
        method = op.method.lower()
        if method in path_item:
            raise ValueError(f"duplicate operation {op.method} {op.path}")
        entry = _operation(op, refs, schemas)
        if entry["operationId"] in seen_ids:
            raise ValueError(f"operationId {entry['operationId']!r} is not unique")
        seen_ids.add(entry["operationId"])
        path_item[method] = entry
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in operations)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_path(path: str) -> str:
    """Return an aiohttp route path with any `{name:regex}` reduced to `{name}`."""
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def operation_id(method: str, path: str) -> str:
    """Return a stable operationId such as `get_v1_block_requests_by_id`."""
    words = [method.lower()]
    for segment in openapi_path(path).strip("/").split("/"):
        param = _PATH_PARAM.fullmatch(segment)
        text = f"by_{param.group(1)}" if param else segment
        word = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
        if word:
            words.append(word)
    return "_".join(words)


def problem_schemas() -> dict[str, dict[str, Any]]:
    """Return the RFC 9457 `Problem` schema and the `ProblemFieldError` it lists."""
    field_error = {
        "type": "object",
        "title": "ProblemFieldError",
        "description": "One invalid input: where it is and what is wrong with it.",
        "properties": {
            "field": {"type": "string", "description": "Location, e.g. `targets[0].imei`."},
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "description": "The same location as a list of keys and indexes.",
            },
            "message": {"type": "string"},
        },
        "required": ["field", "message"],
    }
    problem = {
        "type": "object",
        "title": "Problem",
        "description": "Problem details (RFC 9457).",
        "properties": {
            "type": {"type": "string", "format": "uri-reference", "default": "about:blank"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 100, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "format": "uri-reference"},
            "errors": {
                "type": "array",
                "items": {"$ref": REF_TEMPLATE.format(model="ProblemFieldError")},
                "description": "The invalid inputs, for validation errors.",
            },
        },
        "required": ["title", "status"],
    }
    return {"Problem": problem, "ProblemFieldError": field_error}


def _component_schemas(operations: Sequence[Operation]) -> tuple[Refs, dict[str, Any]]:
    """Return each model's `$ref` and every schema, nested ones included, by component name."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in operations:
        if op.request_model is not None:
            wanted.append((op.request_model, "validation"))
        if op.query_model is not None:
            wanted.append((op.query_model, "validation"))
        if op.response_model is not None:
            wanted.append((op.response_model, "serialization"))
    refs: Refs = {}
    schemas: dict[str, Any] = {}
    if wanted:
        # One call for all models, so names are unique and shared across requests and responses.
        unique = list(dict.fromkeys(wanted))
        found, top = models_json_schema(unique, ref_template=REF_TEMPLATE)
        refs = {key: dict(found[key]) for key in unique}
        schemas.update(top.get("$defs", {}))
    for name, schema in problem_schemas().items():
        if name in schemas:
            raise ValueError(f"a model named {name!r} clashes with the built-in schema")
        schemas[name] = schema
    return refs, dict(sorted(schemas.items()))


def _operation(op: Operation, refs: Refs, schemas: dict[str, Any]) -> dict[str, Any]:
    """Return the OpenAPI operation object of one operation."""
    entry: dict[str, Any] = {
        "operationId": operation_id(op.method, op.path),
        "summary": op.summary,
        "tags": [op.tag],
        "security": [{"bearerAuth": []}] if op.auth else [],
    }
    parameters = _parameters(op, refs, schemas)
    if parameters:
        entry["parameters"] = parameters
    if op.request_model is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.request_model, "validation")]}},
        }
    entry["responses"] = _responses(op, refs)
    return entry


def _parameters(op: Operation, refs: Refs, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the path, query and header parameters of one operation."""
    in_path = [m.group(1) for m in _PATH_PARAM.finditer(op.path)]
    names = list(op.path_params) or in_path
    if sorted(names) != sorted(in_path):
        raise ValueError(f"path_params {names} do not match the path {op.path!r}")
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in names
    ]
    if op.query_model is not None:
        ref = refs[(op.query_model, "validation")]["$ref"]
        model_schema = schemas[ref.rsplit("/", 1)[-1]]
        required = set(model_schema.get("required", ()))
        for name, prop in model_schema.get("properties", {}).items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if "description" in prop:
                param["description"] = prop["description"]
            param["schema"] = {k: v for k, v in prop.items() if k != "description"}
            params.append(param)
    for name, description, *schema in op.headers:
        params.append(
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": description,
                "schema": dict(schema[0]) if schema else {"type": "string"},
            }
        )
    return params


def _responses(op: Operation, refs: Refs) -> dict[str, Any]:
    """Return the success response and the problem+json error responses."""
    success: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response_model is not None:
        schema = refs[(op.response_model, "serialization")]
        success["content"] = {op.content_type: {"schema": schema}}
    elif op.content_type != "application/json" and op.status != HTTPStatus.NO_CONTENT:
        success["content"] = {op.content_type: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(op.status): success}
    # What every operation of its kind can answer is documented without being listed: any
    # one 400 (a request the HTTP parser refuses, such as a request line or header over
    # 8,190 bytes); an authenticated one 401 (and 503 while the database is away); one with
    # a body 408 (too slow), 413 (too large) and 422 (invalid).
    errors = set(op.errors) | {HTTPStatus.BAD_REQUEST}
    if op.auth:
        errors |= {HTTPStatus.UNAUTHORIZED, HTTPStatus.SERVICE_UNAVAILABLE}
    if op.request_model is not None:
        errors |= {408, 413, 422}
    for status in sorted(errors):
        response: dict[str, Any] = {
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}
            },
        }
        if status == HTTPStatus.UNAUTHORIZED:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        responses[str(status)] = response
    return responses
