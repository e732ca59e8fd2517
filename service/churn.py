"""Number churn: numbers re-allocated to new subscribers or permanently disconnected are
retired, so that blocking the fraudster never reaches the next holder of the number."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson
import structlog

from service import audit, settlement
from service.identifiers import InvalidTarget, normalize_target
from service.store import Store, Tx

log = structlog.get_logger()
ChurnEvent = Literal["reallocated", "permanently_disconnected"]
ChurnOutcome = Literal["retired", "not_found", "duplicate", "invalid"]


@dataclass(frozen=True, slots=True)
class ChurnItem:
    """One number's churn as reported."""

    msisdn: str
    event: ChurnEvent
    at: datetime


@dataclass(frozen=True, slots=True)
class ChurnResult:
    """What became of one churn item."""

    index: int
    result: ChurnOutcome
    value: str | None = None
    reason: str | None = None


async def retire(
    store: Store,
    items: Sequence[ChurnItem],
    *,
    actor: str,
    role: str,
    region: str = "IN",
) -> list[ChurnResult]:
    """Retire the numbers' current targets with their dates: orders not yet sent are
    cancelled, holds released, learned routes forgotten, and no operator is expected to block
    them any more. A later request naming such a number makes a new target."""
    results: dict[int, ChurnResult] = {}
    first: dict[str, int] = {}
    rows: list[dict[str, object]] = []
    for i, item in enumerate(items):
        try:
            value = normalize_target("msisdn", item.msisdn, region)
        except InvalidTarget as exc:
            results[i] = ChurnResult(i, "invalid", reason=exc.reason)
            continue
        if value in first:
            results[i] = ChurnResult(
                i, "duplicate", value, f"the same number as item {first[value]}"
            )
            continue
        first[value] = i
        rows.append({"value": value, "event": item.event, "at": item.at})

    async def run(tx: Tx) -> set[str]:
        retired = await tx.fetch(
            "targets_retire", orjson.dumps(rows, option=orjson.OPT_UTC_Z).decode()
        )
        ids = sorted(r["id"] for r in retired)
        values = sorted({str(r["value"]) for r in rows})
        if ids:  # the lock order: targets, orders, blocklists, requests
            await tx.fetch("orders_cancel_retired", ids, "re-allocated or disconnected")
        await tx.execute("blocklist_retire", values)
        if ids:
            links = await tx.fetch("request_links_retire", ids)
            await settlement.settle(tx, ids)
            requests = sorted({r["request_id"] for r in links})
            if requests:
                await tx.execute("requests_recount", requests)
        await tx.execute("routes_forget", values)
        by_value = {r["value"]: r["id"] for r in retired}
        entries = [
            audit.AuditEntry(
                actor,
                role,
                "target.retired",
                "target",
                str(by_value[r["value"]]),
                {"msisdn": r["value"], "event": r["event"], "at": _iso(r["at"])},
            )
            for r in rows
            if r["value"] in by_value
        ]
        await audit.record_and_commit(tx, entries)
        return set(by_value)

    done = await store.retrying(run, what="churn") if rows else set()
    for value, i in first.items():
        outcome: ChurnOutcome = "retired" if value in done else "not_found"
        reason = None if value in done else "no request named this number; its route is forgotten"
        results[i] = ChurnResult(i, outcome, value, reason)
    log.info("churn.applied", retired=len(done), items=len(items), actor=actor)
    return [results[i] for i in range(len(items))]


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
