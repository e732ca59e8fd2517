"""Block requests: filing, reading and listing."""

from __future__ import annotations

import orjson
from aiohttp import web

from service import intake, linkage, views
from service.errors import Invalid, NotFound
from service.http.context import BULK_GATE, INTAKE, SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model
from service.models import BlockRequestIn, BlockRequestOut, BlockRequestPage, BlockRequestQuery

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "POST",
        "/v1/block-requests",
        "File a block or unblock request",
        "block-requests",
        request_model=BlockRequestIn,
        response_model=BlockRequestOut,
        status=201,
        errors=(400, 401, 403, 413, 422),
        headers=(
            (
                "Idempotency-Key",
                "Repeat a request safely: the same key and body return the original response.",
            ),
        ),
    ),
    Operation(
        "GET",
        "/v1/block-requests",
        "List block requests (newest first)",
        "block-requests",
        response_model=BlockRequestPage,
        query_model=BlockRequestQuery,
        errors=(401, 403, 422),
    ),
    Operation(
        "GET",
        "/v1/block-requests/{id}",
        "One block request with targets and orders",
        "block-requests",
        response_model=BlockRequestOut,
        errors=(401, 403, 404),
    ),
]


@routes.post("/v1/block-requests")
async def file_block_request(request: web.Request) -> web.Response:
    """File a request; 201 with the stored request, or the original on a replay."""
    principal = await principal_of(request)
    body = await read_model(request, BlockRequestIn)
    settings = request.app[SETTINGS]
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255):
        raise Invalid("Idempotency-Key must be 1-255 characters", [{"field": "Idempotency-Key"}])
    filing = intake.prepare(
        principal,
        body,
        region=settings.default_region,
        max_targets=settings.max_targets_per_request,
        approval_policy=settings.approval_policy,
        idempotency_key=key,
    )
    if body.linked_from is not None:
        filing = await linkage.expand(
            request.app[STORE], filing, settings.default_region, settings.max_targets_per_request
        )
    if len(filing.targets) >= settings.bulk_request_targets:
        # bulk requests take one at a time: each holds tens of MB while it is built
        async with request.app[BULK_GATE]:
            result = await intake.file_one(request.app[STORE], filing)
    else:  # smaller ones share transactions with whatever else is being filed
        result = await request.app[INTAKE].file(filing)
    response = web.Response(
        status=201,
        body=orjson.dumps(result.body, option=orjson.OPT_UTC_Z),
        content_type="application/json",
        headers={"Location": f"/v1/block-requests/{result.body['id']}"},
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@routes.get("/v1/block-requests")
async def list_block_requests(request: web.Request) -> web.Response:
    """A page of requests matching the filters."""
    principal = await principal_of(request)
    q = query_model(request, BlockRequestQuery)
    return json_response(await views.list_requests(request.app[STORE], principal, q))


@routes.get(r"/v1/block-requests/{id:\d+}")
async def get_block_request(request: web.Request) -> web.Response:
    """One request by id."""
    principal = await principal_of(request)
    request_id = int(request.match_info["id"])
    if request_id > 2**63 - 1:
        raise NotFound(f"no block request {request_id}")
    return json_response(await views.get_request(request.app[STORE], principal, request_id))
