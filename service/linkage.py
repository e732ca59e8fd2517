"""Handset <-> SIM linkage: operators' sightings, what was seen with what, alerts, flagged
handsets, and block requests that name every identifier linked to one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from pydantic import ValidationError

from service import audit, escalations
from service.auth import Principal, require
from service.errors import Invalid, NotFound
from service.identifiers import InvalidTarget, normalize_target
from service.intake import Filing
from service.linkage_models import (
    AlertOut,
    AlertPage,
    AlertQuery,
    FlagOut,
    LinkedList,
    LinkedOut,
    SightingIn,
    SightingResultOut,
    SightingsOut,
)
from service.plans import NormalTarget
from service.store import Store, Tx

log = structlog.get_logger()
FUTURE_SLACK = timedelta(hours=1)  # clocks differ; a sighting far in the future is a mistake
_OTHER = {"imei": "msisdn", "msisdn": "imei"}


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )


def parse_sighting(raw: Any, region: str, now: datetime) -> tuple[str, str, datetime] | str:
    """A sighting as (imei, msisdn, seen_at), normalised; or why it is invalid."""
    if not isinstance(raw, dict):
        return "a sighting is an object {imei, msisdn, seen_at}"
    try:
        item = SightingIn.model_validate(raw)
    except ValidationError as exc:
        return _reason(exc)
    try:
        imei = normalize_target("imei", item.imei, region)
    except InvalidTarget as exc:
        return f"imei: {exc.reason}"
    try:
        msisdn = normalize_target("msisdn", item.msisdn, region)
    except InvalidTarget as exc:
        return f"msisdn: {exc.reason}"
    if item.seen_at > now + FUTURE_SLACK:
        return "seen_at: in the future"
    return imei, msisdn, item.seen_at


async def apply_sightings(
    store: Store,
    principal: Principal,
    operator: str,
    items: Sequence[Any],
    *,
    region: str,
    numbers_per_day: int,
) -> SightingsOut:
    """Store an operator's sightings; alerts for new numbers in blocked handsets, flags for
    handsets seen with too many numbers in a day. One result per item, in order."""
    now = datetime.now(UTC)
    results: list[SightingResultOut | None] = [None] * len(items)
    rows: list[dict[str, Any]] = []
    first: dict[tuple[str, str, datetime], int] = {}
    for n, raw in enumerate(items):
        parsed = parse_sighting(raw, region, now)
        if isinstance(parsed, str):
            results[n] = SightingResultOut(index=n, result="invalid", reason=parsed)
        elif parsed in first:
            results[n] = SightingResultOut(
                index=n, result="duplicate", reason=f"the same as item {first[parsed]}"
            )
        else:
            first[parsed] = n
            rows.append({"n": n, "imei": parsed[0], "msisdn": parsed[1], "seen_at": parsed[2]})

    async def store_them(tx: Tx) -> tuple[list[Any], list[Any]]:
        doc = orjson.dumps(rows, option=orjson.OPT_UTC_Z).decode()
        applied = await tx.fetch("sightings_apply", doc, operator)
        new = {a["n"] for a in applied if a["applied"]}
        fresh = [{"imei": r["imei"], "seen_at": r["seen_at"]} for r in rows if r["n"] in new]
        flagged = []
        seen_at = {r["n"]: r["seen_at"] for r in rows}
        alerted = [
            {
                "alert_id": a["alert_id"],
                "operator": operator,
                "seen_at": seen_at[a["n"]].astimezone(UTC),
            }
            for a in applied
            if a["alert_id"] is not None
        ]
        await escalations.raise_events(tx, "alert.sim_in_blocked_handset", alerted)
        if fresh:
            days = orjson.dumps(fresh, option=orjson.OPT_UTC_Z).decode()
            flagged = await tx.fetch("handsets_flag", days, numbers_per_day)
        if fresh:
            await audit.record_and_commit(tx, [_entry(principal, operator, applied, flagged)])
        return applied, flagged

    applied, flagged = await store.retrying(store_them, what="sightings") if rows else ([], [])
    for a in applied:
        n = a["n"]
        results[n] = SightingResultOut(
            index=n,
            result="applied" if a["applied"] else "duplicate",
            alert_id=a["alert_id"],
        )
    final = [r for r in results if r is not None]
    for a in applied:
        if a["alert_id"] is not None:
            log.warning("alert.sim_in_blocked_handset", alert_id=a["alert_id"], operator=operator)
    for f in flagged:
        log.warning("alert.handset_flagged", imei=f["imei"], numbers=f["numbers"])
    log.info(
        "sightings.applied",
        operator=operator,
        applied=sum(1 for r in final if r.result == "applied"),
        items=len(items),
    )
    return SightingsOut(
        results=final,
        applied=sum(1 for r in final if r.result == "applied"),
        flagged=[f["imei"] for f in flagged],
    )


def _entry(
    principal: Principal, operator: str, applied: Sequence[Any], flagged: Sequence[Any]
) -> audit.AuditEntry:
    return audit.AuditEntry(
        principal.actor,
        principal.role,
        "sightings.applied",
        "operator",
        operator,
        {
            "applied": sum(1 for a in applied if a["applied"]),
            "duplicate": sum(1 for a in applied if not a["applied"]),
            "alerts": [a["alert_id"] for a in applied if a["alert_id"] is not None]
            + [f["alert_id"] for f in flagged],
            "flagged": [f["imei"] for f in flagged],
        },
    )


def _normal(kind: str, raw: str, region: str) -> str:
    try:
        return normalize_target(kind, raw, region)
    except InvalidTarget as exc:
        raise NotFound(f"not a valid {kind}: {exc.reason}") from None


async def linked(
    store: Store, principal: Principal, kind: str, raw: str, region: str = "IN"
) -> LinkedList:
    """The numbers seen in a handset, or the handsets a number was used in."""
    require(principal, "investigator", "supervisor")  # case data: not an admin's
    value = _normal(kind, raw, region)
    flag = None
    if kind == "imei":
        rows = await store.fetch("linked_numbers", value)
        if (f := await store.fetchrow("handset_flag_get", value)) is not None:
            flag = FlagOut(day=f["day"], numbers=f["numbers"], flagged_at=f["flagged_at"])
    else:
        rows = await store.fetch("linked_handsets", value)
    return LinkedList(
        kind=kind,
        value=value,
        flagged=flag,
        linked=[
            LinkedOut(
                kind=_OTHER[kind],
                value=r["value"],
                operator=r["operator_code"],
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
                sightings=r["sightings"],
                state=r["state"],
                flagged=bool(r.get("flagged")),
            )
            for r in rows
        ],
    )


async def expand(store: Store, filing: Filing, region: str, max_targets: int) -> Filing:
    """A filing whose request names `linked_from`: that identifier and every one seen with
    it join its targets (after those it names, each once)."""
    source = filing.req.linked_from
    if source is None:
        return filing
    try:
        value = normalize_target(source.kind, source.value, region)
    except InvalidTarget as exc:
        raise Invalid(
            f"linked_from is not a valid {source.kind}: {exc.reason}",
            [{"field": "linked_from.value", "message": exc.reason}],
        ) from None
    query = "linked_numbers" if source.kind == "imei" else "linked_handsets"
    found = [(source.kind, value)] + [
        (_OTHER[source.kind], r["value"]) for r in await store.fetch(query, value)
    ]
    targets: list[NormalTarget] = list(filing.targets)
    named = {(t.kind, t.value) for t in targets}
    index = len(filing.req.targets)
    for kind, v in found:
        if (kind, v) not in named:
            named.add((kind, v))
            targets.append(NormalTarget(index, kind, v, v))
            index += 1
    if len(targets) > max_targets:
        raise Invalid(
            f"linked_from names {len(targets)} targets; at most {max_targets} per request",
            [{"field": "linked_from", "message": f"at most {max_targets} targets"}],
        )
    return dataclasses.replace(filing, targets=targets)


async def alerts(store: Store, principal: Principal, q: AlertQuery) -> AlertPage:
    """Alerts for supervisors, oldest first."""
    require(principal, "supervisor")
    rows = await store.fetch("alerts_page", q.kind, q.after, q.limit + 1)
    items = [
        AlertOut(
            id=r["id"],
            kind=r["kind"],
            imei=r["imei"],
            msisdn=r["msisdn"],
            operator=r["operator_code"],
            seen_at=r["seen_at"],
            details=orjson.loads(r["details"]) if isinstance(r["details"], str) else r["details"],
            created_at=r["created_at"],
        )
        for r in rows[: q.limit]
    ]
    return AlertPage(items=items, next_after=items[-1].id if len(rows) > q.limit else None)
