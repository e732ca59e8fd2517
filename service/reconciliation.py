"""Reconciliation: the list each operator was confirmed to block, and the operator's own list
compared with it (missing ones are blocked again, unexpected ones go to a supervisor)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson
import structlog

from service import audit, escalations, settlement
from service.auth import Principal, require
from service.errors import Invalid
from service.identifiers import InvalidTarget, normalize_target
from service.models import TargetIn
from service.ports import TargetKind
from service.reconciliation_models import (
    BlocklistChange,
    BlocklistOut,
    BlocklistQuery,
    Identifier,
    InvalidItem,
    ReconciliationOut,
    ReconciliationPage,
    ReconciliationQuery,
)
from service.store import Row, Store, Tx

log = structlog.get_logger()
Key = tuple[str, str]


async def blocklist(store: Store, operator: str, q: BlocklistQuery) -> BlocklistOut:
    """The full list the operator is expected to block, or its changes after `since`."""
    if q.since is None:
        return await _blocklist_page(store, operator, q)
    rows = await store.fetch("blocklist_changes", operator, q.since, q.kind, q.limit + 1)
    changes = [
        BlocklistChange(
            seq=r["seq"], kind=r["kind"], value=r["value"], change=r["change"], at=r["at"]
        )
        for r in rows[: q.limit]
    ]
    return BlocklistOut(
        operator=operator,
        kind=q.kind,
        cursor=changes[-1].seq if changes else q.since,
        full=False,
        changes=changes,
        more=len(rows) > q.limit,
    )


async def _blocklist_page(store: Store, operator: str, q: BlocklistQuery) -> BlocklistOut:
    """One page of the full list, in (kind, value) order, as of one cursor for every page: the
    first page takes the latest change's number, and `next` carries it with the last key."""
    if q.after is None:
        as_of = await store.fetchval("blocklist_head", operator)
        after_kind, after_value = "", ""
    else:
        as_of, after_kind, after_value = _read_page_token(q.after)
    rows = await store.fetch(
        "blocklist_page", operator, q.kind, as_of, after_kind, after_value, q.limit + 1
    )
    page = rows[: q.limit]
    more = len(rows) > q.limit
    return BlocklistOut(
        operator=operator,
        kind=q.kind,
        cursor=as_of,
        full=True,
        items=[Identifier(kind=r["kind"], value=r["value"]) for r in page],
        more=more,
        next=_page_token(as_of, page[-1]["kind"], page[-1]["value"]) if more else None,
    )


def _page_token(as_of: int, kind: str, value: str) -> str:
    """An opaque, URL-safe token for the full list's next page."""
    return base64.urlsafe_b64encode(f"{as_of}|{kind}|{value}".encode()).decode().rstrip("=")


def _read_page_token(token: str) -> tuple[int, str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        head, kind, value = raw.split("|")
        return int(head), kind, value
    except ValueError as e:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise Invalid(
            "after is not a page token from this list",
            [{"field": "after", "message": "pass the `next` of the previous page"}],
        ) from e


def _read(
    items: Sequence[TargetIn], kind: str | None, region: str
) -> tuple[set[Key], list[InvalidItem]]:
    listed: set[Key] = set()
    invalid: list[InvalidItem] = []
    for i, t in enumerate(items):
        if kind is not None and t.kind != kind:
            invalid.append(
                InvalidItem(index=i, kind=t.kind, value=t.value, reason=f"the list is of {kind}")
            )
            continue
        try:
            listed.add((t.kind, normalize_target(t.kind, t.value, region)))
        except InvalidTarget as exc:
            invalid.append(InvalidItem(index=i, kind=t.kind, value=t.value, reason=exc.reason))
    return listed, invalid


def _ids(keys: Sequence[Key]) -> list[dict[str, str]]:
    return [{"kind": k, "value": v} for k, v in keys]


def _identifiers(keys: Sequence[Key]) -> list[Identifier]:
    return [Identifier.model_validate(d) for d in _ids(keys)]


async def reconcile(
    store: Store,
    principal: Principal,
    operator: str,
    kind: TargetKind | None,
    items: Sequence[TargetIn],
    *,
    region: str,
) -> ReconciliationOut:
    """Compare the operator's list with what it was confirmed to block; block the missing
    ones again, list the unexpected ones; keep and audit the run."""
    listed, invalid = _read(items, kind, region)

    async def run(tx: Tx) -> ReconciliationOut:
        head = await tx.fetchrow("blocklist_full", operator, kind)
        assert head is not None
        expected = {(k, v) for k, v in orjson.loads(head["items"])}
        differ = sorted((expected - listed) | (listed - expected))
        transit: set[Key] = set()
        if differ:
            rows = await tx.fetch(
                "pairs_outstanding", operator, [k for k, _ in differ], [v for _, v in differ]
            )
            transit = {(r["kind"], r["value"]) for r in rows}
        missing = sorted(expected - listed - transit)
        unexpected = sorted(listed - expected - transit)
        requeued = await _requeue(tx, operator, missing) if missing else []
        doc = {
            "missing": _ids(missing),
            "unexpected": _ids(unexpected),
            "in_transit": _ids(sorted(transit)),
            "invalid": [i.model_dump() for i in invalid],
        }
        row = await tx.fetchrow(
            "reconciliation_insert",
            operator,
            kind,
            head["cursor"],
            len(listed),
            len(listed & expected),
            *(orjson.dumps(doc[k]).decode() for k in ("missing", "unexpected", "in_transit")),
            orjson.dumps(doc["invalid"]).decode(),
            requeued,
            principal.token_id,
        )
        assert row is not None
        out = ReconciliationOut(
            id=row["id"],
            operator=operator,
            kind=kind,
            cursor=head["cursor"],
            listed=len(listed),
            matched=len(listed & expected),
            missing=_identifiers(missing),
            unexpected=_identifiers(unexpected),
            in_transit=_identifiers(sorted(transit)),
            invalid=invalid,
            requeued=requeued,
            created_at=row["created_at"],
        )
        if out.missing or out.unexpected:
            await escalations.raise_events(tx, "reconciliation.mismatch", [_mismatch(out)])
        await audit.record_and_commit(tx, [_entry(principal, out)])
        return out

    out = await store.retrying(run, what="reconciliation")
    log.info(
        "reconciliation.run",
        operator=operator,
        id=out.id,
        matched=out.matched,
        missing=len(out.missing),
        unexpected=len(out.unexpected),
    )
    return out


async def _requeue(tx: Tx, operator: str, missing: Sequence[Key]) -> list[int]:
    """Block the missing identifiers again at this operator (targets locked first)."""
    locked = await tx.fetch("targets_lock_named", [k for k, _ in missing], [v for _, v in missing])
    ids = [r["id"] for r in locked]
    created = await tx.fetch("orders_requeue_reconciled", operator, ids)
    if created:
        await settlement.settle(tx, {c["target_id"] for c in created})
        settlement.wake(tx, [operator])
    return [c["id"] for c in created]


def _mismatch(out: ReconciliationOut) -> dict[str, Any]:
    """The `reconciliation.mismatch` escalation of a run that found differences."""
    return {
        "reconciliation_id": out.id,
        "operator": out.operator,
        "kind": out.kind,
        "listed": out.listed,
        "matched": out.matched,
        "missing": len(out.missing),
        "unexpected": len(out.unexpected),
        "requeued": out.requeued,
    }


def _entry(principal: Principal, out: ReconciliationOut) -> audit.AuditEntry:
    return audit.AuditEntry(
        principal.actor,
        principal.role,
        "reconciliation.run",
        "reconciliation",
        str(out.id),
        {
            "operator": out.operator,
            "kind": out.kind,
            "cursor": out.cursor,
            "listed": out.listed,
            "matched": out.matched,
            "missing": len(out.missing),
            "unexpected": len(out.unexpected),
            "requeued": out.requeued,
        },
    )


def _run(r: Row) -> ReconciliationOut:
    def ids(raw: Any) -> list[Identifier]:
        data = orjson.loads(raw) if isinstance(raw, str) else raw
        return [Identifier.model_validate(d) for d in data]

    invalid = orjson.loads(r["invalid"]) if isinstance(r["invalid"], str) else r["invalid"]
    return ReconciliationOut(
        id=r["id"],
        operator=r["operator_code"],
        kind=r["kind"],
        cursor=r["cursor"],
        listed=r["listed"],
        matched=r["matched"],
        missing=ids(r["missing"]),
        unexpected=ids(r["unexpected"]),
        in_transit=ids(r["in_transit"]),
        invalid=[InvalidItem.model_validate(i) for i in invalid],
        requeued=list(r["requeued"]),
        created_at=r["created_at"],
    )


async def runs(store: Store, principal: Principal, q: ReconciliationQuery) -> ReconciliationPage:
    """Reconciliation runs, newest first (supervisors)."""
    require(principal, "supervisor")
    rows = await store.fetch("reconciliations_page", q.operator, q.before, q.limit + 1)
    items = [_run(r) for r in rows[: q.limit]]
    return ReconciliationPage(
        items=items, next_before=items[-1].id if len(rows) > q.limit else None
    )
