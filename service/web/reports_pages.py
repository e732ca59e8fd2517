"""The supervisor's reports on the console: the zone report in the zone's words, and the
operators' service levels (the same use cases as /v1/reports/zone and /v1/sla)."""

from __future__ import annotations

import asyncio
from datetime import date

from aiohttp import web

from service import sla, zone_report
from service.errors import Invalid
from service.http.context import STORE
from service.sessions import Session
from service.web.pages import Form, page, render

routes = web.RouteTableDef()


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{name}: a date is YYYY-MM-DD", [{"field": name}]) from None


@routes.get("/reports")
@page
async def reports(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Units' blocks and money, and each operator's time to acknowledge, for a period."""
    start, end = _day(request, "from"), _day(request, "to")
    store = request.app[STORE]
    zone, levels = await asyncio.gather(  # independent reads, answered side by side
        zone_report.zone_report(store, session.principal, start=start, end=end),
        sla.sla_report(store, session.principal, start=start, end=end, group_by=["operator"]),
    )
    context = {
        "zone": zone,
        "sla": levels,
        "filters": {"from": request.query.get("from", ""), "to": request.query.get("to", "")},
    }
    return render(request, session, "reports.html", context)
