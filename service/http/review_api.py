"""Approving, rejecting and cancelling requests; re-queuing dead orders."""

from __future__ import annotations

from aiohttp import web

from service import review, views
from service.auth import require
from service.http.context import STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, read_body, read_model
from service.models import BlockRequestOut, DeadRequeueIn, DeadRequeueOut, DecisionIn, RejectIn

routes = web.RouteTableDef()
_ERR = (401, 403, 404, 409, 422)
OPERATIONS = [
    Operation(
        "POST",
        "/v1/block-requests/{id}/approve",
        "Approve a pending request (supervisor)",
        "review",
        response_model=BlockRequestOut,
        errors=_ERR,
    ),
    Operation(
        "POST",
        "/v1/block-requests/{id}/reject",
        "Reject a pending request (supervisor)",
        "review",
        request_model=RejectIn,
        response_model=BlockRequestOut,
        errors=_ERR,
    ),
    Operation(
        "POST",
        "/v1/block-requests/{id}/cancel",
        "Cancel a request before anything was sent",
        "review",
        request_model=DecisionIn,
        response_model=BlockRequestOut,
        errors=_ERR,
    ),
    Operation(
        "POST",
        "/v1/orders/{id}/retry",
        "Re-queue a dead order (supervisor)",
        "review",
        errors=_ERR,
        status=202,
    ),
    Operation(
        "POST",
        "/v1/dead/requeue",
        f"Re-queue matching dead orders, up to {review.REQUEUE_BATCH:,} a call (supervisor)",
        "review",
        request_model=DeadRequeueIn,
        response_model=DeadRequeueOut,
        errors=(401, 403, 422),
    ),
]


async def _optional_decision(request: web.Request) -> DecisionIn:
    if request.can_read_body and (await read_body(request)).strip():
        return await read_model(request, DecisionIn)
    return DecisionIn()


def _id(request: web.Request) -> int:
    value = int(request.match_info["id"])
    return value if value < 2**63 else 0


@routes.post(r"/v1/block-requests/{id:\d+}/approve")
async def approve(request: web.Request) -> web.Response:
    """Approve: the orders become due now."""
    principal = await principal_of(request)
    rid = _id(request)
    await review.approve(request.app[STORE], principal, rid)
    return json_response(await views.get_request(request.app[STORE], principal, rid))


@routes.post(r"/v1/block-requests/{id:\d+}/reject")
async def reject(request: web.Request) -> web.Response:
    """Reject with a reason: nothing is sent."""
    principal = await principal_of(request)
    rid = _id(request)
    body = await read_model(request, RejectIn)
    await review.reject(request.app[STORE], principal, rid, body.reason)
    return json_response(await views.get_request(request.app[STORE], principal, rid))


@routes.post(r"/v1/block-requests/{id:\d+}/cancel")
async def cancel(request: web.Request) -> web.Response:
    """Cancel a request none of whose orders has been sent."""
    principal = await principal_of(request)
    rid = _id(request)
    body = await _optional_decision(request)
    await review.cancel(request.app[STORE], principal, rid, body.reason)
    return json_response(await views.get_request(request.app[STORE], principal, rid))


@routes.post(r"/v1/orders/{id:\d+}/retry")
async def retry(request: web.Request) -> web.Response:
    """Put a dead order back in the queue."""
    principal = await principal_of(request)
    oid = _id(request)
    await review.requeue(request.app[STORE], principal, oid)
    return json_response({"order_id": oid, "status": "queued"}, 202)


@routes.post("/v1/dead/requeue")
async def requeue_dead(request: web.Request) -> web.Response:
    """Put the matching dead orders back in the queue; one audit entry for the lot."""
    principal = await principal_of(request)
    require(principal, "supervisor")  # before the body: a refusal must not depend on it
    body = await read_model(request, DeadRequeueIn)
    return json_response(await review.requeue_dead(request.app[STORE], principal, body))
