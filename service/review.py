"""Supervisors' decisions: approving, rejecting and cancelling requests, re-queuing dead orders."""

from __future__ import annotations

import orjson

from service import acks, audit
from service.auth import Principal, require
from service.errors import Conflict, Invalid, NotFound
from service.models import DeadRequeueIn, DeadRequeueOut
from service.store import Row, Store, Tx

REQUEUE_BATCH = 10_000  # dead orders re-queued per call; `more` says when to call again


async def _locked_request(tx: Tx, principal: Principal, request_id: int) -> Row:
    row = await tx.fetchrow("request_lock", request_id)
    if row is None or (principal.role == "investigator" and row["unit_code"] != principal.unit):
        raise NotFound(f"no block request {request_id}")
    return row


async def approve(store: Store, principal: Principal, request_id: int) -> None:
    """Release a pending request's orders to the dispatcher."""
    require(principal, "supervisor")
    async with store.transaction() as tx:
        row = await _locked_request(tx, principal, request_id)
        if row["status"] != "pending_approval":
            raise Conflict(f"request {request_id} is {row['status']}, not pending_approval")
        await tx.execute("request_decide", request_id, "dispatching", principal.token_id, None)
        released = await tx.fetch("orders_release_held", request_id)
        await tx.execute("requests_recount", [request_id])
        if released:
            ops = ",".join(sorted({r["operator_code"] for r in released}))
            await tx.execute("notify_orders", ops)
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    principal.actor,
                    principal.role,
                    "request.approved",
                    "block_request",
                    str(request_id),
                    {"orders": len(released)},
                )
            ],
        )


async def reject(store: Store, principal: Principal, request_id: int, reason: str) -> None:
    """Refuse a pending request; its orders are cancelled, nothing is sent."""
    require(principal, "supervisor")
    if not reason.strip():
        raise Invalid("a rejection needs a reason", [{"field": "reason"}])
    async with store.transaction() as tx:
        row = await _locked_request(tx, principal, request_id)
        if row["status"] != "pending_approval":
            raise Conflict(f"request {request_id} is {row['status']}, not pending_approval")
        await _withdraw(tx, request_id, "rejected", principal, reason)
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


async def cancel(store: Store, principal: Principal, request_id: int, reason: str | None) -> None:
    """Withdraw a request before any of its orders was sent."""
    require(principal, "investigator", "supervisor")
    async with store.transaction() as tx:
        row = await _locked_request(tx, principal, request_id)
        if row["status"] in ("rejected", "cancelled"):
            raise Conflict(f"request {request_id} is already {row['status']}")
        if await tx.fetchval("request_orders_sent", request_id):
            raise Conflict(
                f"request {request_id} has orders already sent to operators; "
                "file an unblock request instead"
            )
        await _withdraw(tx, request_id, "cancelled", principal, reason)
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


async def _withdraw(
    tx: Tx, request_id: int, status: str, principal: Principal, reason: str | None
) -> None:
    await tx.execute("request_decide", request_id, status, principal.token_id, reason)
    await tx.execute("request_links_close", request_id)
    cancelled = await tx.fetch("orders_cancel_unsent", request_id)
    await acks.settle(tx, {r["target_id"] for r in cancelled})


async def requeue(store: Store, principal: Principal, order_id: int) -> None:
    """Give a dead order another full life in the queue."""
    require(principal, "supervisor")
    async with store.transaction() as tx:
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
        await acks.settle(tx, [row["target_id"]])
        await tx.execute("requests_recount", [row["request_id"]])
        await tx.execute("notify_orders", row["operator_code"])
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


async def requeue_dead(
    store: Store, principal: Principal, which: DeadRequeueIn, *, limit: int = REQUEUE_BATCH
) -> DeadRequeueOut:
    """Give up to `limit` matching dead orders another full life in the queue, as `requeue`
    does one; an order superseded by a newer one of its target and operator stays dead."""
    require(principal, "supervisor")
    async with store.transaction() as tx:
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
            await acks.settle(tx, {r["target_id"] for r in rows})
            links = [{"request_id": r["request_id"], "target_id": r["target_id"]} for r in rows]
            await tx.execute("request_links_reopen_each", orjson.dumps(links).decode())
            await tx.execute("requests_recount", sorted({r["request_id"] for r in rows}))
            await tx.execute("notify_orders", ",".join(sorted({r["operator_code"] for r in rows})))
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
