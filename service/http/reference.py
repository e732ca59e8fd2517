"""Health, readiness and reference data (units)."""

from __future__ import annotations

import structlog
from aiohttp import web

from service.db import pending_migrations
from service.http.context import STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response
from service.models import Health, UnitList, UnitOut

log = structlog.get_logger()
routes = web.RouteTableDef()
OPERATIONS = [
    Operation("GET", "/healthz", "The process is up", "health", response_model=Health, auth=False),
    Operation(
        "GET",
        "/readyz",
        "The database is reachable and migrated",
        "health",
        response_model=Health,
        auth=False,
        errors=(503,),
    ),
    Operation(
        "GET", "/v1/units", "List police units", "reference", response_model=UnitList, errors=(401,)
    ),
]


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness."""
    return json_response(Health(status="ok"))


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness: database reachable and every migration applied."""
    store = request.app[STORE]
    try:
        async with store.pool.acquire() as conn:
            pending = await pending_migrations(conn)
    except Exception as exc:  # any database or driver error: never crash the probe
        # the driver's text (hosts, paths, users) is for the log, not for anonymous callers
        log.warning("http.readiness_failed", error=f"{type(exc).__name__}: {exc}")
        response = json_response(Health(status="unavailable", detail="database unavailable"), 503)
        response.headers["Retry-After"] = "5"
        return response
    if pending:
        return json_response(
            Health(status="unavailable", detail=f"migrations pending: {pending}"), 503
        )
    return json_response(Health(status="ok"))


@routes.get("/v1/units")
async def units(request: web.Request) -> web.Response:
    """Every unit; any authenticated caller may read them."""
    await principal_of(request)
    rows = await request.app[STORE].fetch("unit_list")
    return json_response(UnitList(items=[UnitOut(**dict(r)) for r in rows]))
