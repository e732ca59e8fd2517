"""A target's state across operators and cases."""

from __future__ import annotations

from aiohttp import web

from service import views
from service.errors import NotFound
from service.http.context import READS, SETTINGS, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response
from service.models import TargetOut

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "GET",
        "/v1/targets/{kind}/{value}",
        "A target's state across operators",
        "targets",
        response_model=TargetOut,
        errors=(401, 403, 404),
    ),
]


@routes.get("/v1/targets/{kind}/{value}")
async def get_target(request: web.Request) -> web.Response:
    """Look up an MSISDN or IMEI in any usual notation."""
    principal = await principal_of(request)
    kind = request.match_info["kind"]
    if kind not in ("msisdn", "imei"):
        raise NotFound(f"unknown target kind {kind!r}; use msisdn or imei")
    target = await views.get_target(
        request.app[READS],
        principal,
        kind,
        request.match_info["value"],
        request.app[SETTINGS].default_region,
    )
    return json_response(target)
