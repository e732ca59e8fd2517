"""Grievances from wrongly blocked subscribers: opened by operators, decided by holding cases."""

from __future__ import annotations

from aiohttp import web

from service import grievances
from service.grievance_models import (
    GrievanceDecisionIn,
    GrievanceIn,
    GrievanceOut,
    GrievancePage,
    GrievanceQuery,
    NoObjection,
)
from service.http.context import SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "POST",
        "/v1/operator/grievances",
        "Forward a subscriber's grievance against the cases holding a target (operator)",
        "grievances",
        request_model=GrievanceIn,
        response_model=GrievanceOut,
        status=201,
        errors=(400, 401, 403, 404, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/operator/grievances/{id}",
        "The decisions on an operator's grievance: the police's no-objection (operator)",
        "grievances",
        response_model=NoObjection,
        errors=(401, 403, 404),
    ),
    Operation(
        "GET",
        "/v1/grievances",
        "Grievances, newest first: an investigator's unit's, an operator's own, or all",
        "grievances",
        response_model=GrievancePage,
        query_model=GrievanceQuery,
        errors=(401, 403, 422),
    ),
    Operation(
        "GET",
        "/v1/grievances/{id}",
        "One grievance and each holding case's decision",
        "grievances",
        response_model=GrievanceOut,
        errors=(401, 403, 404),
    ),
    Operation(
        "POST",
        "/v1/grievances/{id}/decide",
        "A holding case decides: upheld (files its unblock) or dismissed with a reason",
        "grievances",
        request_model=GrievanceDecisionIn,
        response_model=GrievanceOut,
        errors=(400, 401, 403, 404, 409, 422),
    ),
]


def _id(request: web.Request) -> int:
    value = int(request.match_info["id"])
    return value if value < 2**63 else 0


@routes.post("/v1/operator/grievances")
async def open_grievance(request: web.Request) -> web.Response:
    """Open a grievance; the holding cases have the configured time to decide."""
    principal = await principal_of(request)
    body = await read_model(request, GrievanceIn)
    out = await grievances.open_grievance(
        request.app[STORE], principal, body, request.app[SETTINGS]
    )
    return json_response(out, status=201)


@routes.get(r"/v1/operator/grievances/{id:\d+}")
async def operator_grievance(request: web.Request) -> web.Response:
    """An operator's own grievance and its decisions."""
    principal = await principal_of(request)
    return json_response(await grievances.no_objection(request.app[STORE], principal, _id(request)))


@routes.get("/v1/grievances")
async def list_grievances(request: web.Request) -> web.Response:
    """A page of grievances."""
    principal = await principal_of(request)
    q = query_model(request, GrievanceQuery)
    return json_response(await grievances.list_grievances(request.app[STORE], principal, q))


@routes.get(r"/v1/grievances/{id:\d+}")
async def get_grievance(request: web.Request) -> web.Response:
    """One grievance."""
    principal = await principal_of(request)
    return json_response(
        await grievances.get_grievance(request.app[STORE], principal, _id(request))
    )


@routes.post(r"/v1/grievances/{id:\d+}/decide")
async def decide(request: web.Request) -> web.Response:
    """One holding case's decision."""
    principal = await principal_of(request)
    body = await read_model(request, GrievanceDecisionIn)
    out = await grievances.decide(
        request.app[STORE], principal, _id(request), body, request.app[SETTINGS]
    )
    return json_response(out)
