"""Number churn: operators report numbers re-allocated or permanently disconnected."""

from __future__ import annotations

from aiohttp import web

from service import churn
from service.auth import require
from service.churn_models import ChurnIn, ChurnOut, ChurnResultOut
from service.http.context import SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, read_model

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "POST",
        "/v1/operator/churn",
        "Report numbers re-allocated or permanently disconnected (operator token): each is "
        "retired, and a later request naming it starts afresh",
        "operator",
        request_model=ChurnIn,
        response_model=ChurnOut,
        errors=(400, 401, 403, 413, 422),
    ),
]


@routes.post("/v1/operator/churn")
async def post_churn(request: web.Request) -> web.Response:
    """Retire the numbers named; one result per event."""
    principal = await principal_of(request)
    require(principal, "operator")
    body = await read_model(request, ChurnIn)
    results = await churn.retire(
        request.app[STORE],
        [churn.ChurnItem(e.msisdn, e.event, e.at) for e in body.events],
        actor=principal.actor,
        role=principal.role,
        region=request.app[SETTINGS].default_region,
    )
    out = [
        ChurnResultOut(index=r.index, result=r.result, value=r.value, reason=r.reason)
        for r in results
    ]
    return json_response(ChurnOut(results=out, retired=sum(r.result == "retired" for r in out)))
