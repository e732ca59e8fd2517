"""Applying operators' acknowledgements and settling the targets and requests they finish."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from service import audit
from service.lifecycle import OrderView, target_failed, target_state
from service.ports import AckStatus
from service.routing import route_target
from service.store import Row, Tx

AckOutcome = Literal["applied", "duplicate", "conflict", "not_found", "invalid"]
_BLOCK_ANSWERS = frozenset({"blocked", "already_blocked", "not_subscriber", "rejected"})
_UNBLOCK_ANSWERS = frozenset({"unblocked", "not_subscriber", "rejected"})


@dataclass(frozen=True, slots=True)
class AckItem:
    """One acknowledgement of one order."""

    order_id: int
    status: AckStatus
    reason: str | None = None
    operator_ref: str | None = None
    at: datetime | None = None
    attempts: int | None = None


@dataclass(frozen=True, slots=True)
class AckResult:
    """What became of one acknowledgement."""

    order_id: int
    result: AckOutcome
    reason: str | None = None


def invalid_answer(action: str, status: str, reason: str | None) -> str | None:
    """Why an ack status cannot answer an order of this action, or None when it can."""
    answers = _BLOCK_ANSWERS if action == "block" else _UNBLOCK_ANSWERS
    if status not in answers:
        return f"{status} does not answer a {action} order"
    if status == "rejected" and not reason:
        return "a rejected ack needs a reason"
    return None


def _check(item: AckItem, row: Row) -> AckOutcome | tuple[Literal["invalid"], str] | None:
    """None when the ack can be applied, else the outcome that refuses it."""
    problem = invalid_answer(row["action"], item.status, item.reason)
    if problem is not None:
        return ("invalid", problem)
    if row["status"] == "acked":
        return "duplicate" if row["ack_status"] == item.status else "conflict"
    if row["status"] in ("held", "cancelled"):
        return "conflict"
    return None


async def apply_acks(
    tx: Tx,
    operator: str,
    items: Sequence[AckItem],
    *,
    actor: str,
    role: str,
    commit: bool = False,
) -> list[AckResult]:
    """Apply acks of one operator in this transaction; one result per item, in order.

    With `commit`, the audit entries and the commit go together as the transaction's end.
    """
    rows = {
        r["id"]: r
        for r in await tx.fetch("orders_for_ack", sorted({i.order_id for i in items}), operator)
    }
    results: list[AckResult] = []
    applied: dict[int, AckItem] = {}
    for item in items:
        row = rows.get(item.order_id)
        if row is None:
            results.append(AckResult(item.order_id, "not_found", "no such order for " + operator))
            continue
        refusal = _check(item, row)
        if item.order_id in applied and not isinstance(refusal, tuple):
            same = applied[item.order_id].status == item.status
            results.append(AckResult(item.order_id, "duplicate" if same else "conflict"))
            continue
        if refusal is None:
            applied[item.order_id] = item
            results.append(AckResult(item.order_id, "applied"))
        elif isinstance(refusal, tuple):
            results.append(AckResult(item.order_id, refusal[0], refusal[1]))
        else:
            results.append(AckResult(item.order_id, refusal))
    if applied:
        items_applied = list(applied.values())
        await tx.execute(
            "orders_apply_ack",
            [i.order_id for i in items_applied],
            [i.status for i in items_applied],
            [i.reason for i in items_applied],
            [i.operator_ref for i in items_applied],
            [i.at for i in items_applied],
            [i.attempts for i in items_applied],
        )
        await follow_up(
            tx,
            operator,
            [rows[i] for i in applied],
            items_applied,
            actor=actor,
            role=role,
            commit=commit,
        )
    return results


async def follow_up(
    tx: Tx,
    operator: str,
    rows: Sequence[Row],
    items: Sequence[AckItem],
    *,
    actor: str,
    role: str,
    commit: bool = False,
) -> None:
    """Everything an applied ack changes besides its order: routes learned, re-routing,
    target and request states, and the audit log."""
    learn = [
        (r["value"], i.status)
        for r, i in zip(rows, items, strict=True)
        if r["kind"] == "msisdn"
        and r["action"] == "block"
        and i.status in ("blocked", "already_blocked", "not_subscriber")
    ]
    if learn:
        await tx.execute(
            "routes_learn",
            [v for v, _ in learn],
            [operator] * len(learn),
            [s != "not_subscriber" for _, s in learn],
        )
    not_serving = [
        r
        for r, i in zip(rows, items, strict=True)
        if i.status == "not_subscriber" and r["action"] == "block" and r["kind"] == "msisdn"
    ]
    if not_serving:
        await reroute(tx, not_serving)
    await settle(tx, {r["target_id"] for r in rows})
    write = audit.record_and_commit if commit else audit.record
    await write(
        tx,
        [
            audit.AuditEntry(
                actor,
                role,
                "ack.applied",
                "order",
                str(a.order_id),
                {"operator": operator, "status": a.status, "reason": a.reason},
            )
            for a in items
        ],
    )


async def reroute(tx: Tx, rows: list[Row]) -> None:
    """Ask the operators not yet asked about numbers an operator does not serve."""
    active = [r["code"] for r in await tx.fetch("operator_active_codes")]
    target_ids = sorted({r["target_id"] for r in rows})
    asked: dict[int, set[str]] = {}
    for o in await tx.fetch("orders_latest_for_targets", target_ids):
        if o["action"] == "block":
            asked.setdefault(o["target_id"], set()).add(o["operator_code"])
    learned: dict[str, dict[str, bool]] = {}
    for r in await tx.fetch("routes_for_msisdns", sorted({r["value"] for r in rows})):
        learned.setdefault(r["msisdn"], {})[r["operator_code"]] = r["serves"]
    cols: list[list[Any]] = [[] for _ in range(10)]
    seen: set[int] = set()
    for r in rows:
        if r["target_id"] in seen:
            continue
        seen.add(r["target_id"])
        fresh = [op for op in active if op not in asked.get(r["target_id"], set())]
        for op in route_target("msisdn", r["value"], fresh, {}, learned.get(r["value"], {})):
            for col, v in zip(
                cols,
                (
                    r["target_id"],
                    r["kind"],
                    r["value"],
                    op,
                    "block",
                    r["request_id"],
                    r["unit_code"],
                    r["category"],
                    r["urgent"],
                    "queued",
                ),
                strict=True,
            ):
                col.append(v)
    if cols[0]:
        created = await tx.fetch("orders_insert_each", *cols)
        await tx.execute("notify_orders", ",".join(sorted({c["operator_code"] for c in created})))


async def settle(tx: Tx, target_ids: Iterable[int]) -> None:
    """Recompute targets' states from their orders and close the requests they finish."""
    ids = sorted(set(target_ids))
    if not ids:
        return
    # rows are unpacked by position (id, action, state / target, operator, action, status,
    # ack): settling runs for every batch, and lookups by name cost a third of it
    targets = [tuple(r.values()) for r in await tx.fetch("targets_for_settle", ids)]
    latest: dict[int, list[OrderView]] = {}
    for row in await tx.fetch("orders_latest_states", ids):
        target_id, operator_code, action, status, ack_status = row.values()
        latest.setdefault(target_id, []).append(
            OrderView(operator_code, action, status, ack_status)
        )
    changed: list[dict[str, Any]] = []
    settled: list[dict[str, Any]] = []
    for tid, action, current in targets:
        state = target_state(action, latest.get(tid, []))
        if state != current:
            changed.append({"id": tid, "action": action, "state": state})
        if state != "pending":
            settled.append({"target_id": tid, "failed": target_failed(action, state)})
    if changed or settled:
        await tx.fetchrow(
            "targets_settle", orjson.dumps(changed).decode(), orjson.dumps(settled).decode()
        )
