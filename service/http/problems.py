"""RFC 9457 problem+json responses and JSON body handling."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from service.errors import DomainError, Invalid

PROBLEM_TYPE = "application/problem+json"
M = TypeVar("M", bound=BaseModel)
BODY_READ_TIMEOUT = web.AppKey("body_read_timeout_s", float)
# characters a URI path may hold as they are (RFC 3986 pchar and "/"); the rest is %-encoded
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def instance_of(path: str) -> str:
    """A request path as a valid uri-reference: control characters and the like %-encoded."""
    return quote(path, safe=_PATH_SAFE)


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
        body["instance"] = instance_of(instance)
    if errors:
        body["errors"] = errors
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=PROBLEM_TYPE, headers=headers
    )


def from_domain(exc: DomainError, instance: str) -> web.Response:
    """A domain error as problem+json; a 401 tells the scheme to use (RFC 6750)."""
    headers = {"WWW-Authenticate": 'Bearer realm="fraudblock"'} if exc.status == 401 else None
    response = problem(
        exc.status,
        exc.detail,
        title=exc.title,
        errors=exc.errors,
        instance=instance,
        headers=headers,
    )
    if exc.status == HTTPStatus.REQUEST_TIMEOUT:  # the rest of the body may still come: close
        response.force_close()
    return response


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


class BodyTimeout(DomainError):
    """The client did not send its body in time."""

    status = 408
    title = "Request timeout"


async def read_body(request: web.Request) -> bytes:
    """The whole body, within the app's body read timeout (a trickling client gets 408)."""
    try:
        async with asyncio.timeout(request.app.get(BODY_READ_TIMEOUT, 30.0)):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout("the request body did not arrive in time") from None


def parse_json(raw: bytes) -> Any:
    """A JSON object from a body, or a domain error saying why not."""
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
    return data


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body, translating failures to domain errors."""
    data = parse_json(await read_body(request))
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
