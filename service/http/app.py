"""The composition root: builds the pool, store, adapters and dispatcher into one app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from adapters.registry import build_adapter
from service import db
from service.auth import TokenCache
from service.dispatcher import Dispatcher
from service.http import (
    block_requests,
    churn_api,
    linkage_api,
    operator_api,
    reconciliation_api,
    reference,
    review_api,
    supervision_api,
    targets,
)
from service.http.context import (
    BULK_GATE,
    DISPATCHER,
    INTAKE,
    OPENAPI,
    SETTINGS,
    STORE,
    TOKENS,
)
from service.http.docs import add_docs_routes
from service.http.middleware import request_context
from service.http.openapi import Operation, build_openapi
from service.http.problems import json_response
from service.intake_batcher import IntakeBatcher
from service.settings import Settings
from service.store import Store

log = structlog.get_logger()
VERSION = "0.1.0"
RESOURCES = (
    reference,
    block_requests,
    review_api,
    targets,
    operator_api,
    supervision_api,
    linkage_api,
    reconciliation_api,
    churn_api,
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
    app[STORE] = Store()
    app[DISPATCHER] = []
    app[BULK_GATE] = asyncio.Semaphore(settings.concurrent_bulk_requests)
    app[TOKENS] = TokenCache()
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
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_tokens)
    app.cleanup_ctx.append(_intake)
    if settings.run_dispatcher:
        app.cleanup_ctx.append(_dispatcher)
    return app


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
    dispatcher = Dispatcher(app[STORE], app[SETTINGS], build_adapter)
    app[DISPATCHER].append(dispatcher)
    task = asyncio.create_task(dispatcher.run(), name="dispatcher")
    try:
        yield
    finally:
        dispatcher.stop()
        await task


async def run_dispatcher_only(settings: Settings, stop: asyncio.Event) -> None:
    """A worker process: migrate, then dispatch until `stop` is set."""
    pool = await db.create_pool(db.database_url(settings), 1, 4)
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn)
        dispatcher = Dispatcher(Store(pool), settings, build_adapter)
        task = asyncio.create_task(dispatcher.run(), name="dispatcher")
        log.info("worker.started", worker=dispatcher.worker)
        await stop.wait()
        dispatcher.stop()
        await task
        log.info("worker.stopped", worker=dispatcher.worker)
    finally:
        await pool.close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    url = db.database_url(settings)
    pool = await db.create_pool(url, settings.pool_min_size, settings.pool_max_size)
    async with pool.acquire() as conn:
        await db.migrate(conn)
    app[STORE].bind(pool)
    log.info("service.started")
    try:
        yield
    finally:
        await pool.close()
        log.info("service.stopped")
