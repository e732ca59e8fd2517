"""What supervisors watch: counts, operator health, orders needing a person, audit, exports."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from service import stats, views
from service.auth import require
from service.http.context import STORE, principal_of
from service.http.openapi import Operation
from service.http.problems import json_response, query_model
from service.intake import order_doc
from service.models import BlockRequestQuery
from service.report_models import (
    AttentionOrder,
    AttentionPage,
    AttentionQuery,
    AuditEntryOut,
    AuditPage,
    AuditQuery,
    OperatorHealth,
    OperatorHealthList,
    StatsOut,
    StatsQuery,
)

routes = web.RouteTableDef()
_ERR = (401, 403, 422)
# What an admin may read of the audit log: changes to configuration, never case data.
CONFIGURATION_ENTITIES = ("operator", "token", "unit", "series")
OPERATIONS = [
    Operation(
        "GET",
        "/v1/stats",
        "Blocking counts by unit, category, operator, kind, period",
        "supervision",
        response_model=StatsOut,
        query_model=StatsQuery,
        errors=_ERR,
    ),
    Operation(
        "GET",
        "/v1/stats.csv",
        "Blocking counts as CSV",
        "supervision",
        query_model=StatsQuery,
        errors=_ERR,
        content_type="text/csv",
    ),
    Operation(
        "GET",
        "/v1/block-requests.csv",
        "Block requests as CSV",
        "supervision",
        query_model=BlockRequestQuery,
        errors=_ERR,
        content_type="text/csv",
    ),
    Operation(
        "GET",
        "/v1/operators",
        "Operators' delivery health (supervisor, admin)",
        "supervision",
        response_model=OperatorHealthList,
        errors=_ERR,
    ),
    Operation(
        "GET",
        "/v1/overdue",
        "Orders sent and not acknowledged in time (supervisor)",
        "supervision",
        response_model=AttentionPage,
        query_model=AttentionQuery,
        errors=_ERR,
    ),
    Operation(
        "GET",
        "/v1/dead",
        "Orders that could not be delivered (supervisor)",
        "supervision",
        response_model=AttentionPage,
        query_model=AttentionQuery,
        errors=_ERR,
    ),
    Operation(
        "GET",
        "/v1/audit",
        "The audit log (supervisor; an admin reads the configuration entries only)",
        "supervision",
        response_model=AuditPage,
        query_model=AuditQuery,
        errors=_ERR,
    ),
]


async def _report(request: web.Request) -> dict[str, Any]:
    principal = await principal_of(request)
    q = query_model(request, StatsQuery)
    return await stats.blocking_counts(
        request.app[STORE],
        principal,
        start=q.start,
        end=q.end,
        group_by=stats.parse_group_by(q.group_by),
        unit=q.unit,
    )


@routes.get("/v1/stats")
async def get_stats(request: web.Request) -> web.Response:
    """Counts as JSON."""
    report = await _report(request)
    return json_response(StatsOut.model_validate(report).model_dump(mode="json", by_alias=True))


@routes.get("/v1/stats.csv")
async def get_stats_csv(request: web.Request) -> web.Response:
    """Counts as CSV."""
    report = await _report(request)
    return _csv(stats.to_csv(report), "stats.csv")


@routes.get("/v1/block-requests.csv")
async def get_requests_csv(request: web.Request) -> web.Response:
    """Every request matching the filters, as CSV (all pages)."""
    principal = await principal_of(request)
    q = query_model(request, BlockRequestQuery)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(
        [
            "id",
            "unit",
            "case_ref",
            "category",
            "action",
            "priority",
            "status",
            "target_count",
            "created_at",
            "updated_at",
        ]
    )
    page = q.model_copy(update={"limit": 500})
    while True:
        result = await views.list_requests(request.app[STORE], principal, page)
        for r in result.items:
            w.writerow(
                [
                    r.id,
                    r.unit,
                    r.case_ref,
                    r.category,
                    r.action,
                    r.priority,
                    r.status,
                    r.target_count,
                    r.created_at.isoformat(),
                    r.updated_at.isoformat(),
                ]
            )
        if result.next_after is None:
            break
        page = page.model_copy(update={"after": result.next_after})
    return _csv(out.getvalue(), "block-requests.csv")


def _csv(text: str, name: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.get("/v1/operators")
async def get_operators(request: web.Request) -> web.Response:
    """Per operator: breaker, backlog, failures and time to acknowledge."""
    principal = await principal_of(request)
    require(principal, "supervisor", "admin")
    rows = await request.app[STORE].fetch("operators_health")
    items = []
    for r in rows:
        settled = r["acked_24h"] + r["dead_24h"]
        items.append(
            OperatorHealth(
                code=r["code"],
                name=r["name"],
                active=r["active"],
                adapter=r["adapter_kind"],
                breaker_state=r["breaker_state"],
                breaker_failures=r["breaker_failures"],
                breaker_opened_at=r["breaker_opened_at"],
                rate_limit_per_s=r["rate_limit_per_s"],
                queued=r["queued"],
                in_flight=r["in_flight"],
                awaiting_ack=r["awaiting_ack"],
                overdue=r["overdue"],
                dead=r["dead"],
                acked_24h=r["acked_24h"],
                success_rate_24h=(r["succeeded_24h"] / settled) if settled else None,
                p50_ack_s_24h=r["p50_ack_s"],
                p95_ack_s_24h=r["p95_ack_s"],
            )
        )
    return json_response(OperatorHealthList(items=items))


async def _attention(request: web.Request, query: str) -> web.Response:
    principal = await principal_of(request)
    require(principal, "supervisor")  # case data: targets and their requests
    q = query_model(request, AttentionQuery)
    rows = await request.app[STORE].fetch(query, q.operator, q.after, q.limit + 1)
    items = [
        AttentionOrder(
            **order_doc(r),
            kind=r["kind"],
            value=r["value"],
            ack_due_at=r["ack_due_at"],
            overdue_at=r["overdue_at"],
        )
        for r in rows[: q.limit]
    ]
    next_after = items[-1].id if len(rows) > q.limit else None
    return json_response(AttentionPage(items=items, next_after=next_after))


@routes.get("/v1/overdue")
async def get_overdue(request: web.Request) -> web.Response:
    """Orders past their acknowledgement deadline."""
    return await _attention(request, "orders_overdue_list")


@routes.get("/v1/dead")
async def get_dead(request: web.Request) -> web.Response:
    """Orders that reached their maximum age or failed permanently."""
    return await _attention(request, "orders_dead_list")


@routes.get("/v1/audit")
async def get_audit(request: web.Request) -> web.Response:
    """The audit log, oldest first, with filters and a cursor; an admin reads only the entries
    about configuration (operators, tokens), not those about cases."""
    principal = await principal_of(request)
    require(principal, "supervisor", "admin")
    q = query_model(request, AuditQuery)
    entities = list(CONFIGURATION_ENTITIES) if principal.role == "admin" else None
    rows = await request.app[STORE].fetch(
        "audit_page",
        q.action,
        q.entity_type,
        q.entity_id,
        q.actor,
        q.start,
        q.end,
        q.after,
        q.limit + 1,
        entities,
    )
    items = [AuditEntryOut(**dict(r)) for r in rows[: q.limit]]
    next_after = items[-1].id if len(rows) > q.limit else None
    return json_response(AuditPage(items=items, next_after=next_after))
