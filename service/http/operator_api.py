"""The operators' side: pulling due orders and posting acknowledgements."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from service import acks, authority
from service.auth import Principal, require
from service.errors import Conflict
from service.http.context import SETTINGS, STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model, read_model, validation_errors
from service.operator_models import (
    AckIn,
    AckResultOut,
    AcksIn,
    AcksOut,
    OfficerOut,
    PulledOrder,
    PulledOrders,
    PullQuery,
    UnackedOrder,
    UnackedPage,
    UnackedQuery,
)
from service.store import Row, Tx
from service.web.metrics import METRICS

routes = web.RouteTableDef()
OPERATIONS = [
    Operation(
        "POST",
        "/v1/operator/acks",
        "Acknowledge orders (operator token)",
        "operator",
        request_model=AcksIn,
        response_model=AcksOut,
        errors=(400, 401, 403, 413, 422),
    ),
    Operation(
        "GET",
        "/v1/operator/orders",
        "Take due orders to pull (operator token of a pull operator); each waits for its ack",
        "operator",
        response_model=PulledOrders,
        query_model=PullQuery,
        errors=(401, 403, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/operator/unacknowledged",
        "The calling operator's orders sent and not yet answered, without taking them",
        "operator",
        response_model=UnackedPage,
        query_model=UnackedQuery,
        errors=(401, 403, 422),
    ),
]


async def _operator(request: web.Request) -> tuple[Principal, str]:
    principal = await principal_of(request)
    require(principal, "operator")
    assert principal.operator is not None
    return principal, principal.operator


@routes.post("/v1/operator/acks")
async def post_acks(request: web.Request) -> web.Response:
    """Apply a batch of acks; each item gets its own result."""
    principal, operator = await _operator(request)
    body = await read_model(request, AcksIn)
    parsed: list[tuple[int, AckIn]] = []
    results: list[AckResultOut | None] = []
    for i, raw in enumerate(body.acks):
        try:
            parsed.append((i, AckIn.model_validate(raw)))
            results.append(None)
        except ValidationError as exc:
            oid = raw.get("order_id") if isinstance(raw, dict) else None
            reason = "; ".join(f"{e['field']}: {e['message']}" for e in validation_errors(exc))
            results.append(
                AckResultOut(
                    index=i,
                    order_id=oid if isinstance(oid, int) else None,
                    result="invalid",
                    reason=reason,
                )
            )
    if parsed:
        items = [
            acks.AckItem(a.order_id, a.status, a.reason, a.operator_ref, a.at) for _, a in parsed
        ]

        async def apply(tx: Tx) -> list[acks.AckResult]:
            return await acks.apply_acks(
                tx,
                operator,
                items,
                actor=principal.actor,
                role=principal.role,
                commit=True,
                skew_s=request.app[SETTINGS].ack_clock_skew_s,
            )

        outcome = await request.app[STORE].retrying(apply, what="acks", generic_plans=True)
        request.app[METRICS].acks(operator, outcome)
        for (i, _), r in zip(parsed, outcome, strict=True):
            results[i] = AckResultOut(
                index=i, order_id=r.order_id, result=r.result, reason=r.reason
            )
    final = [r for r in results if r is not None]
    return json_response(
        AcksOut(results=final, applied=sum(1 for r in final if r.result == "applied"))
    )


# no HEAD: a HEAD would take orders under a lease and throw away the body that lists them
@routes.get("/v1/operator/orders", allow_head=False)
async def pull_orders(request: web.Request) -> web.Response:
    """Claim due orders for the calling operator under a lease; ack them to finish."""
    _principal, operator = await _operator(request)
    q = query_model(request, PullQuery)
    store = request.app[STORE]
    rows = await store.fetch("orders_pull", operator, q.limit, f"pull:{operator}")
    if not rows and (kind := await store.fetchval("operator_adapter_kind", operator)) != "pull":
        raise Conflict(
            f"{operator} receives its orders pushed ({kind}); taking them here would send "
            "them twice. GET /v1/operator/unacknowledged lists those awaiting your ack."
        )
    min_rank = request.app[SETTINGS].direct_block_min_rank
    orders = [_pulled(r, a) for r, a in zip(rows, authority.for_rows(rows, min_rank), strict=True)]
    return json_response(PulledOrders(orders=orders))


def _pulled(r: Row, a: authority.Authority) -> PulledOrder:
    return PulledOrder(
        order_id=r["id"],
        action=r["action"],
        kind=r["kind"],
        value=r["value"],
        urgent=r["urgent"],
        attempt=r["attempts"],
        seq=r["seq"],
        ack_due_in_s=round(r["ack_due_in_s"], 3),
        instruction=a.instruction,
        request_id=a.request_id,
        unit=a.unit,
        case_ref=a.case_ref,
        category=a.category,
        legal_basis=a.legal_basis,
        officer=OfficerOut(name=a.officer_name, rank=a.officer_rank),
        reason=r["reason"],
    )


@routes.get("/v1/operator/unacknowledged")
async def list_unacknowledged(request: web.Request) -> web.Response:
    """Orders sent to the calling operator and not yet answered; nothing is claimed."""
    _principal, operator = await _operator(request)
    q = query_model(request, UnackedQuery)
    rows = await request.app[STORE].fetch("orders_unacknowledged", operator, q.after, q.limit + 1)
    orders = [
        UnackedOrder(
            order_id=r["id"],
            action=r["action"],
            kind=r["kind"],
            value=r["value"],
            urgent=r["urgent"],
            attempt=r["attempts"],
            seq=r["seq"],
            sent_at=r["sent_at"],
            ack_due_at=r["ack_due_at"],
            request_id=r["request_id"],
            reason=r["reason"],
            stage=r["stage"],
            stage_at=r["stage_at"],
        )
        for r in rows[: q.limit]
    ]
    next_after = orders[-1].order_id if len(rows) > q.limit else None
    return json_response(UnackedPage(orders=orders, next_after=next_after))
