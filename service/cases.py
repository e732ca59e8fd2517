"""Cases (unit, case_ref): FIR details, what they named, and the money held and refunded."""

from __future__ import annotations

from typing import Any

import structlog

from service import audit
from service.auth import Principal, require
from service.case_models import (
    CaseOut,
    CasePage,
    CaseQuery,
    CaseSummary,
    CaseTargetOut,
    CategoryIn,
    CategoryList,
    CategoryOut,
    FirIn,
    MoneyEntryOut,
    MoneyIn,
    MoneyTotals,
    TimelineEvent,
)
from service.errors import Conflict, Forbidden, Invalid, NotFound
from service.models import HoldOut
from service.money import mask_account, rupees
from service.store import IntegrityConflict, Row, Store, Tx
from service.views import request_summary

log = structlog.get_logger()


def case_id(unit: str, case_ref: str) -> str:
    """How the audit log names a case."""
    return f"{unit}/{case_ref}"


def _read_scope(principal: Principal) -> str | None:
    if principal.role == "investigator":
        return principal.unit
    if principal.role == "supervisor":
        return None
    # admins manage configuration and read no case data
    raise Forbidden(f"a {principal.role} token cannot read cases")


def _write_scope(principal: Principal, unit: str, case_ref: str) -> None:
    """Investigators act for their own unit's cases (404 for others'), supervisors for any."""
    require(principal, "investigator", "supervisor")
    if principal.role == "investigator" and principal.unit != unit:
        raise NotFound(f"no case {case_id(unit, case_ref)}")


def totals(r: Row) -> MoneyTotals:
    """A case row's money."""
    on_hold = r["held_paise"] - r["released_paise"] - r["refunded_paise"]
    return MoneyTotals(
        held_paise=r["held_paise"],
        released_paise=r["released_paise"],
        refunded_paise=r["refunded_paise"],
        on_hold_paise=on_hold,
        summary=f"{rupees(r['held_paise'])} put on hold or lien marked, "
        f"{rupees(r['released_paise'])} released, {rupees(r['refunded_paise'])} refunded, "
        f"{rupees(on_hold)} still on hold",
    )


def _summary(r: Row, requests: int | None = None) -> dict[str, Any]:
    return {
        "id": r["id"],
        "unit": r["unit_code"],
        "case_ref": r["case_ref"],
        "category": r["category"],
        "police_station": r["police_station"],
        "fir_date": r["fir_date"],
        "ncrp_ack": r["ncrp_ack"],
        "loss_paise": r["loss_paise"],
        "requests": requests,
        "money": totals(r),
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
    }


def _entry(r: Row) -> MoneyEntryOut:
    return MoneyEntryOut(
        id=r["id"],
        kind=r["kind"],
        amount_paise=r["amount_paise"],
        amount=rupees(r["amount_paise"]),
        bank=r["bank"],
        account_ref=r["account_ref"],
        date=r["entry_date"],
        note=r["note"],
        reverses=r["reverses"],
        reversed_by=r.get("reversed_by"),
        created_at=r["created_at"],
    )


async def list_cases(store: Store, principal: Principal, q: CaseQuery) -> CasePage:
    """A page of cases, newest first; investigators see only their unit's."""
    scope = _read_scope(principal)
    if scope is not None and q.unit is not None and q.unit != scope:
        return CasePage(items=[], next_after=None)
    rows = await store.fetch(
        "case_list",
        scope or q.unit,
        q.category,
        q.case_ref,
        q.police_station,
        q.created_from,
        q.created_to,
        q.on_hold,
        q.after,
        q.limit + 1,
    )
    items = [CaseSummary(**_summary(r, r["requests"])) for r in rows[: q.limit]]
    next_after = items[-1].id if len(rows) > q.limit else None
    return CasePage(items=items, next_after=next_after)


async def get_case(store: Store, principal: Principal, unit: str, case_ref: str) -> CaseOut:
    """A case with its requests, targets (state now, who holds them), money and timeline."""
    scope = _read_scope(principal)
    head = await store.fetchrow("case_get", unit, case_ref)
    if head is None or (scope is not None and scope != unit):
        raise NotFound(f"no case {case_id(unit, case_ref)}")
    requests = await store.fetch("case_requests", unit, case_ref)
    target_rows = await store.fetch("case_targets", unit, case_ref)
    holds: dict[int, list[tuple[str, str]]] = {}
    if target_rows:
        for h in await store.fetch("holds_of", [t["id"] for t in target_rows]):
            holds.setdefault(h["target_id"], []).append((h["unit_code"], h["case_ref"]))
    targets = []
    for t in target_rows:
        by = holds.get(t["id"], [])
        others = [
            HoldOut(unit=u, case_ref=ref if scope is None or u == scope else None)
            for u, ref in by
            if (u, ref) != (unit, case_ref)
        ]
        targets.append(
            CaseTargetOut(
                kind=t["kind"],
                value=t["value"],
                state=t["state"],
                action=t["action"],
                state_changed_at=t["state_changed_at"],
                held=(unit, case_ref) in by,
                held_by=others,
            )
        )
    entries = [_entry(r) for r in await store.fetch("money_entries_of", unit, case_ref)]
    return CaseOut(
        **_summary(head, len(requests)),
        block_requests=[request_summary(r) for r in requests],
        targets=targets,
        money_entries=entries,
        timeline=await _timeline(store, head, requests),
    )


async def _timeline(store: Store, head: Row, requests: list[Row]) -> list[TimelineEvent]:
    """The case opened, its requests filed and decided, FIR details set, money recorded."""
    events = [TimelineEvent(at=head["created_at"], event="case.opened")]
    for r in requests:
        events.append(
            TimelineEvent(
                at=r["created_at"],
                event=f"request.filed.{r['action']}",
                details={"request_id": r["id"], "targets": r["target_count"]},
            )
        )
        if r["decided_at"] is not None:
            events.append(
                TimelineEvent(
                    at=r["decided_at"],
                    event=f"request.{r['status']}",
                    details={"request_id": r["id"]},
                )
            )
    for a in await store.fetch("case_audit", case_id(head["unit_code"], head["case_ref"])):
        events.append(
            TimelineEvent(at=a["at"], event=a["action"], actor=a["actor"], details=a["details"])
        )
    return sorted(events, key=lambda e: e.at)


async def set_fir(
    store: Store, principal: Principal, unit: str, case_ref: str, body: FirIn
) -> tuple[CaseOut, bool]:
    """Set a case's FIR details, creating the case if new; returns it and whether it is new."""
    _write_scope(principal, unit, case_ref)
    details = body.model_dump(mode="json", exclude_none=True)
    try:
        async with store.transaction() as tx:
            row = await tx.fetchrow(
                "case_set_fir",
                unit,
                case_ref,
                body.police_station,
                body.fir_date,
                body.ncrp_ack,
                body.loss_paise,
            )
            assert row is not None
            entry = audit.AuditEntry(
                principal.actor,
                principal.role,
                "case.fir_set",
                "case",
                case_id(unit, case_ref),
                details,
            )
            await audit.record_and_commit(tx, [entry])
    except IntegrityConflict:
        raise Invalid(f"no such unit: {unit}", [{"field": "unit"}]) from None
    log.info("case.fir_set", unit=unit, case_ref=case_ref, created=row["created"])
    return await get_case(store, principal, unit, case_ref), bool(row["created"])


async def record_money(
    store: Store, principal: Principal, unit: str, case_ref: str, body: MoneyIn
) -> MoneyEntryOut:
    """Record a hold, release, refund or reversal; 409 when it would overdraw the hold."""
    _write_scope(principal, unit, case_ref)

    async def work(tx: Tx) -> MoneyEntryOut:
        case = await tx.fetchrow("case_lock", unit, case_ref)
        if case is None:
            raise NotFound(f"no case {case_id(unit, case_ref)}")
        on_hold = case["held_paise"] - case["released_paise"] - case["refunded_paise"]
        if body.reverses is not None:  # takes the original back whole: same kind, amount, bank
            orig = await _reversed(tx, unit, case_ref, body.reverses)
            kind, amount, category = orig["kind"], orig["amount_paise"], orig["category"]
            bank, account = orig["bank"], orig["account_ref"]
            change = -amount if kind == "hold" else amount
        else:
            assert body.kind is not None and body.amount_paise is not None and body.bank
            kind, amount, category = body.kind, body.amount_paise, case["count_category"]
            bank = body.bank
            account = mask_account(body.account_ref) if body.account_ref else None
            change = amount if kind == "hold" else -amount
        if on_hold + change < 0:
            raise _overdrawn(unit, case_ref, case, kind, amount, reversal=body.reverses)
        row = await tx.fetchrow(
            "money_entry_insert",
            unit,
            case_ref,
            kind,
            amount,
            bank,
            account,
            body.date,
            body.note,
            body.reverses,
            category,
            principal.token_id,
        )
        assert row is not None
        out = _entry(row)
        entry = audit.AuditEntry(
            principal.actor,
            principal.role,
            "money.reversed" if body.reverses else f"money.{kind}",
            "case",
            case_id(unit, case_ref),
            {
                "entry_id": out.id,
                "kind": kind,
                "amount_paise": amount,
                "bank": out.bank,
                "account_ref": out.account_ref,
                "date": out.date.isoformat(),
                "reverses": out.reverses,
                "on_hold_paise": on_hold + change,
            },
        )
        await audit.record_and_commit(tx, [entry])
        return out

    try:
        out = await store.retrying(work, what="money")
    except IntegrityConflict as exc:  # the database's own guard (sql/0007, cases checks)
        log.warning("money.refused_by_database", unit=unit, case_ref=case_ref, error=str(exc))
        raise Conflict(
            "the entry would break the case's money rules; nothing was recorded"
        ) from None
    log.info(
        "money.recorded",
        unit=unit,
        case_ref=case_ref,
        entry_id=out.id,
        kind=out.kind,
        amount_paise=out.amount_paise,
        reverses=out.reverses,
    )
    return out


async def _reversed(tx: Tx, unit: str, case_ref: str, entry_id: int) -> Row:
    """The entry a reversal takes back, if it may be."""
    orig = await tx.fetchrow("money_entry_get", entry_id)
    if orig is None or (orig["unit_code"], orig["case_ref"]) != (unit, case_ref):
        raise Invalid(
            f"case {case_id(unit, case_ref)} has no money entry {entry_id}",
            [{"field": "reverses", "message": "no such entry in this case"}],
        )
    if orig["reverses"] is not None:
        raise Conflict(
            f"entry {entry_id} is itself a reversal; record the entry again instead",
            [{"field": "reverses", "message": "a reversal cannot be reversed"}],
        )
    if orig["reversed_by"] is not None:
        raise Conflict(
            f"entry {entry_id} was already reversed by entry {orig['reversed_by']}",
            [{"field": "reverses", "message": "already reversed"}],
        )
    return orig


def _overdrawn(
    unit: str, case_ref: str, case: Row, kind: str, amount: int, reversal: int | None
) -> Conflict:
    on_hold = case["held_paise"] - case["released_paise"] - case["refunded_paise"]
    what = f"reversing hold entry {reversal}" if reversal else f"a {kind}"
    figures = {
        "field": "reverses" if reversal else "amount_paise",
        "message": f"{what} of {rupees(amount)} is more than the {rupees(on_hold)} on hold",
        "amount_paise": amount,
        "on_hold_paise": on_hold,
        "held_paise": case["held_paise"],
        "released_paise": case["released_paise"],
        "refunded_paise": case["refunded_paise"],
    }
    return Conflict(
        f"{what} of {rupees(amount)} is more than what is still on hold for case "
        f"{case_id(unit, case_ref)}: {rupees(on_hold)} (held {rupees(case['held_paise'])}, "
        f"released {rupees(case['released_paise'])}, refunded {rupees(case['refunded_paise'])})",
        [figures],
    )


async def list_categories(store: Store) -> CategoryList:
    """Every fraud category."""
    rows = await store.fetch("category_list")
    return CategoryList(items=[CategoryOut(**dict(r)) for r in rows])


async def add_category(store: Store, body: CategoryIn, *, actor: str, role: str) -> CategoryOut:
    """Add a fraud category; 409 if the code exists."""
    async with store.transaction() as tx:
        row = await tx.fetchrow("category_add", body.code, body.label)
        if row is None:
            raise Conflict(
                f"category {body.code} exists", [{"field": "code", "message": "already exists"}]
            )
        entry = audit.AuditEntry(
            actor, role, "category.added", "category", body.code, {"label": body.label}
        )
        await audit.record_and_commit(tx, [entry])
    log.info("category.added", code=body.code)
    return CategoryOut(**dict(row))
