"""Escalations: admins subscribe endpoints to event types; events are raised in the
transaction of the change that causes them (an outbox) and delivered by the workers
(service.escalation_delivery)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog

from service import audit
from service.auth import Principal, require
from service.errors import NotFound
from service.escalation_models import (
    DeliveryOut,
    DeliveryPage,
    DeliveryQuery,
    EndpointIn,
    EndpointList,
    EndpointOut,
    EventType,
)
from service.store import Row, Store, Tx

log = structlog.get_logger()
SWEEP_LIMIT = 1000  # overdue subjects raised per sweep and kind; the next sweep takes the rest


def webhook_id(delivery_id: int) -> str:
    """The `webhook-id` of a delivery: the same on every attempt, so receivers can dedupe."""
    return f"esc_{delivery_id}"


async def raise_events(tx: Tx, event_type: EventType, docs: Sequence[Mapping[str, Any]]) -> int:
    """Raise one event per document in this transaction; stored (with a delivery per
    subscribed endpoint) only when someone subscribed. Returns how many were stored."""
    if not docs:
        return 0
    raised: int = await tx.fetchval(
        "escalation_raise", event_type, orjson.dumps(list(docs), option=orjson.OPT_UTC_Z).decode()
    )
    return raised


async def sweep_overdue(store: Store) -> int:
    """Raise `order.overdue` and `grievance.overdue` once for each order and grievance that
    went past its deadline since the last sweep; returns how many subjects were raised."""
    total = 0
    for query in ("escalations_raise_overdue_orders", "escalations_raise_overdue_grievances"):
        row = await store.fetchrow(query, SWEEP_LIMIT)
        assert row is not None
        if row["raised"]:
            log.info("escalation.overdue_raised", query=query, subjects=row["raised"],
                     events=row["events"])  # fmt: skip
        total += row["raised"]
    return total


def require_admin(principal: Principal) -> None:
    """Escalation endpoints are configuration: admins only."""
    require(principal, "admin")


def _endpoint(r: Row, **extra: Any) -> EndpointOut:
    return EndpointOut(
        id=r["id"],
        url=r["url"],
        event_types=list(r["event_types"]),
        description=r["description"],
        active=r["active"],
        created_at=r["created_at"],
        disabled_at=r["disabled_at"],
        **extra,
    )


async def create_endpoint(
    store: Store, principal: Principal, body: EndpointIn, secret: str
) -> EndpointOut:
    """Subscribe an endpoint (admins); the answer holds its signing secret, shown only here."""
    require_admin(principal)
    async with store.transaction() as tx:
        row = await tx.fetchrow(
            "escalation_endpoint_insert",
            str(body.url),
            secret,
            list(body.event_types),
            body.description,
            principal.token_id,
        )
        assert row is not None
        out = _endpoint(row, secret=secret)
        details = {"url": out.url, "event_types": out.event_types, "description": out.description}
        await audit.record_and_commit(
            tx,
            [_entry(principal, "escalation_endpoint.created", out.id, details)],
        )
    log.info("escalation.endpoint_created", endpoint=out.id, event_types=out.event_types)
    return out


async def list_endpoints(store: Store, principal: Principal) -> EndpointList:
    """Every endpoint with its delivery counts and latest error; secrets redacted (admins)."""
    require_admin(principal)
    rows = await store.fetch("escalation_endpoint_list")
    return EndpointList(
        items=[
            _endpoint(
                r,
                pending=r["pending"],
                delivered=r["delivered"],
                dead=r["dead"],
                last_error=r["last_error"],
            )
            for r in rows
        ]
    )


async def disable_endpoint(store: Store, principal: Principal, endpoint_id: int) -> EndpointOut:
    """Stop sending to an endpoint: no new events, queued deliveries cancelled (admins)."""
    require_admin(principal)
    async with store.transaction() as tx:
        row = await tx.fetchrow("escalation_endpoint_disable", endpoint_id)
        if row is None:
            raise NotFound(f"no active escalation endpoint with id {endpoint_id}")
        out = _endpoint(row)
        details = {"url": out.url, "cancelled_deliveries": row["cancelled"]}
        await audit.record_and_commit(
            tx, [_entry(principal, "escalation_endpoint.disabled", out.id, details)]
        )
    return out


async def deliveries(
    store: Store, principal: Principal, endpoint_id: int, q: DeliveryQuery
) -> DeliveryPage:
    """An endpoint's recent deliveries and their state (admins); no event contents."""
    require_admin(principal)
    if await store.fetchrow("escalation_endpoint_get", endpoint_id) is None:
        raise NotFound(f"no escalation endpoint with id {endpoint_id}")
    rows = await store.fetch("escalation_deliveries_page", endpoint_id, q.status, q.before,
                             q.limit + 1)  # fmt: skip
    items = [
        DeliveryOut(
            id=r["id"],
            webhook_id=webhook_id(r["id"]),
            event_id=r["event_id"],
            type=r["type"],
            status=r["status"],
            attempts=r["attempts"],
            next_attempt_at=r["next_attempt_at"] if r["status"] == "queued" else None,
            last_error=r["last_error"],
            last_http_status=r["last_http_status"],
            created_at=r["created_at"],
            delivered_at=r["delivered_at"],
            dead_at=r["dead_at"],
        )
        for r in rows[: q.limit]
    ]
    return DeliveryPage(items=items, next_before=items[-1].id if len(rows) > q.limit else None)


def _entry(
    principal: Principal, action: str, endpoint_id: int, details: dict[str, Any]
) -> audit.AuditEntry:
    return audit.AuditEntry(
        principal.actor, principal.role, action, "escalation_endpoint", str(endpoint_id), details
    )
