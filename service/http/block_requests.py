"""Block requests: filing, reading and listing."""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from service import intake, linkage, views
from service.errors import Invalid, NotFound
from service.http.context import BULK_GATE, INTAKE, READS, SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import (
    json_response,
    parse_json,
    query_model,
    read_body,
    validation_errors,
)
from service.models import (
    BlockRequestIn,
    BlockRequestOut,
    BlockRequestPage,
    BlockRequestQuery,
    RequestTargetsQuery,
)

routes = web.RouteTableDef()
_TARGET_FIELD = re.compile(r"^targets\[(\d+)\]")
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
                "Repeat a request safely: the same key and body return the original response "
                "(kept for the service's idempotency window, 24 h by default).",
                {"type": "string", "minLength": 1, "maxLength": 255},
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
        "One block request with a page of its targets and their orders",
        "block-requests",
        response_model=BlockRequestOut,
        query_model=RequestTargetsQuery,
        errors=(401, 403, 404, 422),
    ),
]


@routes.post("/v1/block-requests")
async def file_block_request(request: web.Request) -> web.Response:
    """File a request; 201 with the stored request, or the original on a replay."""
    principal = await principal_of(request)
    settings = request.app[SETTINGS]
    body = _filing(parse_json(await read_body(request)), settings.default_region)
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
    result = await submit(request.app, filing)
    response = web.Response(
        status=201,
        body=orjson.dumps(result.body, option=orjson.OPT_UTC_Z),
        content_type="application/json",
        headers={"Location": f"/v1/block-requests/{result.body['id']}"},
    )
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def submit(app: web.Application, filing: intake.Filing) -> intake.IntakeResult:
    """File a prepared request the way every caller does (the API and the console)."""
    if len(filing.targets) >= app[SETTINGS].bulk_request_targets:
        # bulk requests go alone, a few at a time: each holds tens of MB while it is built
        async with app[BULK_GATE]:
            return await intake.file_one(app[STORE], filing)
    # smaller ones share transactions with whatever else is being filed
    return await app[INTAKE].file(filing)


def _filing(data: dict[str, Any], region: str) -> BlockRequestIn:
    """The body as a request; a 422 names every bad target, those that fail the schema and
    those that would fail normalisation alike."""
    try:
        return BlockRequestIn.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(exc)
    raw = data.get("targets")
    failed: set[int] = set()
    for e in errors:
        m = _TARGET_FIELD.match(e["field"])
        if m is None or not isinstance(raw, list):
            continue
        i = int(m.group(1))
        failed.add(i)
        item = raw[i] if i < len(raw) else None
        got = item.get("value") if isinstance(item, dict) else item
        e.update({"index": i, "value": got, "reason": e["message"]})
    errors += intake.raw_target_errors(raw, region, failed)
    fields = ", ".join(e["field"] for e in errors[:5])
    raise Invalid(f"invalid request body: {fields}", errors)


@routes.get("/v1/block-requests")
async def list_block_requests(request: web.Request) -> web.Response:
    """A page of requests matching the filters."""
    principal = await principal_of(request)
    q = query_model(request, BlockRequestQuery)
    return json_response(await views.list_requests(request.app[READS], principal, q))


@routes.get(r"/v1/block-requests/{id:\d+}")
async def get_block_request(request: web.Request) -> web.Response:
    """One request by id, with a page of its targets (`after`, `limit`)."""
    principal = await principal_of(request)
    request_id = int(request.match_info["id"])
    if request_id > 2**63 - 1:
        raise NotFound(f"no block request {request_id}")
    page = query_model(request, RequestTargetsQuery)
    return json_response(await views.get_request(request.app[STORE], principal, request_id, page))
