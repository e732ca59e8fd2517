"""Deciding an unblock: which cases' holds it releases, which unsent blocks it withdraws, and
which operators must be told to unblock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service import settlement
from service.auth import Principal
from service.lifecycle import CONFIRMED
from service.plans import NormalTarget, TargetPlan
from service.store import Row, Tx
from service.visibility import hold_for

_OUTSTANDING = frozenset({"in_flight", "sent", "dead"})


def _may_block(latest: Row) -> bool:
    """Whether an operator may block the target after its pair's latest decision, so that an
    unblock must go to it: a block it confirmed, may have received or may still get, or an
    unblock it refused or never answered."""
    if latest["action"] == "unblock":
        return bool(latest["status"] == "dead" or latest["ack_status"] == "rejected")
    if latest["status"] == "queued":  # withdrawn now; it may have arrived on an earlier try
        return bool(latest["attempts"] > 0 or latest["first_sent_at"] is not None)
    return bool(latest["status"] in _OUTSTANDING or latest["ack_status"] in CONFIRMED)


@dataclass(frozen=True)
class UnblockHead:
    """The unblock request being decided: the case whose holds it releases."""

    request_id: int
    unit: str
    case_ref: str
    force: bool


def visible_holds(
    holds: Sequence[tuple[str, str]], viewer: Principal
) -> list[dict[str, str | None]]:
    """Holds as a caller may see them: another unit's case references stay hidden from an
    investigator (they learn how many cases and which units)."""
    return [hold_for(viewer, unit, case) for unit, case in holds]


def awaiting_approval(
    targets: Sequence[NormalTarget], by_key: Mapping[tuple[str, str], Row]
) -> list[TargetPlan]:
    """An unblock filed for approval decides nothing yet: its known targets wait."""
    plans = []
    for t in targets:
        row = by_key.get((t.kind, t.value))
        if row is None:
            plans.append(TargetPlan(t, 0, "not_blocked", "unblocked"))
        else:
            plans.append(TargetPlan(t, row["id"], "awaiting_approval", row["state"]))
    return plans


async def decide_unblock(
    tx: Tx,
    head: UnblockHead,
    viewer: Principal,
    targets: Sequence[NormalTarget],
    by_key: Mapping[tuple[str, str], Row],
) -> list[TargetPlan]:
    """A plan per target, with its effects made: holds released where the unblock takes
    effect at once, unsent orders withdrawn. The caller queues the plans' orders.

    An unblock releases only its own case's holds (every hold with `force`), and only when it
    takes effect: at once when other cases still hold the target or no operator blocks it,
    else when its orders are acknowledged (service.settlement.settle)."""
    ids = sorted({r["id"] for r in by_key.values()})
    holds: dict[int, list[tuple[str, str]]] = {}
    latest: dict[int, list[Row]] = {}
    if ids:
        for h in await tx.fetch("holds_of", ids):
            holds.setdefault(h["target_id"], []).append((h["unit_code"], h["case_ref"]))
        for o in await tx.fetch("orders_latest_for_targets", ids):
            latest.setdefault(o["target_id"], []).append(o)
    own_case = (head.unit, head.case_ref)
    withdraw: list[dict[str, Any]] = []
    release_now: list[dict[str, int]] = []
    plans = []
    for t in targets:
        row = by_key.get((t.kind, t.value))
        if row is None:
            plans.append(TargetPlan(t, 0, "not_blocked", "unblocked"))
            continue
        tid = row["id"]
        mine = [h for h in holds.get(tid, []) if head.force or h == own_case]
        others = [h for h in holds.get(tid, []) if h not in mine]
        if others:
            release_now.append({"target_id": tid, "request_id": head.request_id})
            plans.append(
                TargetPlan(t, tid, "held", row["state"], held_by=visible_holds(others, viewer))
            )
            plans[-1].releases = visible_holds(mine, viewer)
            continue
        if row["action"] == "unblock" and row["state"] in ("pending", "unblocked"):
            release_now.append({"target_id": tid, "request_id": head.request_id})
            outcome = "in_progress" if row["state"] == "pending" else "already_unblocked"
            plans.append(TargetPlan(t, tid, outcome, row["state"]))
            plans[-1].releases = visible_holds(mine, viewer)
            continue
        operators = [o["operator_code"] for o in latest.get(tid, []) if _may_block(o)]
        withdraw += [
            {"target_id": tid, "operator_code": o["operator_code"], "request_id": head.request_id}
            for o in latest.get(tid, [])
            if o["status"] == "queued"
        ]
        if operators:
            plans.append(TargetPlan(t, tid, "queued", "pending", sorted(operators)))
        else:
            release_now.append({"target_id": tid, "request_id": head.request_id})
            plans.append(TargetPlan(t, tid, "not_blocked", "unblocked", restate=True))
        plans[-1].releases = visible_holds(mine, viewer)
    if withdraw:
        await tx.execute("orders_withdraw_unsent", orjson.dumps(withdraw).decode())
    settlement.release_holds(tx, release_now)
    return plans
