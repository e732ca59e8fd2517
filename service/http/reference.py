"""Health, readiness and reference data (units: read by all, changed by admins)."""

from __future__ import annotations

import structlog
from aiohttp import web

from service import units as unit_cases
from service.auth import require
from service.db import pending_migrations
from service.http.context import STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, read_model
from service.models import Health, UnitIn, UnitList, UnitOut, UnitPatch

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
    Operation(
        "POST",
        "/v1/units",
        "Add a police unit (admin)",
        "reference",
        request_model=UnitIn,
        response_model=UnitOut,
        status=201,
        errors=(400, 401, 403, 409, 422),
    ),
    Operation(
        "PATCH",
        "/v1/units/{code}",
        "Rename a unit or change its kind (admin); its code stays",
        "reference",
        request_model=UnitPatch,
        response_model=UnitOut,
        errors=(400, 401, 403, 404, 422),
    ),
]
UNIT_CODE = r"{code:[a-z0-9][a-z0-9-]{1,31}}"


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
    return json_response(await unit_cases.list_units(request.app[STORE]))


@routes.post("/v1/units")
async def add_unit(request: web.Request) -> web.Response:
    """Add a unit; admins only."""
    principal = await principal_of(request)
    require(principal, "admin")  # before the body: others learn nothing from its checks
    body = await read_model(request, UnitIn)
    return json_response(await unit_cases.add_unit(request.app[STORE], principal, body), 201)


@routes.patch("/v1/units/" + UNIT_CODE)
async def update_unit(request: web.Request) -> web.Response:
    """Rename a unit or change its kind; admins only."""
    principal = await principal_of(request)
    require(principal, "admin")
    body = await read_model(request, UnitPatch)
    code = request.match_info["code"]
    return json_response(await unit_cases.update_unit(request.app[STORE], principal, code, body))
