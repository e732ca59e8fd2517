"""Applying operators' acknowledgements to their orders (settling is service.settlement)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import orjson

from service import audit, settlement
from service.ports import STAGES, AckStatus, Stage
from service.store import Row, Tx

AckOutcome = Literal["applied", "duplicate", "conflict", "not_found", "invalid", "superseded"]
_BLOCK_ANSWERS = frozenset(
    {
        "blocked",
        "already_blocked",
        "not_subscriber",
        "rejected",
        "disconnected",
        "retained",
        *STAGES,
    }
)
_UNBLOCK_ANSWERS = frozenset({"unblocked", "not_subscriber", "rejected"})


@dataclass(frozen=True, slots=True)
class AckItem:
    """One acknowledgement of one order."""

    order_id: int
    status: AckStatus | Stage
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
    waited_s: float | None = None  # an applied final answer: from the order's first send


def invalid_answer(action: str, status: str, reason: str | None) -> str | None:
    """Why an ack status cannot answer an order of this action, or None when it can."""
    answers = _BLOCK_ANSWERS if action == "block" else _UNBLOCK_ANSWERS
    if status not in answers:
        return f"{status} does not answer a {action} order"
    if status == "rejected" and not reason:
        return "a rejected ack needs a reason"
    return None


def is_stage(status: str) -> bool:
    """Whether an ack status is a stage on the way to a final answer (the order stays open)."""
    return status in STAGES


def _check(
    item: AckItem, row: Row, *, on_screen: bool = False
) -> AckOutcome | tuple[Literal["invalid", "conflict"], str] | None:
    """None when the ack can be applied, else the outcome that refuses it. `on_screen`: a
    nodal officer answers orders the console showed them (that was their delivery)."""
    problem = invalid_answer(row["action"], item.status, item.reason)
    if problem is not None:
        return ("invalid", problem)
    if row["never_sent"] and not on_screen:  # the operator cannot have it: nothing was sent
        return ("conflict", "this order was never sent to the operator")
    if is_stage(item.status):  # each (order, stage) once; none after the final answer
        if item.status in (row["stages"] or ()):
            return "duplicate"
        if row["status"] in ("acked", "held", "cancelled"):
            return "conflict"
        return "superseded" if row["status"] == "withdrawn" else None
    if row["status"] == "acked":
        return "duplicate" if row["ack_status"] == item.status else "conflict"
    if row["status"] in ("held", "cancelled"):
        return "conflict"
    if row["status"] == "withdrawn":
        return "superseded"
    return None


async def apply_acks(
    tx: Tx,
    operator: str,
    items: Sequence[AckItem],
    *,
    actor: str,
    role: str,
    commit: bool = False,
    skew_s: float = 300.0,
    on_screen: bool = False,
) -> list[AckResult]:
    """Apply acks of one operator in this transaction; one result per item, in order.

    An ack of an order that a newer decision withdrew is kept in the order's history
    (`superseded`) and changes nothing else. With `commit`, the audit entries and the commit go
    together as the transaction's end. An ack whose `at` lies before the order's first send, or
    after now, by more than `skew_s` is `invalid`.
    """
    rows = {
        r["id"]: r
        for r in await tx.fetch("orders_for_ack", sorted({i.order_id for i in items}), operator)
    }
    timed = sorted({i.order_id for i in items if i.at is not None and i.order_id in rows})
    windows = {r["id"]: r for r in await tx.fetch("orders_ack_window", timed)} if timed else {}
    skew = timedelta(seconds=skew_s)
    results: list[AckResult] = []
    applied: dict[int, AckItem] = {}
    late: dict[int, AckItem] = {}
    staged: dict[tuple[int, str], AckItem] = {}
    for item in items:
        row = rows.get(item.order_id)
        if row is None:
            results.append(AckResult(item.order_id, "not_found", "no such order for " + operator))
            continue
        refusal = _check(item, row, on_screen=on_screen)
        window = windows.get(item.order_id)
        if (
            item.at is not None
            and window is not None
            and not window["since"] - skew <= item.at <= window["now"] + skew
        ):
            refusal = ("invalid", _out_of_window(window["since"], window["now"], skew))
        if isinstance(refusal, tuple):
            results.append(AckResult(item.order_id, refusal[0], refusal[1]))
        elif is_stage(item.status):
            if refusal is None and (item.order_id, item.status) not in staged:
                staged[(item.order_id, item.status)] = item
                results.append(AckResult(item.order_id, "applied"))
            elif refusal == "superseded":
                results.append(AckResult(item.order_id, "superseded", "a newer order replaced it"))
            else:
                results.append(AckResult(item.order_id, refusal or "duplicate"))
        elif item.order_id in applied or item.order_id in late:
            earlier = applied.get(item.order_id) or late[item.order_id]
            same = earlier.status == item.status
            results.append(AckResult(item.order_id, "duplicate" if same else "conflict"))
        elif refusal == "superseded":
            late[item.order_id] = item
            results.append(
                AckResult(item.order_id, "superseded", "recorded; a newer order replaced it")
            )
        elif refusal is None:
            applied[item.order_id] = item
            waited = (datetime.now(UTC) - row["offered_at"]).total_seconds()
            results.append(AckResult(item.order_id, "applied", waited_s=max(waited, 0.0)))
        else:
            results.append(AckResult(item.order_id, refusal))
    if late:
        await tx.execute("orders_record_late_ack", answers_json(late.values()))
    stage_entries: list[audit.AuditEntry] = []
    if staged:
        stage_entries = await _record_stages(tx, operator, staged.values(), actor, role)
    if applied:
        items_applied = list(applied.values())
        await tx.fetch("orders_apply_ack", answers_json(items_applied))
        await settlement.follow_up(
            tx,
            operator,
            [rows[i] for i in applied],
            items_applied,
            actor=actor,
            role=role,
            commit=commit,
            also=stage_entries,
        )
    elif late or stage_entries:
        write = audit.record_and_commit if commit else audit.record
        await write(
            tx,
            [settlement.ack_entry(actor, role, operator, a) for a in late.values()] + stage_entries,
        )
    return results


def _out_of_window(since: datetime, now: datetime, skew: timedelta) -> str:
    return (
        f"at must lie between the order's first send less {skew.total_seconds():g} s "
        f"({(since - skew).isoformat()}) and now plus as much ({(now + skew).isoformat()})"
    )


async def _record_stages(
    tx: Tx, operator: str, items: Iterable[AckItem], actor: str, role: str
) -> list[audit.AuditEntry]:
    """Record stages reached; the audit entries of those new to their orders."""
    doc = orjson.dumps(
        [{"id": i.order_id, "stage": i.status, "at": i.at} for i in items],
        option=orjson.OPT_UTC_Z,
    ).decode()
    recorded = await tx.fetch("orders_record_stage", doc)
    return [
        audit.AuditEntry(
            actor,
            role,
            "ack.stage",
            "order",
            str(r["order_id"]),
            {"operator": operator, "stage": r["stage"], "at": r["at"].isoformat()},
        )
        for r in recorded
    ]


def answers_json(items: Iterable[AckItem]) -> str:
    """Acks as the JSON rows the ack statements read (orders_ack, sql/0006)."""
    return orjson.dumps(
        [
            {
                "id": i.order_id,
                "status": i.status,
                "reason": i.reason,
                "ref": i.operator_ref,
                "at": i.at,
                "attempts": i.attempts,
            }
            for i in items
        ],
        option=orjson.OPT_UTC_Z,
    ).decode()
