"""Escalation endpoints (admins): subscribe a URL to event types, list, disable, and see
each endpoint's deliveries."""

from __future__ import annotations

from aiohttp import web

from service import escalations
from service.escalation_models import (
    DeliveryPage,
    DeliveryQuery,
    EndpointIn,
    EndpointList,
    EndpointOut,
)
from service.http.context import ESCALATION_SENDER, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "POST",
        "/v1/escalation-endpoints",
        "Subscribe a URL to escalation events; the answer holds its signing secret, shown "
        "once (admin)",
        "escalations",
        request_model=EndpointIn,
        response_model=EndpointOut,
        status=201,
        errors=(400, 401, 403, 413, 422),
    ),
    Operation(
        "GET",
        "/v1/escalation-endpoints",
        "Escalation endpoints with their delivery counts, secrets redacted (admin)",
        "escalations",
        response_model=EndpointList,
        errors=(401, 403),
    ),
    Operation(
        "DELETE",
        "/v1/escalation-endpoints/{id}",
        "Disable an escalation endpoint: no new events, queued deliveries cancelled (admin)",
        "escalations",
        response_model=EndpointOut,
        errors=(401, 403, 404),
    ),
    Operation(
        "GET",
        "/v1/escalation-endpoints/{id}/deliveries",
        "An endpoint's deliveries, newest first, with attempts and the last error (admin)",
        "escalations",
        response_model=DeliveryPage,
        query_model=DeliveryQuery,
        errors=(401, 403, 404, 422),
    ),
]


def _id(request: web.Request) -> int:
    value = int(request.match_info["id"])
    return value if value < 2**63 else 0


@routes.post("/v1/escalation-endpoints")
async def post_endpoint(request: web.Request) -> web.Response:
    """Subscribe an endpoint."""
    principal = await principal_of(request)
    escalations.require_admin(principal)
    body = await read_model(request, EndpointIn)
    secret = request.app[ESCALATION_SENDER].new_secret()
    out = await escalations.create_endpoint(request.app[STORE], principal, body, secret)
    return json_response(out, status=201)


@routes.get("/v1/escalation-endpoints")
async def get_endpoints(request: web.Request) -> web.Response:
    """Every endpoint."""
    principal = await principal_of(request)
    return json_response(await escalations.list_endpoints(request.app[STORE], principal))


@routes.delete(r"/v1/escalation-endpoints/{id:\d+}")
async def delete_endpoint(request: web.Request) -> web.Response:
    """Disable an endpoint."""
    principal = await principal_of(request)
    out = await escalations.disable_endpoint(request.app[STORE], principal, _id(request))
    return json_response(out)


@routes.get(r"/v1/escalation-endpoints/{id:\d+}/deliveries")
async def get_deliveries(request: web.Request) -> web.Response:
    """A page of an endpoint's deliveries."""
    principal = await principal_of(request)
    escalations.require_admin(principal)
    q = query_model(request, DeliveryQuery)
    page = await escalations.deliveries(request.app[STORE], principal, _id(request), q)
    return json_response(page)
