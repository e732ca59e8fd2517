"""RFC 9457 problem+json responses and JSON body handling."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from service.errors import DomainError, Invalid

PROBLEM_TYPE = "application/problem+json"
M = TypeVar("M", bound=BaseModel)


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=PROBLEM_TYPE, headers=headers
    )


def from_domain(exc: DomainError, instance: str) -> web.Response:
    """A domain error as problem+json; a 401 names the scheme to authenticate with (RFC 6750)."""
    headers = {"WWW-Authenticate": 'Bearer realm="fraudblock"'} if exc.status == 401 else None
    return problem(
        exc.status,
        exc.detail,
        title=exc.title,
        errors=exc.errors,
        instance=instance,
        headers=headers,
    )


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response; pydantic models are dumped in JSON mode."""
    if isinstance(data, BaseModel):
        payload = orjson.dumps(data.model_dump(mode="json"))
    else:
        payload = orjson.dumps(data)
    return web.Response(status=status, body=payload, content_type="application/json")


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as `{field, message}` items."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        out.append({"field": loc.lstrip(".") or "body", "message": err["msg"]})
    return out


class BadBody(DomainError):
    """A body that is not JSON."""

    status = 400
    title = "Malformed JSON"


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body, translating failures to domain errors."""
    raw = await request.read()
    if not raw.strip():
        raise BadBody("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadBody(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Invalid(
            "the request body must be a JSON object",
            [{"field": "body", "message": "expected a JSON object"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(exc)
        fields = ", ".join(e["field"] for e in errors[:5])
        raise Invalid(f"invalid request body: {fields}", errors) from None


def query_model(request: web.Request, model: type[M]) -> M:
    """Validate query parameters against a model."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        errors = validation_errors(exc)
        fields = ", ".join(e["field"] for e in errors[:5])
        raise Invalid(f"invalid query parameters: {fields}", errors) from None
