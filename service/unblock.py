"""Planning an unblock: releasing cases' holds, withdrawing unsent blocks, finding who blocked."""

from __future__ import annotations

from collections.abc import Mapping

from service.auth import Principal
from service.models import BlockRequestIn
from service.plans import NormalTarget, TargetPlan
from service.store import Row, Tx


async def plan_unblock(
    tx: Tx,
    principal: Principal,
    req: BlockRequestIn,
    unit: str,
    targets: list[NormalTarget],
    by_key: Mapping[tuple[str, str], Row],
) -> list[TargetPlan]:
    """A plan per target; an unblock goes only to operators that blocked the target."""
    ids = [r["id"] for r in by_key.values()]
    if ids:
        scope_unit = None if principal.role == "supervisor" else unit
        released = await tx.fetch("holds_release", ids, req.case_ref, scope_unit)
        released_ids = {r["target_id"] for r in released}
        rest = [i for i in ids if i not in released_ids]
        if rest:
            await tx.fetch("holds_release", rest, None, unit)
        if req.force:
            await tx.fetch("holds_release", ids, None, None)
    holders = (
        {r["target_id"]: list(r["case_refs"]) for r in await tx.fetch("holds_remaining", ids)}
        if ids
        else {}
    )
    free = [i for i in ids if i not in holders]
    # block orders not yet sent are withdrawn rather than chased by an unblock
    withdrawn = await tx.fetch("orders_withdraw_unsent_blocks", free) if free else []
    latest = await tx.fetch("orders_latest_for_targets", ids) if ids else []
    blocked_by: dict[int, list[str]] = {}
    for o in latest:
        if (
            o["action"] == "block"
            and o["status"] not in ("dead", "cancelled")
            and (o["ack_status"] not in ("not_subscriber", "rejected"))
        ):
            blocked_by.setdefault(o["target_id"], []).append(o["operator_code"])
    plans = []
    for t in targets:
        row = by_key.get((t.kind, t.value))
        if row is None:
            plans.append(TargetPlan(t, 0, "not_blocked", "unblocked"))
        elif row["action"] == "unblock":
            outcome = "in_progress" if row["state"] == "pending" else "already_unblocked"
            plans.append(TargetPlan(t, row["id"], outcome, row["state"]))
        elif row["id"] in holders:
            plans.append(TargetPlan(t, row["id"], "held", row["state"], held_by=holders[row["id"]]))
        elif not blocked_by.get(row["id"]):
            was_withdrawn = any(w["target_id"] == row["id"] for w in withdrawn)
            state = "unblocked" if was_withdrawn else row["state"]
            plans.append(TargetPlan(t, row["id"], "not_blocked", state, restate=was_withdrawn))
        else:
            plans.append(
                TargetPlan(t, row["id"], "queued", "pending", sorted(blocked_by[row["id"]]))
            )
    return plans
