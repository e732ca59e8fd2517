"""What supervisors read: blocking counts (from counters kept in the same transactions),
operators' health, orders needing a person, the audit log."""

from __future__ import annotations

import gc
import io
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Literal

from service import operators, spreadsheet
from service.auth import Principal, require
from service.errors import Invalid
from service.intake import order_doc
from service.money import summary as press_summary
from service.report_models import (
    AttentionOrder,
    AttentionPage,
    AttentionQuery,
    AuditEntryOut,
    AuditPage,
    AuditQuery,
    OperatorHealth,
    OperatorHealthList,
)
from service.store import Row, Store

PERIODS = ("day", "week", "month")
DIMENSIONS = ("unit", "category", "operator", "kind", *PERIODS)
TARGET_STATES = (
    "blocked",
    "partially_blocked",
    "pending",
    "unblocked",
    "rejected",
    "dead",
    "unroutable",
    "cancelled",
    "retained",
)
ORDER_STATES = (
    "blocked",
    "unblocked",
    "pending",
    "rejected",
    "not_subscriber",
    "dead",
    "cancelled",
    "retained",
)
# a kind's counts in a group: targets by state, and state changes inside the period
TARGET_METRICS = (*TARGET_STATES, "blocked_in_period", "unblocked_in_period")
# stats_targets' columns: unit, category, kind, period, then the counts of TARGET_METRICS;
# stats_orders': operator first, then the same, and the counts of ORDER_STATES and withdrawn
_TARGET_COUNTS = 4
_ORDER_COUNTS = 5
KIND_NAMES = {"msisdn": "numbers", "imei": "handsets"}
MONEY_METRICS = ("put_on_hold_paise", "released_paise", "refunded_paise", "still_on_hold_paise")
_MONEY_KIND = {"hold": "put_on_hold_paise", "release": "released_paise", "refund": "refunded_paise"}


def parse_group_by(raw: str | None) -> list[str]:
    """`unit,day` → ['unit', 'day']; at most one of day/week/month."""
    dims = [d.strip() for d in (raw or "").split(",") if d.strip()]
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad:
        raise Invalid(
            f"unknown group_by {bad}; use any of {', '.join(DIMENSIONS)}",
            [{"field": "group_by", "message": f"unknown: {', '.join(bad)}"}],
        )
    if sum(d in PERIODS for d in dims) > 1:
        raise Invalid(
            "group_by takes one of day, week, month",
            [{"field": "group_by", "message": "pick one period"}],
        )
    return list(dict.fromkeys(dims))


def _empty(states: Sequence[str]) -> dict[str, int]:
    return dict.fromkeys(states, 0)


async def blocking_counts(
    store: Store,
    principal: Principal,
    *,
    start: date | None,
    end: date | None,
    group_by: list[str],
    unit: str | None = None,
    unit_kind: str | None = None,
) -> dict[str, Any]:
    """Distinct numbers and handsets by state, and money, per group and in total.

    A target counts under the unit and category of the request that first named it, and
    under the day it was first filed (in the zone's time zone); `*_in_period` counts state
    changes inside the period. Money counts under its case's unit and category, on the day
    the entry names; it is grouped by unit, category and period (with `kind` or `operator`
    in `group_by`, it is in the totals only).
    """
    require(principal, "supervisor", "investigator")  # counts of cases: not for admins
    if principal.role == "investigator":
        unit = principal.unit
    period = next((d for d in group_by if d in PERIODS), None)
    args = (start, end, "unit" in group_by, "category" in group_by, period, unit, unit_kind)
    money_rows = await store.fetch("stats_money", *args)
    if "operator" in group_by:
        report = await _by_operator(store, args, group_by, start, end)
        report["totals"]["money"] = _money_totals(money_rows)
        return report
    rows = await store.fetch("stats_targets", *args)
    with collector_paused():
        groups, totals = _place(rows, group_by, _TARGET_COUNTS, TARGET_METRICS)
        money = _money_totals(money_rows)
        if "kind" not in group_by:
            key_of = _key_getter(group_by)
            for r in money_rows:
                key = key_of(r)
                g = groups.get(key) or groups.setdefault(key, _group(key, group_by))
                g.setdefault("money", _money_totals([]))
                _add_money(g["money"], r)
            for g in groups.values():
                g.setdefault("money", _money_totals([]))
        return {
            "from": start,
            "to": end,
            "group_by": group_by,
            "unit": unit,
            "totals": {**totals, "money": money},
            "summary": press_summary(
                totals["numbers"]["blocked"],
                totals["handsets"]["blocked"],
                money["put_on_hold_paise"],
                money["refunded_paise"],
            )
            + _retained(totals["numbers"]["retained"]),
            "groups": in_key_order(groups),
        }


def _place(
    rows: Sequence[Row],
    group_by: list[str],
    first: int,
    metrics: Sequence[str],
    optional: str | None = None,
) -> tuple[dict[tuple[Any, ...], dict[str, Any]], dict[str, dict[str, int]]]:
    """Each row's counts (its columns from `first` on: the metrics in their order, then the
    optional one) under its group and its kind's name, a group's two kinds being two rows;
    and each kind's totals. A group without one of the kinds counts none of it. The optional
    metric appears only where it is counted."""
    names = (*metrics, optional) if optional else tuple(metrics)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    counted: dict[str, list[tuple[int, ...]]] = {name: [] for name in KIND_NAMES.values()}
    key_of = _key_getter(group_by)
    for r in rows:
        counts: tuple[int, ...] = r[first:]  # type: ignore[index]  # a record slices
        kind = KIND_NAMES[r["kind"]]
        counted[kind].append(counts)
        key = key_of(r)
        g = groups.get(key)
        if g is None:
            groups[key] = g = dict(zip(group_by, key, strict=True))
            g["numbers"] = g["handsets"] = None
        g[kind] = c = dict(zip(names, counts, strict=True))
        if optional and not c[optional]:
            del c[optional]
    for g in groups.values():
        for kind in KIND_NAMES.values():
            if g[kind] is None:
                g[kind] = _empty(metrics)
    totals = {}
    for kind, kind_rows in counted.items():
        sums = map(sum, zip(*kind_rows, strict=True)) if kind_rows else [0] * len(names)
        totals[kind] = t = dict(zip(names, sums, strict=True))
        if optional and not t[optional]:
            del t[optional]
    return groups, totals


def _money_totals(rows: Sequence[Row]) -> dict[str, int]:
    out = dict.fromkeys(MONEY_METRICS, 0)
    for r in rows:
        _add_money(out, r)
    return out


def _add_money(into: dict[str, int], r: Row) -> None:
    """Add one money counter row; what is still on hold follows from the other three."""
    into[_MONEY_KIND[r["kind"]]] += r["amount"]
    into["still_on_hold_paise"] = (
        into["put_on_hold_paise"] - into["released_paise"] - into["refunded_paise"]
    )


async def _by_operator(
    store: Store,
    args: tuple[Any, ...],
    group_by: list[str],
    start: date | None,
    end: date | None,
) -> dict[str, Any]:
    rows = await store.fetch("stats_orders", *args)
    with collector_paused():
        groups, totals = _place(rows, group_by, _ORDER_COUNTS, ORDER_STATES, "withdrawn")
        return {
            "from": start,
            "to": end,
            "group_by": group_by,
            "totals": totals,
            "note": "per operator, each order counts one target at that operator",
            "groups": in_key_order(groups),
        }


@contextmanager
def collector_paused() -> Iterator[None]:
    """Placing a report's groups makes a few dicts per group and frees none until the report
    is sent; the cyclic garbage collector, which they never need, would walk them again and
    again as they grow (5-20 % of the time of the largest reports at 10 M targets). Nothing
    awaits inside, so no other request runs while it is paused."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _retained(n: int) -> str:
    """Numbers whose subscribers re-verified are counted apart from the blocked ones."""
    if not n:
        return ""
    return f"; {n} number{'s' if n != 1 else ''} retained after re-verification"


def _key_getter(group_by: list[str]) -> Callable[[Row], tuple[Any, ...]]:
    """A stats row's group key: its columns for the dimensions asked, in their order."""
    columns = ["period" if d in PERIODS else d for d in group_by]
    if not columns:
        return lambda r: ()
    if len(columns) == 1:
        column = columns[0]
        return lambda r: (r[column],)
    return operator.itemgetter(*columns)


def _group(key: tuple[Any, ...], group_by: list[str]) -> dict[str, Any]:
    """A group with money and no targets: its targets' counts all zero."""
    g: dict[str, Any] = dict(zip(group_by, key, strict=True))
    for name in KIND_NAMES.values():
        g[name] = _empty(TARGET_METRICS)
    return g


def in_key_order(groups: dict[tuple[Any, ...], dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups by key, a missing value (None) first: the keys' own order, which for text
    and dates is their text's, unless a None meets a value."""
    try:
        keys = sorted(groups)
    except TypeError:
        keys = sorted(groups, key=lambda key: tuple("" if k is None else str(k) for k in key))
    return [groups[k] for k in keys]


def to_csv(report: dict[str, Any]) -> str:
    """One CSV row per group and kind (numbers, handsets, money), plus total rows."""
    dims = list(report["group_by"])
    out = io.StringIO()
    w = spreadsheet.Writer(out)
    metrics = list(report["totals"]["numbers"])
    w.writerow([*dims, "kind", *metrics, *MONEY_METRICS])
    blank_money = [None] * len(MONEY_METRICS)  # None: an empty cell, and not text to check
    blank_counts = [None] * len(metrics)
    for g in report["groups"]:
        key = [g.get(d, "") for d in dims]
        for name in KIND_NAMES.values():
            w.writerow([*key, name, *(g[name].get(m, 0) for m in metrics), *blank_money])
        if "money" in g:
            w.writerow([*key, "money", *blank_counts, *(g["money"][m] for m in MONEY_METRICS)])
    total = ["TOTAL"] + [""] * (len(dims) - 1) if dims else []
    for name in KIND_NAMES.values():
        w.writerow(
            [*total, name, *(report["totals"][name].get(m, 0) for m in metrics), *blank_money]
        )
    money = report["totals"]["money"]
    w.writerow([*total, "money", *blank_counts, *(money[m] for m in MONEY_METRICS)])
    return out.getvalue()


async def compact(store: Store) -> tuple[int, int]:
    """Fold counter deltas (one process at a time); returns (rows folded, rows kept)."""
    async with store.transaction() as tx:
        if not await tx.fetchval("counts_compact_lock"):
            return 0, 0
        row = await tx.fetchrow("counts_compact")
        money = await tx.fetchrow("money_counts_compact")
    assert row is not None and money is not None
    return int(row["folded"]) + int(money["folded"]), int(row["kept"]) + int(money["kept"])


Attention = Literal["overdue", "dead"]
_ATTENTION_QUERIES: dict[Attention, str] = {
    "overdue": "orders_overdue_list",
    "dead": "orders_dead_list",
}


async def operator_health(store: Store, principal: Principal) -> OperatorHealthList:
    """Per operator: breaker, backlog, failures and time to acknowledge (supervisor, admin)."""
    require(principal, "supervisor", "admin")
    items = []
    for r in await operators.per_operator(store, "operator_health"):
        settled = r["acked_24h"] + r["dead_24h"]
        items.append(
            OperatorHealth(
                code=r["code"],
                name=r["name"],
                active=r["active"],
                adapter=r["adapter_kind"],
                breaker_state=r["breaker_state"],
                breaker_failures=r["breaker_failures"],
                breaker_opened_at=r["breaker_opened_at"],
                rate_limit_per_s=r["rate_limit_per_s"],
                queued=r["queued"],
                in_flight=r["in_flight"],
                awaiting_ack=r["awaiting_ack"],
                overdue=r["overdue"],
                dead=r["dead"],
                acked_24h=r["acked_24h"],
                success_rate_24h=(r["succeeded_24h"] / settled) if settled else None,
                p50_ack_s_24h=r["p50_ack_s"],
                p95_ack_s_24h=r["p95_ack_s"],
            )
        )
    return OperatorHealthList(items=items)


async def attention(
    store: Store, principal: Principal, which: Attention, q: AttentionQuery
) -> AttentionPage:
    """A page of overdue or dead orders (supervisors: they are case data)."""
    require(principal, "supervisor")
    rows = await store.fetch(_ATTENTION_QUERIES[which], q.operator, q.after, q.limit + 1)
    items = [
        AttentionOrder(
            **order_doc(r),
            kind=r["kind"],
            value=r["value"],
            ack_due_at=r["ack_due_at"],
            overdue_at=r["overdue_at"],
        )
        for r in rows[: q.limit]
    ]
    next_after = items[-1].id if len(rows) > q.limit else None
    return AttentionPage(items=items, next_after=next_after)


CONFIGURATION_ENTITIES = ("operator", "token", "unit", "series", "escalation_endpoint")


async def audit_page(store: Store, principal: Principal, q: AuditQuery) -> AuditPage:
    """The audit log, oldest first by each entry's time (then id), with filters and a cursor:
    a supervisor reads it all, an admin only the entries about configuration (operators,
    tokens, units, series)."""
    require(principal, "supervisor", "admin")
    entities = list(CONFIGURATION_ENTITIES) if principal.role == "admin" else None
    rows = await store.fetch(
        "audit_page",
        q.action,
        q.entity_type,
        q.entity_id,
        q.actor,
        q.start,
        q.end,
        q.after,
        q.limit + 1,
        entities,
    )
    items = [AuditEntryOut(**dict(r)) for r in rows[: q.limit]]
    next_after = items[-1].id if len(rows) > q.limit else None
    return AuditPage(items=items, next_after=next_after)
