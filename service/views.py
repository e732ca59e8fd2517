"""Read-side views of requests and targets, scoped to the caller."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from service.auth import Principal
from service.errors import Forbidden, NotFound
from service.identifiers import InvalidTarget, normalize_target
from service.intake import order_doc
from service.lifecycle import OrderView, operator_holds
from service.models import (
    BlockRequestOut,
    BlockRequestPage,
    BlockRequestQuery,
    BlockRequestSummary,
    OrderOut,
    RequestTargetOut,
    RequestTargetsQuery,
    TargetCaseOut,
    TargetOut,
)
from service.store import Row, Store
from service.visibility import order_for, request_units, sees_case


def _view(o: Row) -> OrderView:
    return OrderView(o["operator_code"], o["action"], o["status"], o["ack_status"])


def _scope_unit(principal: Principal) -> str | None:
    """The unit an investigator is confined to; None for a supervisor. Admins manage
    configuration and read no case data; operators read only their own orders."""
    if principal.role == "investigator":
        return principal.unit
    if principal.role == "supervisor":
        return None
    raise Forbidden(f"a {principal.role} token cannot read block requests or targets")


async def _orders_out(
    store: Store, viewer: Principal, rows: list[Row], known: dict[int, str] | None = None
) -> list[OrderOut]:
    """Orders as the viewer may see them (service.visibility)."""
    units = known or {}
    if viewer.role != "supervisor":  # a supervisor sees every case: no need to know whose
        units = await request_units(store, [o["request_id"] for o in rows], known)
    return [
        OrderOut.model_validate(order_for(viewer, order_doc(o), units.get(o["request_id"])))
        for o in rows
    ]


async def _visible_head(store: Store, principal: Principal, request_id: int) -> Row:
    scope = _scope_unit(principal)
    head = await store.fetchrow("request_get", request_id)
    if head is None or (scope is not None and head["unit_code"] != scope):
        raise NotFound(f"no block request {request_id}")
    return head


async def get_request(
    store: Store,
    principal: Principal,
    request_id: int,
    page: RequestTargetsQuery | None = None,
) -> BlockRequestOut:
    """One request with a page of its targets and their latest order per operator."""
    page = page or RequestTargetsQuery()
    head = await _visible_head(store, principal, request_id)
    rows = await store.fetch("request_targets_of", request_id, page.after, page.limit + 1)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    orders: dict[int, list[OrderOut]] = {}
    if rows:
        latest = await store.fetch("orders_latest_for_targets", [r["target_id"] for r in rows])
        for o, out in zip(latest, await _orders_out(store, principal, latest), strict=True):
            orders.setdefault(o["target_id"], []).append(out)
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
        next_after=rows[-1]["position"] if more else None,
    )


async def targets_named(
    store: Store, principal: Principal, request_id: int, named: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Those of the (kind, value) pairs that the request named, in its order."""
    await _visible_head(store, principal, request_id)
    rows = await store.fetch(
        "request_targets_named", request_id, [k for k, _ in named], [v for _, v in named]
    )
    return [(r["kind"], r["value"]) for r in rows]


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
    items = [request_summary(r) for r in rows[: q.limit]]
    next_after = items[-1].id if len(rows) > q.limit else None
    return BlockRequestPage(items=items, next_after=next_after)


def request_summary(r: Row) -> BlockRequestSummary:
    """A request row as the lists show it."""
    return BlockRequestSummary(
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


async def get_target(
    store: Store, principal: Principal, kind: str, raw: str, region: str = "IN"
) -> TargetOut:
    """A target's state across operators and the cases that named it."""
    _scope_unit(principal)  # investigators and supervisors only
    try:
        value = normalize_target(kind, raw, region)
    except InvalidTarget as exc:
        raise NotFound(f"not a valid {kind}: {exc.reason}") from None
    row = await store.fetchrow("target_get", kind, value)
    retired = await store.fetch("targets_retired_of", kind, value)
    if row is None and not retired:
        raise NotFound(f"no {kind} {value} has been named in any request")
    lives = [await _target_out(store, principal, r) for r in ([row] if row else []) + retired]
    return lives[0].model_copy(update={"previous": lives[1:]})


async def _target_out(store: Store, principal: Principal, row: Row) -> TargetOut:
    """One life of a target: its state, orders and cases, as the caller may see them."""
    case_rows = await store.fetch("target_cases", row["id"])
    # another unit's case shows its unit and whether it holds the target, nothing more
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
        if sees_case(principal, c["unit_code"])
        else TargetCaseOut(unit=c["unit_code"], holds=c["holds"])
        for c in case_rows
    ]
    order_rows = await store.fetch("orders_for_target", row["id"])
    latest_rows = await store.fetch("orders_latest_for_targets", [row["id"]])
    units = {c["request_id"]: c["unit_code"] for c in case_rows}
    orders = await _orders_out(store, principal, order_rows, units)
    latest = dict(
        zip(
            [o["operator_code"] for o in latest_rows],
            await _orders_out(store, principal, latest_rows, units),
            strict=True,
        )
    )
    return TargetOut(
        kind=row["kind"],
        value=row["value"],
        state=row["state"],
        action=row["action"],
        state_changed_at=row["state_changed_at"],
        created_at=row["created_at"],
        operators=latest,
        operator_states={o["operator_code"]: operator_holds(_view(o)) for o in latest_rows},
        orders=orders,
        cases=cases,
        retired_at=row.get("retired_at"),
        retired_as=row.get("retired_as"),
    )


async def request_timeline(
    store: Store, principal: Principal, request_id: int, limit: int = 200
) -> list[Row]:
    """The attempts and acks of a request's targets' orders, newest first, scoped as above."""
    await _visible_head(store, principal, request_id)
    return await store.fetch("console_request_timeline", request_id, limit)


REQUEST_CSV_HEADER = (
    "id",
    "unit",
    "case_ref",
    "category",
    "action",
    "priority",
    "status",
    "target_count",
    "created_at",
    "updated_at",
)


async def request_csv_rows(
    store: Store, principal: Principal, q: BlockRequestQuery, chunk_rows: int
) -> AsyncGenerator[list[list[Any]], None]:
    """Every request matching the filters (all pages, newest first), as CSV rows in chunks
    (REQUEST_CSV_HEADER's columns), read through a cursor so none is held beyond its chunk."""
    scope = _scope_unit(principal)
    if scope is not None and q.unit is not None and q.unit != scope:
        return
    rows = store.stream(
        "request_list",
        scope or q.unit,
        q.status,
        q.category,
        q.case_ref,
        q.created_from,
        q.created_to,
        q.after,
        None,  # no LIMIT
        chunk_rows=chunk_rows,
    )
    async with contextlib.aclosing(rows):
        async for chunk in rows:
            yield [
                [
                    r["id"],
                    r["unit_code"],
                    r["case_ref"],
                    r["category"],
                    r["action"],
                    r["priority"],
                    r["status"],
                    r["target_count"],
                    r["created_at"].isoformat(),
                    r["updated_at"].isoformat(),
                ]
                for r in chunk
            ]
