"""Grievances: opened by an operator against the cases holding a target, decided by each case
(an upheld one files that case's unblock through intake), listed with the overdue ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from service import audit
from service.auth import Principal, require
from service.errors import Conflict, Forbidden, Invalid, NotFound
from service.grievance_models import (
    GrievanceCaseOut,
    GrievanceDecisionIn,
    GrievanceIn,
    GrievanceOut,
    GrievancePage,
    GrievanceQuery,
    NoObjection,
)
from service.identifiers import InvalidTarget, normalize_target
from service.intake import file_one, prepare
from service.models import BlockRequestIn, TargetIn
from service.settings import Settings
from service.store import Row, Store, Tx


async def open_grievance(
    store: Store, principal: Principal, body: GrievanceIn, settings: Settings
) -> GrievanceOut:
    """Open a grievance against every case holding the target; the operator must have been
    sent an order for it."""
    require(principal, "operator")
    assert principal.operator is not None
    try:
        value = normalize_target(body.kind, body.value, settings.default_region)
    except InvalidTarget as exc:
        raise Invalid(exc.reason, [{"field": "value", "message": exc.reason}]) from None

    async def work(tx: Tx) -> int:
        target = await tx.fetchrow("target_get", body.kind, value)
        latest = await tx.fetch("orders_latest_for_targets", [target["id"]]) if target else []
        if target is None or all(o["operator_code"] != principal.operator for o in latest):
            raise NotFound(f"no order for {body.kind} {value} was sent to {principal.operator}")
        holds = await tx.fetch("holds_of", [target["id"]])
        if not holds:
            raise Conflict(f"no case holds {body.kind} {value}: it is not blocked on our orders")
        cases = [{"unit": h["unit_code"], "case_ref": h["case_ref"]} for h in holds]
        row = await tx.fetchrow(
            "grievance_open",
            target["id"],
            principal.operator,
            body.subscriber_ref,
            body.reason,
            settings.grievance_deadline_s,
            orjson.dumps(cases).decode(),
        )
        assert row is not None
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "grievance.opened",
                    "grievance",
                    str(row["id"]),
                    {"target": f"{body.kind}:{value}", "cases": len(cases)},
                )
            ],
        )
        return int(row["id"])

    gid = await store.retrying(work, what="grievance.open")
    return await get_grievance(store, principal, gid)


async def get_grievance(store: Store, principal: Principal, grievance_id: int) -> GrievanceOut:
    """One grievance as the caller may see it; 404 outside their scope."""
    row = await store.fetchrow("grievance_list", None, None, None, False, None, 1, grievance_id)
    if row is None or not _visible(row, principal):
        raise NotFound(f"no grievance {grievance_id}")
    return _out(row, principal)


async def list_grievances(store: Store, principal: Principal, q: GrievanceQuery) -> GrievancePage:
    """Grievances newest first: an investigator's unit's, an operator's own, or all."""
    require(principal, "investigator", "supervisor", "operator")
    unit = principal.unit if principal.role == "investigator" else None
    operator = principal.operator if principal.role == "operator" else None
    rows = await store.fetch(
        "grievance_list", unit, operator, q.status, q.overdue, q.after, q.limit + 1, None
    )
    items = [_out(r, principal) for r in rows[: q.limit]]
    return GrievancePage(items=items, next_after=items[-1].id if len(rows) > q.limit else None)


async def overdue(store: Store, principal: Principal) -> list[GrievanceOut]:
    """Open grievances past their decision deadline (for the overdue list)."""
    page = await list_grievances(store, principal, GrievanceQuery(overdue=True, limit=500))
    return page.items


async def no_objection(store: Store, principal: Principal, grievance_id: int) -> NoObjection:
    """The decisions on an operator's own grievance."""
    require(principal, "operator")
    g = await get_grievance(store, principal, grievance_id)
    upheld = [c for c in g.cases if c.decision == "upheld"]
    if g.status == "upheld":
        statement = (
            f"Every case holding {g.kind} {g.value} upheld the grievance: no objection to "
            "restoring service once the unblock orders reach you."
        )
    elif upheld:
        statement = (
            f"{len(upheld)} of {len(g.cases)} holding cases upheld the grievance; "
            f"{g.kind} {g.value} stays blocked while the others hold it."
        )
    else:
        statement = f"No holding case has upheld the grievance; {g.kind} {g.value} stays blocked."
    return NoObjection(
        grievance_id=g.id,
        kind=g.kind,
        value=g.value,
        status=g.status,
        decisions=g.cases,
        statement=statement,
    )


async def decide(
    store: Store,
    principal: Principal,
    grievance_id: int,
    body: GrievanceDecisionIn,
    settings: Settings,
) -> GrievanceOut:
    """One holding case decides. Upheld: an unblock request is filed for that case (its
    Idempotency-Key makes a repeated decision file it once)."""
    require(principal, "investigator", "supervisor")
    unit = principal.unit if principal.role == "investigator" else body.unit
    if principal.role == "investigator" and body.unit not in (None, principal.unit):
        raise Forbidden(f"an investigator of {principal.unit} decides for that unit's cases")
    if unit is None:
        raise Invalid("a supervisor must name the case's unit", [{"field": "unit"}])
    g = await get_grievance(store, principal, grievance_id)
    case = next((c for c in g.cases if c.unit == unit and c.case_ref == body.case_ref), None)
    if case is None:
        raise NotFound(f"case {unit}/{body.case_ref} does not hold grievance {grievance_id}")
    if case.decision != "pending":
        raise Conflict(f"case {unit}/{body.case_ref} already decided: {case.decision}")
    request_id: int | None = None
    if body.decision == "upheld":
        category = await store.fetchval("case_category", unit, body.case_ref)
        req = BlockRequestIn(
            case_ref=body.case_ref,
            category=category,
            action="unblock",
            unit=unit,
            reason=f"grievance {grievance_id} upheld" + (f": {body.reason}" if body.reason else ""),
            targets=[TargetIn(kind=g.kind, value=g.value)],
        )
        filing = prepare(
            principal,
            req,
            region=settings.default_region,
            approval_policy=settings.approval_policy,
            idempotency_key=f"grievance:{grievance_id}:{unit}:{body.case_ref}",
        )
        request_id = int((await file_one(store, filing)).body["id"])

    async def work(tx: Tx) -> None:
        status = await tx.fetchval(
            "grievance_decide_case",
            grievance_id,
            unit,
            body.case_ref,
            body.decision,
            body.reason,
            principal.token_id,
            request_id,
        )
        if status is None:
            raise Conflict(f"case {unit}/{body.case_ref} already decided")
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "grievance.decided",
                    "grievance",
                    str(grievance_id),
                    {
                        "unit": unit,
                        "case_ref": body.case_ref,
                        "decision": body.decision,
                        "reason": body.reason,
                        "unblock_request_id": request_id,
                        "grievance_status": status,
                    },
                )
            ],
        )

    await store.retrying(work, what="grievance.decide")
    return await get_grievance(store, principal, grievance_id)


def _visible(row: Row, principal: Principal) -> bool:
    if principal.role in ("supervisor", "admin"):
        return True
    if principal.role == "operator":
        return bool(row["operator_code"] == principal.operator)
    return any(c["unit"] == principal.unit for c in _cases(row))


def _cases(row: Row) -> list[dict[str, Any]]:
    raw = row["cases"]
    return list(orjson.loads(raw) if isinstance(raw, str | bytes) else raw or [])


def _out(row: Row, principal: Principal) -> GrievanceOut:
    sees_all = principal.role in ("supervisor", "admin")
    cases = []
    for c in _cases(row):
        mine = sees_all or (principal.role == "investigator" and c["unit"] == principal.unit)
        cases.append(
            GrievanceCaseOut(
                unit=c["unit"],
                case_ref=c["case_ref"] if mine else None,
                decision=c["decision"],
                reason=c["reason"] if mine else None,
                decided_at=c["decided_at"],
                unblock_request_id=(
                    c["unblock_request_id"] if mine or principal.role == "operator" else None
                ),
            )
        )
    return GrievanceOut(
        id=row["id"],
        kind=row["kind"],
        value=row["value"],
        operator=row["operator_code"],
        subscriber_ref=row["subscriber_ref"],
        reason=row["reason"],
        status=row["status"],
        overdue=row["status"] == "open" and row["due_at"] < datetime.now(UTC),
        due_at=row["due_at"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        cases=cases,
    )
