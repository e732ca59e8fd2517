"""Handset <-> SIM linkage: operators report sightings; cells look up what was seen with what;
supervisors read the alerts."""

from __future__ import annotations

from aiohttp import web

from service import linkage
from service.auth import require
from service.errors import NotFound
from service.http.context import SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model
from service.linkage_models import AlertPage, AlertQuery, LinkedList, SightingsIn, SightingsOut

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "POST",
        "/v1/operator/sightings",
        "Report numbers seen in handsets (operator token); each item gets its own result",
        "operator",
        request_model=SightingsIn,
        response_model=SightingsOut,
        errors=(400, 401, 403, 413, 422),
    ),
    Operation(
        "GET",
        "/v1/targets/{kind}/{value}/linked",
        "The numbers seen in a handset, or the handsets a number was used in",
        "targets",
        response_model=LinkedList,
        errors=(401, 403, 404),
    ),
    Operation(
        "GET",
        "/v1/alerts",
        "Alerts: a new SIM in a blocked handset, a handset flagged as a possible SIM box",
        "supervision",
        response_model=AlertPage,
        query_model=AlertQuery,
        errors=(401, 403, 422),
    ),
]


@routes.post("/v1/operator/sightings")
async def post_sightings(request: web.Request) -> web.Response:
    """Store a batch of sightings; each item is applied, a duplicate, or invalid."""
    principal = await principal_of(request)
    require(principal, "operator")
    assert principal.operator is not None
    body = await read_model(request, SightingsIn)
    settings = request.app[SETTINGS]
    out = await linkage.apply_sightings(
        request.app[STORE],
        principal,
        principal.operator,
        body.sightings,
        region=settings.default_region,
        numbers_per_day=settings.linked_numbers_per_day,
    )
    return json_response(out)


@routes.get("/v1/targets/{kind}/{value}/linked")
async def get_linked(request: web.Request) -> web.Response:
    """What was seen with an MSISDN or IMEI, in any usual notation."""
    principal = await principal_of(request)
    kind = request.match_info["kind"]
    if kind not in ("msisdn", "imei"):
        raise NotFound(f"unknown target kind {kind!r}; use msisdn or imei")
    out = await linkage.linked(
        request.app[STORE],
        principal,
        kind,
        request.match_info["value"],
        request.app[SETTINGS].default_region,
    )
    return json_response(out)


@routes.get("/v1/alerts")
async def get_alerts(request: web.Request) -> web.Response:
    """A page of alerts, oldest first."""
    principal = await principal_of(request)
    q = query_model(request, AlertQuery)
    return json_response(await linkage.alerts(request.app[STORE], principal, q))
