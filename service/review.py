"""Supervisors' decisions: approving, rejecting and cancelling requests, re-queuing dead orders.

Every path locks the request's targets (by id) before the request itself: the lock order of
service/queries.sql."""

from __future__ import annotations

from typing import Any

import orjson

from service import audit, settlement
from service.auth import Principal, require
from service.errors import Conflict, Invalid, NotFound
from service.intake import releases
from service.models import DeadRequeueIn, DeadRequeueOut
from service.plans import NormalTarget, TargetPlan
from service.store import Row, Store, Tx
from service.unblock import UnblockHead, decide_unblock

_SENT = frozenset({"in_flight", "sent", "acked", "dead"})

REQUEUE_BATCH = 10_000  # dead orders re-queued per call; `more` says when to call again


async def _locked_request(tx: Tx, principal: Principal, request_id: int) -> tuple[Row, list[Row]]:
    """The request and its targets, locked in the lock order; 404 outside the caller's scope."""
    head = await tx.fetchrow("request_head", request_id)
    if head is None or (principal.role == "investigator" and head["unit_code"] != principal.unit):
        raise NotFound(f"no block request {request_id}")
    ids = [r["target_id"] for r in await tx.fetch("request_target_ids", request_id)]
    targets = await tx.fetch("targets_lock", ids) if ids else []
    row = await tx.fetchrow("request_lock", request_id)
    assert row is not None
    return row, targets


async def approve(store: Store, principal: Principal, request_id: int) -> None:
    """Decide a pending request now: its orders go to the dispatcher."""
    require(principal, "supervisor")

    async def work(tx: Tx) -> None:
        row, targets = await _locked_request(tx, principal, request_id)
        if row["status"] != "pending_approval":
            raise Conflict(f"request {request_id} is {row['status']}, not pending_approval")
        await tx.execute("request_decide", request_id, "dispatching", principal.token_id, None)
        details: dict[str, Any] = {}
        if row["action"] == "block":
            queued = await _approve_block(tx, request_id)
        else:
            queued, plans = await _decide_unblock(tx, principal, row, targets)
            details["releases"] = releases(plans)
        await tx.execute("requests_recount", [request_id])
        settlement.wake(tx, queued)
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "request.approved",
                    "block_request",
                    str(request_id),
                    {"operators": sorted(queued), **details},
                )
            ],
        )

    return await store.retrying(work, what="review.approve")


async def _approve_block(tx: Tx, request_id: int) -> set[str]:
    """The held block orders become the pairs' latest decisions; the operators to wake."""
    seq = await tx.fetchval("decision_next")
    released = await tx.fetch("orders_decide_held", request_id, seq)
    pairs = [
        {"target_id": r["target_id"], "operator_code": r["operator_code"], "request_id": request_id}
        for r in released
    ]
    if pairs:
        await settlement.supersede(tx, pairs)
    await settlement.settle(
        tx, {r["target_id"] for r in released}, decided={r["target_id"]: "block" for r in released}
    )
    return {r["operator_code"] for r in released}


async def _decide_unblock(
    tx: Tx, principal: Principal, row: Row, targets: list[Row]
) -> tuple[set[str], list[TargetPlan]]:
    """Decide an unblock request for these targets as if it were filed now (an approval, or
    the last other hold gone); the operators to wake, and its plans."""
    by_key = {(t["kind"], t["value"]): t for t in targets}
    normal = [NormalTarget(i, t["kind"], t["value"], t["value"]) for i, t in enumerate(targets)]
    head = UnblockHead(row["id"], row["unit_code"], row["case_ref"], row["force"])
    plans = await decide_unblock(tx, head, principal, normal, by_key)
    new_orders: list[dict[str, Any]] = []
    seq = await tx.fetchval("decision_next")
    for p in plans:
        new_orders += [
            {
                "target_id": p.target_id,
                "kind": p.target.kind,
                "value": p.target.value,
                "operator_code": op,
                "action": "unblock",
                "request_id": row["id"],
                "unit_code": row["unit_code"],
                "category": row["category"],
                "urgent": row["priority"] == "urgent",
                "seq": seq,
            }
            for op in p.operators
        ]
    if new_orders:
        await tx.fetch("orders_insert_each", orjson.dumps(new_orders).decode())
    outcomes = [
        {"target_id": p.target_id, "outcome": p.outcome, "done": p.state != "pending"}
        for p in plans
    ]
    await tx.execute("request_links_outcome", row["id"], orjson.dumps(outcomes).decode())
    decided = {p.target_id: "unblock" for p in plans if p.operators or p.restate}
    await settlement.settle(tx, decided, decided=decided)
    return {o["operator_code"] for o in new_orders}, plans


async def reject(store: Store, principal: Principal, request_id: int, reason: str) -> None:
    """Refuse a pending request; its orders are cancelled, nothing is sent or changed."""
    require(principal, "supervisor")
    if not reason.strip():
        raise Invalid("a rejection needs a reason", [{"field": "reason"}])

    async def work(tx: Tx) -> None:
        row, _ = await _locked_request(tx, principal, request_id)
        if row["status"] != "pending_approval":
            raise Conflict(f"request {request_id} is {row['status']}, not pending_approval")
        await _take_back(tx, request_id, "rejected", principal, reason)
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "request.rejected",
                    "block_request",
                    str(request_id),
                    {"reason": reason},
                )
            ],
        )

    return await store.retrying(work, what="review.reject")


async def cancel(store: Store, principal: Principal, request_id: int, reason: str | None) -> None:
    """Take a request back before any of its orders was sent; what it changed is undone.

    The request's orders are locked before they are checked, so no worker can claim one
    in between: a request ends `cancelled` only if none of its orders was sent."""
    require(principal, "investigator", "supervisor")

    async def work(tx: Tx) -> None:
        row, _ = await _locked_request(tx, principal, request_id)
        if row["status"] in ("rejected", "cancelled"):
            raise Conflict(f"request {request_id} is already {row['status']}")
        orders = await tx.fetch("request_orders_lock", request_id)
        if any(
            o["status"] in _SENT or o["attempts"] > 0 or o["first_sent_at"] is not None
            for o in orders
        ):
            raise Conflict(
                f"request {request_id} has orders already sent to operators; "
                + (
                    "file an unblock request instead"
                    if row["action"] == "block"
                    else "file a block request to reverse it"
                )
            )
        await _take_back(tx, request_id, "cancelled", principal, reason)
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "request.cancelled",
                    "block_request",
                    str(request_id),
                    {"reason": reason},
                )
            ],
        )

    return await store.retrying(work, what="review.cancel")


async def _take_back(
    tx: Tx, request_id: int, status: str, principal: Principal, reason: str | None
) -> None:
    """Cancel a request's unsent orders, restore what its decision withdrew or released, and
    let its targets fall back to their newest remaining decisions."""
    await tx.execute("request_decide", request_id, status, principal.token_id, reason)
    await tx.execute("request_links_close", request_id)
    cancelled = await tx.fetch("orders_cancel_unsent", request_id, f"request {status}")
    restored = await tx.fetch("orders_restore_withdrawn", request_id)
    rehold = await tx.fetch("holds_restore", request_id)
    touched = {r["target_id"] for r in [*cancelled, *restored, *rehold]}
    await settlement.settle(tx, touched, redecide=True)
    woken = {r["operator_code"] for r in restored}
    woken |= await _resume_unblocks(tx, principal, request_id)
    settlement.wake(tx, woken)


async def _resume_unblocks(tx: Tx, principal: Principal, request_id: int) -> set[str]:
    """A block taken back may have been the last hold on a target that an unblock left
    blocked (`held`) for it: that unblock takes effect now. The operators to wake."""
    ids = [r["target_id"] for r in await tx.fetch("request_target_ids", request_id)]
    waiting: dict[int, tuple[Row, list[Row]]] = {}
    for r in await tx.fetch("unblocks_waiting_on_holds", ids) if ids else []:
        waiting.setdefault(r["id"], (r, []))[1].append(
            {k: r[k] for k in ("kind", "value", "action", "state")} | {"id": r["target_id"]}
        )
    woken: set[str] = set()
    for unblock_id, (head, targets) in sorted(waiting.items()):
        ops, _ = await _decide_unblock(tx, principal, head, targets)
        await tx.execute("requests_recount", [unblock_id])
        woken |= ops
    return woken


async def requeue(store: Store, principal: Principal, order_id: int) -> None:
    """Give a dead order another full life in the queue."""
    require(principal, "supervisor")

    async def work(tx: Tx) -> None:
        row = await tx.fetchrow("order_requeue_dead", order_id)
        if row is None:
            found = await tx.fetchrow("order_get", order_id)
            if found is None:
                raise NotFound(f"no order {order_id}")
            if found["status"] == "dead":
                raise Conflict(
                    f"order {order_id} is superseded: a newer order to {found['operator_code']} "
                    "for the same target exists (see the target's orders); it stays dead"
                )
            raise Conflict(f"order {order_id} is {found['status']}, not dead")
        await tx.execute("request_links_reopen", row["request_id"], row["target_id"])
        await settlement.settle(tx, [row["target_id"]])
        await tx.execute("requests_recount", [row["request_id"]])
        settlement.wake(tx, [row["operator_code"]])
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "order.requeued",
                    "order",
                    str(order_id),
                    {"operator": row["operator_code"]},
                )
            ],
        )

    return await store.retrying(work, what="review.requeue")


async def requeue_dead(
    store: Store, principal: Principal, which: DeadRequeueIn, *, limit: int = REQUEUE_BATCH
) -> DeadRequeueOut:
    """Give up to `limit` matching dead orders another full life in the queue, as `requeue`
    does one; an order superseded by a newer one of its target and operator stays dead."""
    require(principal, "supervisor")

    async def work(tx: Tx) -> DeadRequeueOut:
        rows = await tx.fetch(
            "orders_requeue_dead_matching",
            which.operator,
            which.dead_from,
            which.dead_to,
            which.reason,
            limit,
        )
        more = bool(rows) and bool(rows[0]["more"])
        if rows:
            # targets before their request links, as acks settle them: orders, targets, links,
            # requests (the targets are pending again, so settling leaves their links alone)
            await settlement.settle(tx, {r["target_id"] for r in rows})
            links = [{"request_id": r["request_id"], "target_id": r["target_id"]} for r in rows]
            await tx.execute("request_links_reopen_each", orjson.dumps(links).decode())
            await tx.execute("requests_recount", sorted({r["request_id"] for r in rows}))
            settlement.wake(tx, (r["operator_code"] for r in rows))
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "orders.requeued",
                    "orders",
                    which.operator or "*",
                    {
                        "filters": which.model_dump(mode="json"),
                        "requeued": len(rows),
                        "more": more,
                        "order_ids": [r["id"] for r in rows],
                    },
                )
            ],
        )
        return DeadRequeueOut(requeued=len(rows), more=more)

    return await store.retrying(work, what="review.requeue_dead")
