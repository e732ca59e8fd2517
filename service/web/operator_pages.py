"""The operator's nodal officer: the orders addressed to their operator, acknowledged in batches."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, get_args

from aiohttp import web

from service import acks
from service.auth import require
from service.errors import Invalid
from service.http.context import SETTINGS, STORE
from service.http.exports import csv_stream
from service.ports import AckStatus
from service.sessions import Session
from service.store import Tx
from service.web.metrics import METRICS
from service.web.pages import Form, page, render

routes = web.RouteTableDef()
PAGE_ROWS = 200
ORDER_CSV_HEADER = ("order_id", "action", "kind", "value", "urgent", "status", "seq", "ack_due_at")
ANSWERS = ("blocked", "already_blocked", "not_subscriber", "unblocked", "rejected")


def _operator(session: Session) -> str:
    require(session.principal, "operator")
    assert session.principal.operator is not None
    return session.principal.operator


async def _page(
    request: web.Request, session: Session, context: dict[str, Any], status: int = 200
) -> web.Response:
    operator = _operator(session)
    rows = await request.app[STORE].fetch("console_operator_orders", operator, PAGE_ROWS)
    context.update({"orders": rows, "answers": ANSWERS, "operator": operator, "limit": PAGE_ROWS})
    return render(request, session, "orders.html", context, status=status)


@routes.get("/orders")
@page
async def orders(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The orders this operator can answer now, oldest first, urgent on top."""
    return await _page(request, session, {})


@routes.get("/orders.csv")
@page
async def orders_csv(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """The orders waiting for this operator, as CSV (to work through them offline)."""
    operator = _operator(session)
    chunk_rows = request.app[SETTINGS].export_chunk_rows
    return await csv_stream(
        request,
        f"{operator}-orders.csv",
        ORDER_CSV_HEADER,
        _order_rows(request, operator, chunk_rows),
    )


async def _order_rows(
    request: web.Request, operator: str, chunk_rows: int
) -> AsyncGenerator[list[list[Any]], None]:
    rows = request.app[STORE].stream(
        "console_operator_orders", operator, None, chunk_rows=chunk_rows
    )
    async with contextlib.aclosing(rows):
        async for chunk in rows:
            yield [
                [
                    r["id"],
                    r["action"],
                    r["kind"],
                    r["value"],
                    r["urgent"],
                    r["status"],
                    r["seq"],
                    r["ack_due_at"].isoformat() if r["ack_due_at"] else "",
                ]
                for r in chunk
            ]


@routes.post("/orders/ack")
@page
async def acknowledge(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """Acknowledge the ticked orders with one answer, through the API's own ack rules."""
    operator = _operator(session)
    status = form.get("status")
    if status not in get_args(AckStatus):
        raise Invalid("choose an answer", [{"field": "status"}])
    ids = sorted({int(v) for v in form.getall("order", []) if isinstance(v, str) and v.isdigit()})
    if not ids:
        raise Invalid("tick at least one order", [{"field": "order"}])
    reason = form.get("reason")
    text = reason.strip() if isinstance(reason, str) and reason.strip() else None
    items = [acks.AckItem(i, status, text) for i in ids if i < 2**63]  # type: ignore[arg-type]
    principal = session.principal

    async def apply(tx: Tx) -> list[acks.AckResult]:
        return await acks.apply_acks(
            tx,
            operator,
            items,
            actor=principal.actor,
            role=principal.role,
            commit=True,
            on_screen=True,
        )

    results = await request.app[STORE].retrying(apply, what="acks")
    request.app[METRICS].acks(operator, results)
    return await _page(request, session, {"results": results})
