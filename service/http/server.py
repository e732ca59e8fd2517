"""Running the service: the API (with its dispatcher) or a dispatcher alone, until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from service.http.app import create_app
from service.http.context import STORE
from service.http.listening import listen
from service.http.middleware import REQUEST_ID_HEADER
from service.http.problems import PROBLEM_TYPE, problem
from service.settings import Settings
from service.web.metrics import METRICS, metrics_app

log = structlog.get_logger()


@dataclass
class Guard:
    """Limits that keep slow or numerous clients from holding the server's descriptors."""

    header_timeout_s: float
    max_connections: int
    open: int = 0
    refused: int = 0
    timed_out: int = 0


def _sampled(count: int) -> bool:
    """Log the 1st, 10th, 100th and every 1,000th: an attack must not flood the log."""
    return count in (1, 10, 100) or count % 1000 == 0


def _refusal() -> bytes:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "too many connections; retry shortly",
        }
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Content-Type: {PROBLEM_TYPE}\r\nContent-Length: {len(body)}\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler with a deadline for the first request's headers, a cap on
    open connections, and problem+json for the errors the HTTP parser answers itself."""

    def __init__(self, manager: Server, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._counted = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse past the cap; otherwise serve, with a deadline for the first headers."""
        if self._guard.open >= self._guard.max_connections:
            self._guard.refused += 1
            if _sampled(self._guard.refused):
                log.warning(
                    "http.connection_refused", open=self._guard.open, total=self._guard.refused
                )
            assert isinstance(transport, asyncio.Transport)
            transport.write(_refusal())
            transport.close()
            return
        self._guard.open += 1
        self._counted = True
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        self._header_timer = loop.call_later(self._guard.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        """Parse as aiohttp does; the first complete request ends the header deadline."""
        super().data_received(data)
        if self._header_timer is not None and self._request_count > 0:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        """Count the connection out."""
        if not self._counted:
            return
        self._counted = False
        self._guard.open -= 1
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._request_count == 0:
            self._guard.timed_out += 1
            if _sampled(self._guard.timed_out):
                log.info(
                    "http.header_timeout",
                    timeout_s=self._guard.header_timeout_s,
                    total=self._guard.timed_out,
                )
            self.force_close()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """What aiohttp itself logs as an exception: one structured line, no traceback."""
        exc = kw.get("exc_info")
        log.warning(
            "http.connection_error",
            message=str(args[0]) if args else None,
            error=repr(exc) if isinstance(exc, BaseException) else None,
        )

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A parser-level error (or one past the middleware) as problem+json, one log line."""
        request_id = uuid.uuid4().hex
        if status >= 500:
            log.error("http.unhandled_error", request_id=request_id, error=type(exc).__name__)
            detail = "internal error; the request id identifies it in the logs"
        else:
            log.info("http.bad_request", request_id=request_id, status=status, error=message)
            detail = "the request is not valid HTTP"
        if request.writer.output_size > 0:  # part of a response went out: only closing is left
            raise ConnectionError("a response was already started")
        response = problem(status, detail, headers={REQUEST_ID_HEADER: request_id})
        response.force_close()
        return response


class GuardedServer(Server):
    """aiohttp's Server, making GuardedHandlers."""

    def __init__(self, base: Server, guard: Guard) -> None:
        # the same handler, request factory and handler arguments as the server it replaces
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **base._kwargs,
        )
        self.guard = guard

    def __call__(self) -> RequestHandler:
        """A handler for a new connection."""
        return GuardedHandler(self, guard=self.guard, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are guarded (see GuardedHandler)."""

    def __init__(self, app: web.Application, guard: Guard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> Server:
        return GuardedServer(await super()._make_server(), self.guard)


async def start(settings: Settings, app: web.Application | None = None) -> GuardedRunner:
    """Start serving `app` (by default the service) on the settings' host and port."""
    app = app or create_app(settings)
    guard = Guard(settings.header_read_timeout_s, settings.max_connections)
    runner = GuardedRunner(
        app,
        guard,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_s,
        keepalive_timeout=settings.keepalive_timeout_s,
        # after an answer sent before its body was read (a 408, a 401), the rest of the body
        # is read and dropped this long at most, so the client sees the answer, then closed
        lingering_time=min(2.0, settings.body_read_timeout_s),
    )
    await runner.setup()
    await listen(
        runner,
        settings.host,
        settings.port,
        "listen",
        reuse_port=settings.reuse_port,
        if_taken=" (several `serve --reuse-port` processes may share a port)",
    )
    return runner


def _freeze_startup_objects() -> None:
    """Keep what start-up built (modules, number metadata, the app: ~60,000 objects) out of
    the garbage collector's full passes, which otherwise scan it all every few seconds under
    load (20-30 ms each, straight into the latency tail)."""
    gc.collect()
    gc.freeze()


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: Settings) -> int:
    """Serve HTTP until SIGTERM/SIGINT, then shut down within the grace period."""
    stop = stop_event()
    runner = await start(settings)
    try:
        own_metrics = await _own_metrics(settings, runner.app)
    except BaseException:
        await runner.cleanup()
        raise
    _freeze_startup_objects()
    log.info("service.listening", url=f"http://{settings.host}:{settings.port}")
    await stop.wait()
    log.info("service.stopping")
    if own_metrics is not None:
        await own_metrics.cleanup()
    await runner.cleanup()
    return 0


async def _own_metrics(settings: Settings, app: web.Application) -> web.AppRunner | None:
    """This process's /metrics on a port of its own, when one is set (`--metrics-port`)."""
    port = settings.api_metrics_port
    if port is None:
        return None
    runner = web.AppRunner(metrics_app(app[STORE], app[METRICS]), access_log=None)
    await runner.setup()
    await listen(runner, settings.host, port, "serve metrics")
    log.info("service.metrics", url=f"http://{settings.host}:{port}/metrics")
    return runner


async def run_worker(settings: Settings) -> int:
    """Run the dispatcher only, until SIGTERM/SIGINT."""
    from service.http.app import run_dispatcher_only

    stop = stop_event()
    _freeze_startup_objects()
    await run_dispatcher_only(settings, stop)
    return 0
