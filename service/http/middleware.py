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
from service.store import InvalidValue, RetryableConflict, StoreUnavailable

log = structlog.get_logger()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"
# headers whose value reaches the service's code: each must be text (a byte that is not UTF-8
# is refused here, before authentication, with the status that header's errors get)
_TEXT_HEADERS = (("Authorization", 401), ("Idempotency-Key", 400))


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


def _unreadable_header(request: web.Request) -> web.Response | None:
    for name, status in _TEXT_HEADERS:
        value = request.headers.get(name)
        if value is None:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            detail = f"the {name} header is not valid UTF-8 text"
            headers = {"WWW-Authenticate": 'Bearer realm="fraudblock"'} if status == 401 else {}
            return problem(
                status,
                detail,
                errors=[{"field": name, "message": "not valid UTF-8"}],
                instance=request.path,
                headers=headers,
            )
    return None


async def _to_problem(request: web.Request, handler: Handler) -> web.StreamResponse:
    refused = _unreadable_header(request)
    if refused is not None:
        return refused
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
    except RetryableConflict:
        return problem(
            503,
            "the request conflicted with concurrent work; retry it",
            instance=request.path,
            headers={"Retry-After": "1"},
        )
    except InvalidValue as exc:  # a value the models let through but Postgres refused
        log.warning("http.value_refused_by_database", error=str(exc))
        return problem(422, "a value is outside what the service can store", instance=request.path)
    except ConnectionResetError:
        # the client went away (mid-body, usually): nobody reads this answer
        log.info("http.client_disconnected", method=request.method, path=request.path)
        return problem(400, "the client closed the connection", instance=request.path)
    except Exception:
        log.exception("http.unhandled_error")
        return problem(
            500, "internal error; the request id identifies it in the logs", instance=request.path
        )
