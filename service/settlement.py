"""Settling: targets' states from their pairs' latest decisions, re-routing, holds released
when an unblock takes effect, and what an applied acknowledgement changes besides its order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from service import audit
from service.lifecycle import OrderView, latest_action, pending_under, target_state
from service.routing import route_target
from service.store import Row, Store, Tx

if TYPE_CHECKING:
    from service.acks import AckItem


async def settle(
    tx: Tx,
    target_ids: Iterable[int],
    *,
    decided: Mapping[int, str] | None = None,
    redecide: bool = False,
) -> None:
    """Recompute targets' states from their pairs' latest decisions and close the requests
    they finish. `decided` gives the action a decision just set for some targets; `redecide`
    takes each target's action from its newest remaining decision (a request was taken back).
    An unblock that reaches `unblocked` takes effect: the holds of its case are released."""
    ids = sorted(set(target_ids))
    if not ids:
        return
    # rows are unpacked by position: settling runs for every batch, lookups by name cost more
    targets: list[tuple[int, str, str]] = []
    # each pair's latest decision, as read; made an OrderView only for a target to decide
    latest: dict[int, list[tuple[str, str, str, str | None, int, int]]] = {}
    waiting: set[str] = set()
    for row in await tx.fetch("settle_read", ids):  # the targets (locked), then their pairs
        target_id, operator_code, action, status, ack_status, request_id, seq = row.values()
        if operator_code is None:
            targets.append((target_id, action, status))
            continue
        latest.setdefault(target_id, []).append(
            (operator_code, action, status, ack_status, request_id, seq)
        )
        if status == "queued":
            waiting.add(operator_code)
    changed: list[dict[str, Any]] = []
    settled: list[dict[str, Any]] = []
    effective: list[dict[str, int]] = []
    for tid, stored_action, current in targets:
        pairs = latest.get(tid, ())
        if (  # under its stored action, target_state would find it pending, as it is
            current == "pending"
            and not redecide
            and (decided is None or tid not in decided)
            and pending_under(stored_action, pairs)
        ):
            continue  # nothing to write
        views = [OrderView._make(p) for p in pairs]
        action = stored_action
        if decided is not None and tid in decided:
            action = decided[tid]
        elif redecide:
            action = latest_action(views, stored_action)
        state = target_state(action, views)
        if state != current or action != stored_action:
            changed.append({"id": tid, "action": action, "state": state})
            if action == "unblock" and state == "unblocked":
                unblocks = [v for v in views if v.action == "unblock"]
                if unblocks:
                    newest = max(unblocks, key=lambda v: v.seq)
                    effective.append({"target_id": tid, "request_id": newest.request_id})
        if state != "pending":
            settled.append({"target_id": tid, "state": state})
    # the writes go with the transaction's next round trip (sql/0025), often its COMMIT
    release_holds(tx, effective)
    if changed or settled:
        tx.defer("targets_settle", orjson.dumps({"changed": changed, "settled": settled}).decode())
    wake(tx, waiting)  # an order waited for the one these settle: its lane may claim it now


def release_holds(tx: Tx, releases: Sequence[Mapping[str, int]]) -> None:
    """Unblocks take effect: the holds of the cases they name are released ({target_id,
    request_id}: the unblock request), with the transaction's next round trip."""
    if releases:
        tx.defer("holds_release", orjson.dumps(list(releases)).decode())


def wake(tx: Tx, operators: Iterable[str]) -> None:
    """Wake these operators' lanes when the transaction commits (NOTIFY)."""
    if codes := sorted(set(operators)):
        tx.defer("orders_notify", orjson.dumps(codes).decode())


async def supersede(tx: Tx, pairs: Sequence[Mapping[str, Any]]) -> None:
    """Withdraw the unsent older orders of the pairs a block decision covers. An unblock
    withdrawn so has been overtaken: its case asked to let go, so its holds go now."""
    withdrawn = await tx.fetch("orders_withdraw_unsent", orjson.dumps(pairs).decode())
    overtaken = {(w["target_id"], w["request_id"]) for w in withdrawn if w["action"] == "unblock"}
    release_holds(tx, [{"target_id": t, "request_id": r} for t, r in sorted(overtaken)])


async def reroute(tx: Tx, rows: Sequence[Row]) -> None:
    """Ask the operators not yet asked about numbers an operator does not serve, as part of
    the same decision; a decision that a newer one superseded is not followed up."""
    active = [r["code"] for r in await tx.fetch("operator_active_codes")]
    target_ids = sorted({r["target_id"] for r in rows})
    asked: dict[int, set[str]] = {}
    newest: dict[int, int] = {}
    for o in await tx.fetch("orders_latest_for_targets", target_ids):
        newest[o["target_id"]] = max(newest.get(o["target_id"], 0), o["seq"] or 0)
        if o["action"] == "block":
            asked.setdefault(o["target_id"], set()).add(o["operator_code"])
    learned: dict[str, dict[str, bool]] = {}
    for r in await tx.fetch("routes_for_msisdns", sorted({r["value"] for r in rows})):
        learned.setdefault(r["msisdn"], {})[r["operator_code"]] = r["serves"]
    new_orders: list[dict[str, Any]] = []
    seen: set[int] = set()
    for r in rows:
        tid = r["target_id"]
        if tid in seen or (r["seq"] or 0) < newest.get(tid, 0):
            continue
        seen.add(tid)
        fresh = [op for op in active if op not in asked.get(tid, set())]
        for op in route_target("msisdn", r["value"], fresh, {}, learned.get(r["value"], {})):
            new_orders.append(
                {
                    "target_id": tid,
                    "kind": r["kind"],
                    "value": r["value"],
                    "operator_code": op,
                    "action": "block",
                    "request_id": r["request_id"],
                    "unit_code": r["unit_code"],
                    "category": r["category"],
                    "urgent": r["urgent"],
                    "seq": r["seq"],
                }
            )
    if new_orders:
        created = await tx.fetch("orders_insert_each", orjson.dumps(new_orders).decode())
        wake(tx, (c["operator_code"] for c in created))


async def follow_up(
    tx: Tx,
    operator: str,
    rows: Sequence[Row],
    items: Sequence[AckItem],
    *,
    actor: str,
    role: str,
    commit: bool = False,
    also: Sequence[audit.AuditEntry] = (),
) -> None:
    """Everything an applied ack changes besides its order: routes learned, re-routing,
    target and request states, and the audit log (with `also`, entries of the same acks)."""
    learn = [
        (r["value"], i.status)
        for r, i in zip(rows, items, strict=True)
        if r["kind"] == "msisdn"
        and r["action"] == "block"
        and i.status in ("blocked", "already_blocked", "not_subscriber", "disconnected", "retained")
    ]
    if learn:
        routes = [{"msisdn": v, "operator_code": operator, "serves": s != "not_subscriber"}
                  for v, s in learn]  # fmt: skip
        tx.defer("routes_learn", orjson.dumps(routes).decode())
    not_serving = [
        r
        for r, i in zip(rows, items, strict=True)
        if i.status == "not_subscriber" and r["action"] == "block" and r["kind"] == "msisdn"
    ]
    if not_serving:
        await reroute(tx, not_serving)
    await settle(tx, {r["target_id"] for r in rows})
    write = audit.record_and_commit if commit else audit.record
    await write(tx, [ack_entry(actor, role, operator, a) for a in items] + list(also))


def ack_entry(actor: str, role: str, operator: str, a: AckItem) -> audit.AuditEntry:
    """The audit entry of one acknowledgement."""
    return audit.AuditEntry(
        actor,
        role,
        "ack.applied",
        "order",
        str(a.order_id),
        {"operator": operator, "status": a.status, "reason": a.reason},
    )


async def expire(store: Store, max_age_s: float) -> int:
    """Declare dead the orders past their maximum age that no worker holds (queued behind an
    open breaker or a disabled operator, or sent and never answered), each with why; their
    targets settle. Returns how many."""

    async def expire_some(tx: Tx) -> int:
        rows = await tx.fetch("orders_expiring", int(max_age_s))
        if not rows:
            return 0
        await tx.fetch("targets_for_settle", sorted({r["target_id"] for r in rows}))  # lock order
        dead = [{"id": r["id"], "reason": r["reason"]} for r in rows]
        gone = await tx.fetch("orders_expire", orjson.dumps(dead).decode())
        await settle(tx, {g["target_id"] for g in gone})
        return len(gone)

    return await store.retrying(expire_some, what="orders.expire")
