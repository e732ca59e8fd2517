"""Read-side views of requests and targets, scoped to the caller."""

from __future__ import annotations

from service.auth import Principal
from service.errors import Forbidden, NotFound
from service.identifiers import InvalidTarget, normalize_target
from service.intake import order_out
from service.lifecycle import OrderView, operator_holds
from service.models import (
    BlockRequestOut,
    BlockRequestPage,
    BlockRequestQuery,
    BlockRequestSummary,
    OrderOut,
    RequestTargetOut,
    TargetCaseOut,
    TargetOut,
)
from service.store import Row, Store


def _view(o: Row) -> OrderView:
    return OrderView(o["operator_code"], o["action"], o["status"], o["ack_status"])


def _scope_unit(principal: Principal) -> str | None:
    if principal.role == "investigator":
        return principal.unit
    if principal.role in ("supervisor", "admin"):
        return None
    raise Forbidden(f"a {principal.role} token cannot read block requests")


async def get_request(store: Store, principal: Principal, request_id: int) -> BlockRequestOut:
    """One request with its targets and their latest order per operator."""
    scope = _scope_unit(principal)
    head = await store.fetchrow("request_get", request_id)
    if head is None or (scope is not None and head["unit_code"] != scope):
        raise NotFound(f"no block request {request_id}")
    rows = await store.fetch("request_targets_of", request_id)
    orders: dict[int, list[OrderOut]] = {}
    if rows:
        for o in await store.fetch("orders_latest_for_targets", [r["target_id"] for r in rows]):
            orders.setdefault(o["target_id"], []).append(order_out(o))
    return BlockRequestOut(
        id=head["id"],
        unit=head["unit_code"],
        case_ref=head["case_ref"],
        category=head["category"],
        action=head["action"],
        priority=head["priority"],
        legal_basis=head["legal_basis"],
        note=head["note"],
        reason=head["reason"],
        force=head["force"],
        status=head["status"],
        target_count=head["target_count"],
        created_at=head["created_at"],
        updated_at=head["updated_at"],
        decided_at=head["decided_at"],
        decision_reason=head["decision_reason"],
        targets=[
            RequestTargetOut(
                index=r["position"],
                kind=r["kind"],
                submitted=r["submitted_value"],
                value=r["value"],
                outcome=r["outcome"],
                state=r["state"],
                orders=orders.get(r["target_id"], []),
            )
            for r in rows
        ],
    )


async def list_requests(
    store: Store, principal: Principal, q: BlockRequestQuery
) -> BlockRequestPage:
    """A page of requests, newest first; investigators see only their unit's."""
    scope = _scope_unit(principal)
    if scope is not None and q.unit is not None and q.unit != scope:
        return BlockRequestPage(items=[], next_after=None)
    rows = await store.fetch(
        "request_list",
        scope or q.unit,
        q.status,
        q.category,
        q.case_ref,
        q.created_from,
        q.created_to,
        q.after,
        q.limit + 1,
    )
    items = [
        BlockRequestSummary(
            id=r["id"],
            unit=r["unit_code"],
            case_ref=r["case_ref"],
            category=r["category"],
            action=r["action"],
            priority=r["priority"],
            status=r["status"],
            target_count=r["target_count"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )
        for r in rows[: q.limit]
    ]
    next_after = items[-1].id if len(rows) > q.limit else None
    return BlockRequestPage(items=items, next_after=next_after)


async def get_target(
    store: Store, principal: Principal, kind: str, raw: str, region: str = "IN"
) -> TargetOut:
    """A target's state across operators and the cases that named it."""
    scope = _scope_unit(principal)
    try:
        value = normalize_target(kind, raw, region)
    except InvalidTarget as exc:
        raise NotFound(f"not a valid {kind}: {exc.reason}") from None
    row = await store.fetchrow("target_get", kind, value)
    retired = await store.fetch("targets_retired_of", kind, value)
    if row is None and not retired:
        raise NotFound(f"no {kind} {value} has been named in any request")
    lives = [await _target_out(store, scope, r) for r in ([row] if row else []) + retired]
    return lives[0].model_copy(update={"previous": lives[1:]})


async def _target_out(store: Store, scope: str | None, row: Row) -> TargetOut:
    """One life of a target: its state, orders and cases."""
    cases = [
        TargetCaseOut(
            request_id=c["request_id"],
            case_ref=c["case_ref"],
            unit=c["unit_code"],
            action=c["action"],
            status=c["status"],
            holds=c["holds"],
            created_at=c["created_at"],
        )
        for c in await store.fetch("target_cases", row["id"])
    ]
    if scope is not None:  # an investigator sees the state, and only their unit's cases
        cases = [c for c in cases if c.unit == scope]
    orders = [order_out(o) for o in await store.fetch("orders_for_target", row["id"])]
    latest = {
        o["operator_code"]: o for o in await store.fetch("orders_latest_for_targets", [row["id"]])
    }
    return TargetOut(
        kind=row["kind"],
        value=row["value"],
        state=row["state"],
        action=row["action"],
        state_changed_at=row["state_changed_at"],
        created_at=row["created_at"],
        operators={op: order_out(o) for op, o in latest.items()},
        operator_states={op: operator_holds(_view(o)) for op, o in latest.items()},
        orders=orders,
        cases=cases,
        retired_at=row.get("retired_at"),
        retired_as=row.get("retired_as"),
    )
