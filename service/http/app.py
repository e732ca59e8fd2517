"""The composition root: builds the pool, store, adapters and dispatcher into one app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from adapters.registry import build_adapter
from adapters.webhook_sender import WebhookSender
from service import db
from service import web as console
from service.auth import TokenCache
from service.dispatcher import Dispatcher, default_worker_id
from service.escalation_delivery import EscalationWorker
from service.http import (
    block_requests,
    cases_api,
    churn_api,
    escalations_api,
    grievances_api,
    linkage_api,
    operator_api,
    reconciliation_api,
    reference,
    reports_api,
    review_api,
    supervision_api,
    targets,
)
from service.http.context import (
    BULK_GATE,
    DISPATCHER,
    ESCALATION_SENDER,
    INTAKE,
    OPENAPI,
    READS,
    SETTINGS,
    STORE,
    TOKENS,
)
from service.http.docs import add_docs_routes
from service.http.listening import listen
from service.http.middleware import request_context
from service.http.openapi import Operation, build_openapi
from service.http.problems import BODY_READ_TIMEOUT, json_response
from service.intake_batcher import IntakeBatcher
from service.read_store import ReadStore
from service.settings import Settings
from service.store import Store
from service.web.metrics import METRICS, metrics_app

log = structlog.get_logger()
VERSION = "0.1.0"
RESOURCES = (
    reference,
    block_requests,
    review_api,
    targets,
    operator_api,
    supervision_api,
    cases_api,
    reports_api,
    grievances_api,
    linkage_api,
    reconciliation_api,
    churn_api,
    escalations_api,
)


def operations() -> list[Operation]:
    """Every documented operation of the API."""
    return [op for module in RESOURCES for op in module.OPERATIONS]


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document."""
    return json_response(request.app[OPENAPI])


def create_app(settings: Settings) -> web.Application:
    """Build the application; nothing connects until the app starts."""
    app = web.Application(middlewares=[request_context], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[BODY_READ_TIMEOUT] = settings.body_read_timeout_s
    app[STORE] = Store()
    app[READS] = app[STORE]
    if settings.database_read_url:
        app[READS] = ReadStore(
            app[STORE],
            max_lag_s=settings.read_max_lag_s,
            check_every_s=settings.read_check_interval_s,
        )
    app[DISPATCHER] = []
    app[BULK_GATE] = asyncio.Semaphore(settings.concurrent_bulk_requests)
    app[TOKENS] = TokenCache()
    app[ESCALATION_SENDER] = WebhookSender(settings.escalation_timeout_s)
    app[INTAKE] = IntakeBatcher(
        app[STORE], lanes=settings.intake_lanes, max_targets=settings.intake_batch_targets
    )
    app[OPENAPI] = build_openapi(
        operations(),
        title="fraudblock",
        version=VERSION,
        description="Coordinates blocking of fraudsters' phone numbers and handsets "
        "across telecom operators.",
    )
    for module in RESOURCES:
        app.router.add_routes(module.routes)
    app.router.add_get("/openapi.json", openapi_json)
    add_docs_routes(app, openapi_url="/openapi.json")
    console.setup(app)
    app.cleanup_ctx.append(_database)
    if settings.database_read_url:
        app.cleanup_ctx.append(_replica)
    app.cleanup_ctx.append(_tokens)
    app.cleanup_ctx.append(_intake)
    if settings.run_dispatcher:
        app.cleanup_ctx.append(_dispatcher)
        app.cleanup_ctx.append(_escalations)
    return app


async def _replica(app: web.Application) -> AsyncIterator[None]:
    """The read replica's pool (connecting when first used: a replica down at start-up is
    used once it answers) and the watch on its lag."""
    settings, reads = app[SETTINGS], app[READS]
    assert isinstance(reads, ReadStore) and settings.database_read_url
    pool = await db.create_pool(settings.database_read_url, 0, settings.pool_max_size)
    reads.bind_replica(pool)
    await reads.refresh()
    stop = asyncio.Event()
    task = asyncio.create_task(reads.watch(stop), name="replica-watch")
    try:
        yield
    finally:
        stop.set()
        await task
        await pool.close()


async def _tokens(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app[TOKENS].keep_listening(app[STORE], stop), name="tokens")
    try:
        yield
    finally:
        stop.set()
        await task


async def _intake(app: web.Application) -> AsyncIterator[None]:
    app[INTAKE].start()
    try:
        yield
    finally:
        await app[INTAKE].stop(app[SETTINGS].shutdown_grace_s)


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    dispatcher = Dispatcher(app[STORE], app[SETTINGS], build_adapter, on_batch=app[METRICS].batch)
    app[DISPATCHER].append(dispatcher)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher")
    try:
        yield
    finally:
        dispatcher.stop()
        await task


def escalation_worker(store: Store, settings: Settings) -> EscalationWorker:
    """The loop that delivers escalations; it runs wherever the dispatcher runs."""
    worker = settings.worker_id or default_worker_id()
    return EscalationWorker(store, settings, WebhookSender(settings.escalation_timeout_s), worker)


async def _escalations(app: web.Application) -> AsyncIterator[None]:
    worker = escalation_worker(app[STORE], app[SETTINGS])
    task = asyncio.create_task(worker.run(), name="escalations")
    try:
        yield
    finally:
        worker.stop()
        await task


async def run_dispatcher_only(settings: Settings, stop: asyncio.Event) -> None:
    """A worker process: migrate, then dispatch until `stop` is set; a database that cannot
    be reached at start is waited for."""
    pool = await db.open_migrated_pool(db.database_url(settings), 1, 4, stop)
    if pool is None:  # stopped before the database could be reached
        return
    store = Store(pool)
    metrics = metrics_app(store)
    runner = web.AppRunner(metrics, access_log=None)
    try:
        if settings.worker_metrics_port is not None:
            await runner.setup()
            await listen(runner, settings.host, settings.worker_metrics_port, "serve metrics")
            log.info("worker.metrics", url=f"http://{settings.host}:{settings.worker_metrics_port}")
        dispatcher = Dispatcher(store, settings, build_adapter, on_batch=metrics[METRICS].batch)
        escalating = escalation_worker(store, settings)
        task = asyncio.create_task(dispatcher.run(), name="dispatcher")
        escalations = asyncio.create_task(escalating.run(), name="escalations")
        log.info("worker.started", worker=dispatcher.worker)
        await stop.wait()
        dispatcher.stop()
        escalating.stop()
        await task
        await escalations
        log.info("worker.stopped", worker=dispatcher.worker)
    finally:
        await runner.cleanup()
        await pool.close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = db.database_url(settings)
    pool = await db.create_pool(url, settings.pool_min_size, settings.pool_max_size)
    async with pool.acquire() as conn:
        await db.migrate(conn)
        await db.set_report_zone(conn, settings.report_tz)
    app[STORE].bind(pool)
    log.info("service.started")
    try:
        yield
    finally:
        await pool.close()
        log.info("service.stopped")
