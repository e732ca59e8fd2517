"""Request ids, access logs and the translation of every error into problem+json."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from service.errors import DomainError
from service.http.problems import from_domain, problem
from service.store import RetryableConflict, StoreUnavailable

log = structlog.get_logger()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id to every log line and echo it in the response."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    response = await _to_problem(request, handler)
    response.headers[REQUEST_ID_HEADER] = request_id
    log.info(
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return response


async def _to_problem(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return from_domain(exc, request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        detail = {
            404: f"no route {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the request body is larger than the service accepts",
        }.get(exc.status, exc.text or exc.reason)
        return problem(exc.status, detail, instance=request.path, headers=headers)
    except StoreUnavailable:
        log.warning("http.database_unavailable")
        return problem(
            503,
            "the database is unavailable; retry shortly",
            instance=request.path,
            headers={"Retry-After": "5"},
        )
    except RetryableConflict as exc:
        return problem(503, str(exc), instance=request.path, headers={"Retry-After": "1"})
    except Exception:
        log.exception("http.unhandled_error")
        return problem(
            500, "internal error; the request id identifies it in the logs", instance=request.path
        )
