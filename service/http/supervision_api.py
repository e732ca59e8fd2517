"""What supervisors watch: counts, operator health, orders needing a person, audit, exports."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service import grievances, stats, views
from service.auth import require
from service.http.context import READS, SETTINGS, principal_of
from service.http.exports import csv_stream, csv_text
from service.http.openapi import Operation
from service.http.problems import json_response, query_model
from service.models import BlockRequestQuery
from service.report_models import (
    AttentionPage,
    AttentionQuery,
    AuditPage,
    AuditQuery,
    OperatorHealthList,
    StatsOut,
    StatsQuery,
)

routes = web.RouteTableDef()
_ERR = (401, 403, 422)
# What an admin may read of the audit log: changes to configuration, never case data.
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


_STATS_FIELDS = tuple(f.alias or name for name, f in StatsOut.model_fields.items())


async def _report(request: web.Request) -> dict[str, Any]:
    principal = await principal_of(request)
    q = query_model(request, StatsQuery)
    return await stats.blocking_counts(
        request.app[READS],
        principal,
        start=q.start,
        end=q.end,
        group_by=stats.parse_group_by(q.group_by),
        unit=q.unit,
        unit_kind=q.unit_kind,
    )


@routes.get("/v1/stats")
async def get_stats(request: web.Request) -> web.Response:
    """Counts as JSON."""
    report = await _report(request)
    # The report holds JSON values only, StatsOut's fields among them: sent as they are, not
    # validated and dumped again through the model, which took longer than counting tens of
    # thousands of groups (unit, category and day over a year).
    return json_response({k: report.get(k) for k in _STATS_FIELDS})


@routes.get("/v1/stats.csv")
async def get_stats_csv(request: web.Request) -> web.Response:
    """Counts as CSV."""
    report = await _report(request)
    return csv_text(stats.to_csv(report), "stats.csv")


@routes.get("/v1/block-requests.csv")
async def get_requests_csv(request: web.Request) -> web.StreamResponse:
    """Every request matching the filters, as CSV (all pages), streamed."""
    principal = await principal_of(request)
    q = query_model(request, BlockRequestQuery)
    chunk_rows = request.app[SETTINGS].export_chunk_rows
    rows = views.request_csv_rows(request.app[READS], principal, q, chunk_rows)
    return await csv_stream(request, "block-requests.csv", views.REQUEST_CSV_HEADER, rows)


@routes.get("/v1/operators")
async def get_operators(request: web.Request) -> web.Response:
    """Per operator: breaker, backlog, failures and time to acknowledge."""
    principal = await principal_of(request)
    return json_response(await stats.operator_health(request.app[READS], principal))


async def _attention(request: web.Request, which: stats.Attention) -> web.Response:
    principal = await principal_of(request)
    require(principal, "supervisor")  # case data: targets and their requests
    q = query_model(request, AttentionQuery)
    page = await stats.attention(request.app[READS], principal, which, q)
    if which == "overdue" and q.after is None and principal.role == "supervisor":
        page.grievances = await grievances.overdue(request.app[READS], principal)
    return json_response(page)


@routes.get("/v1/overdue")
async def get_overdue(request: web.Request) -> web.Response:
    """Orders past their acknowledgement deadline."""
    return await _attention(request, "overdue")


@routes.get("/v1/dead")
async def get_dead(request: web.Request) -> web.Response:
    """Orders that reached their maximum age or failed permanently."""
    return await _attention(request, "dead")


@routes.get("/v1/audit")
async def get_audit(request: web.Request) -> web.Response:
    """The audit log, oldest first, with filters and a cursor; an admin reads only the entries
    about configuration (operators, tokens), not those about cases."""
    principal = await principal_of(request)
    q = query_model(request, AuditQuery)
    return json_response(await stats.audit_page(request.app[READS], principal, q))
