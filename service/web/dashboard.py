"""The supervisor's dashboard: headline figures, operators, approvals, overdue and dead orders.

Its reads do not depend on one another: each page sends them at once, on connections of their
own, so Postgres answers them side by side and the page takes about as long as its slowest
read, not their sum (at 10 M targets, with a backlog of 72,700 open orders, their sum was 180
ms and the page took 125)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError

from service import review, stats, views
from service.errors import Invalid
from service.http.context import STORE
from service.http.problems import validation_errors
from service.models import BlockRequestQuery, DeadRequeueIn
from service.report_models import AttentionQuery
from service.sessions import Session
from service.web.pages import Form, page, render, see_other, setting_zone

routes = web.RouteTableDef()
QUEUE_ROWS = 25
PERIODS = stats.PERIODS
# days the chart covers per period: a bar a day for 90 days, a bar a week for a year (a year of
# day rows is also what the counts read for it); every month, from the month rows
CHART_DAYS = {"day": 90, "week": 52 * 7}
CHART_SPANS = {"day": "the last 90 days", "week": "the last 52 weeks", "month": "every month"}


async def headline(session: Session, request: web.Request) -> dict[str, Any]:
    """The figures of /v1/stats (and the overdue count of /v1/operators), by the same calls."""
    store = request.app[STORE]
    report, health = await asyncio.gather(
        stats.blocking_counts(store, session.principal, start=None, end=None, group_by=[]),
        stats.operator_health(store, session.principal),
    )
    numbers, handsets = report["totals"]["numbers"], report["totals"]["handsets"]
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
    fig, overdue, dead = await asyncio.gather(
        headline(session, request),
        stats.attention(store, session.principal, "overdue", q),
        stats.attention(store, session.principal, "dead", q),
    )
    return {"fig": fig, "overdue": overdue, "dead": dead}


def chart_start(request: web.Request, period: str) -> date | None:
    """The first day the chart shows: 90 days by day, 52 weeks by week (from a Monday), every
    month by month; days of the zone's calendar, as the counts are."""
    days = CHART_DAYS.get(period)
    if days is None:
        return None
    today = datetime.now(ZoneInfo(setting_zone(request))).date()
    start = today - timedelta(days=days - 1)
    return start - timedelta(days=start.weekday()) if period == "week" else start


async def chart(session: Session, request: web.Request, period: str) -> dict[str, Any]:
    """Targets blocked per period, by fraud category (the per-period counts of /v1/stats)."""
    report = await stats.blocking_counts(
        request.app[STORE],
        session.principal,
        start=chart_start(request, period),
        end=None,
        group_by=[period, "category"],
    )
    labels = sorted({str(g[period]) for g in report["groups"]})
    column = {label: i for i, label in enumerate(labels)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(labels))
    for g in report["groups"]:
        n = g["numbers"]["blocked_in_period"] + g["handsets"]["blocked_in_period"]
        series[g["category"]][column[str(g[period])]] += n
    return {
        "labels": labels,
        "series": [{"label": k, "data": v} for k, v in sorted(series.items())],
    }


async def by_unit(session: Session, request: web.Request) -> list[dict[str, Any]]:
    """The counts of /v1/stats?group_by=unit: one row per district unit."""
    report = await stats.blocking_counts(
        request.app[STORE], session.principal, start=None, end=None, group_by=["unit"]
    )
    return list(report["groups"])


@routes.get("/dashboard")
@page
async def dashboard(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The zone's dashboard."""
    period = request.query.get("period", "day")
    if period not in PERIODS:
        period = "day"
    context, chart_data, units, approvals = await asyncio.gather(
        _live(request, session),
        chart(session, request, period),
        by_unit(session, request),
        views.list_requests(
            request.app[STORE],
            session.principal,
            BlockRequestQuery(status="pending_approval", limit=QUEUE_ROWS),
        ),
    )
    context["period"], context["periods"], context["span"] = period, PERIODS, CHART_SPANS[period]
    context["chart"], context["units"], context["approvals"] = chart_data, units, approvals
    context["unit_chart"] = {
        "labels": [u["unit"] for u in units],
        "series": [
            {"label": "calling numbers", "data": [u["numbers"]["blocked"] for u in units]},
            {"label": "phone sets", "data": [u["handsets"]["blocked"] for u in units]},
        ],
    }
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


@routes.post("/dead/requeue")
@page
async def requeue_dead(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Re-queue every dead order (of one operator, or all), as POST /v1/dead/requeue does."""
    operator = form.get("operator")
    try:
        body = DeadRequeueIn(operator=operator if isinstance(operator, str) and operator else None)
    except ValidationError as exc:
        raise Invalid("no such operator", validation_errors(exc)) from None
    await review.requeue_dead(request.app[STORE], session.principal, body)
    return see_other("/dashboard")


@routes.post(r"/orders/{id:\d+}/retry")
@page
async def retry(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Put one dead order back in the queue."""
    await review.requeue(request.app[STORE], session.principal, int(request.match_info["id"]))
    return see_other("/dashboard")
