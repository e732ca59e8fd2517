"""The supervisor's dashboard: headline figures, operators, approvals, overdue and dead orders."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from aiohttp import web

from service import review, stats, views
from service.http.context import STORE
from service.models import BlockRequestQuery
from service.report_models import AttentionQuery
from service.sessions import Session
from service.web.pages import Form, page, render, see_other

routes = web.RouteTableDef()
QUEUE_ROWS = 25


async def headline(session: Session, request: web.Request) -> dict[str, Any]:
    """The figures of /v1/stats (and the overdue count of /v1/operators), by the same calls."""
    store = request.app[STORE]
    report = await stats.blocking_counts(
        store, session.principal, start=None, end=None, group_by=[]
    )
    numbers, handsets = report["totals"]["numbers"], report["totals"]["handsets"]
    health = await stats.operator_health(store, session.principal)
    return {
        "numbers_blocked": numbers["blocked"],
        "numbers_partially_blocked": numbers["partially_blocked"],
        "handsets_blocked": handsets["blocked"],
        "handsets_partially_blocked": handsets["partially_blocked"],
        "pending": numbers["pending"] + handsets["pending"],
        "dead": numbers["dead"] + handsets["dead"],
        "overdue": sum(op.overdue for op in health.items),
        "summary": report["summary"],
        "operators": health.items,
    }


async def _live(request: web.Request, session: Session) -> dict[str, Any]:
    store = request.app[STORE]
    q = AttentionQuery(limit=QUEUE_ROWS)
    return {
        "fig": await headline(session, request),
        "overdue": await stats.attention(store, session.principal, "overdue", q),
        "dead": await stats.attention(store, session.principal, "dead", q),
    }


async def chart(session: Session, request: web.Request) -> dict[str, Any]:
    """Targets blocked per day, by fraud category (the per-period counts of /v1/stats)."""
    report = await stats.blocking_counts(
        request.app[STORE],
        session.principal,
        start=None,
        end=None,
        group_by=["day", "category"],
    )
    days = sorted({str(g["day"]) for g in report["groups"]})
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for g in report["groups"]:
        n = g["numbers"]["blocked_in_period"] + g["handsets"]["blocked_in_period"]
        series[g["category"]][days.index(str(g["day"]))] += n
    return {"labels": days, "series": [{"label": k, "data": v} for k, v in sorted(series.items())]}


@routes.get("/dashboard")
@page
async def dashboard(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The zone's dashboard."""
    context = await _live(request, session)
    context["chart"] = await chart(session, request)
    context["approvals"] = await views.list_requests(
        request.app[STORE],
        session.principal,
        BlockRequestQuery(status="pending_approval", limit=QUEUE_ROWS),
    )
    return render(request, session, "dashboard.html", context)


@routes.get("/dashboard/live")
@page
async def dashboard_live(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The figures and queues that refresh by themselves."""
    return render(request, session, "dashboard_live.html", await _live(request, session))


@routes.post(r"/requests/{id:\d+}/approve")
@page
async def approve(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Approve a request awaiting approval."""
    await review.approve(request.app[STORE], session.principal, int(request.match_info["id"]))
    return see_other("/dashboard")


@routes.post(r"/requests/{id:\d+}/reject")
@page
async def reject(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Reject a request awaiting approval, with a reason."""
    reason = form.get("reason")
    await review.reject(
        request.app[STORE],
        session.principal,
        int(request.match_info["id"]),
        reason.strip() if isinstance(reason, str) else "",
    )
    return see_other("/dashboard")


@routes.post(r"/orders/{id:\d+}/retry")
@page
async def retry(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Put one dead order back in the queue."""
    await review.requeue(request.app[STORE], session.principal, int(request.match_info["id"]))
    return see_other("/dashboard")
