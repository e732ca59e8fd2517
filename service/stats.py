"""Blocking counts for supervisors, read from counters kept in the same transactions."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from typing import Any

from service.auth import Principal, require
from service.errors import Invalid
from service.store import Row, Store

DIMENSIONS = ("unit", "category", "operator", "kind", "day", "week", "month")
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
KIND_NAMES = {"msisdn": "numbers", "imei": "handsets"}


def parse_group_by(raw: str | None) -> list[str]:
    """`unit,day` → ['unit', 'day']; at most one of day/week/month."""
    dims = [d.strip() for d in (raw or "").split(",") if d.strip()]
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad:
        raise Invalid(
            f"unknown group_by {bad}; use any of {', '.join(DIMENSIONS)}",
            [{"field": "group_by", "message": f"unknown: {', '.join(bad)}"}],
        )
    if sum(d in ("day", "week", "month") for d in dims) > 1:
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
) -> dict[str, Any]:
    """Distinct numbers and handsets by state, per group and in total.

    A target counts under the unit and category of the request that first named it, and
    under the day it was first filed; `*_in_period` counts state changes inside the period.
    """
    require(principal, "supervisor", "admin", "investigator")
    if principal.role == "investigator":
        unit = principal.unit
    period = next((d for d in group_by if d in ("day", "week", "month")), None)
    args = (start, end, "unit" in group_by, "category" in group_by, period, unit)
    if "operator" in group_by:
        return await _by_operator(store, args, group_by, start, end)
    state_rows = await store.fetch("stats_targets", *args)
    event_rows = await store.fetch("stats_events", *args)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    totals = {
        name: {**_empty(TARGET_STATES), "blocked_in_period": 0, "unblocked_in_period": 0}
        for name in KIND_NAMES.values()
    }
    for rows, suffix in ((state_rows, ""), (event_rows, "_in_period")):
        for r in rows:
            key = _key(r, group_by)
            g = groups.setdefault(key, _group(key, group_by))
            name = KIND_NAMES[r["kind"]]
            metric = r["state"] + suffix
            if suffix and metric not in ("blocked_in_period", "unblocked_in_period"):
                continue
            g[name][metric] = g[name].get(metric, 0) + r["n"]
            totals[name][metric] = totals[name].get(metric, 0) + r["n"]
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "unit": unit,
        "totals": totals,
        "summary": f"{totals['numbers']['blocked']} calling numbers and "
        f"{totals['handsets']['blocked']} phone sets blocked"
        + _retained(totals["numbers"]["retained"]),
        "groups": [groups[k] for k in sorted(groups, key=_sort_key)],
    }


async def _by_operator(
    store: Store,
    args: tuple[Any, ...],
    group_by: list[str],
    start: date | None,
    end: date | None,
) -> dict[str, Any]:
    rows = await store.fetch("stats_orders", *args)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    totals = {name: _empty(ORDER_STATES) for name in KIND_NAMES.values()}
    for r in rows:
        key = _key(r, group_by)
        g = groups.setdefault(key, _group(key, group_by, ORDER_STATES))
        name = KIND_NAMES[r["kind"]]
        g[name][r["state"]] = g[name].get(r["state"], 0) + r["n"]
        totals[name][r["state"]] = totals[name].get(r["state"], 0) + r["n"]
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "totals": totals,
        "note": "per operator, each order counts one target at that operator",
        "groups": [groups[k] for k in sorted(groups, key=_sort_key)],
    }


def _retained(n: int) -> str:
    """Numbers whose subscribers re-verified are counted apart from the blocked ones."""
    if not n:
        return ""
    return f"; {n} number{'s' if n != 1 else ''} retained after re-verification"


def _key(r: Row, group_by: list[str]) -> tuple[Any, ...]:
    out = []
    for d in group_by:
        if d in ("day", "week", "month"):
            out.append(r["period"])
        elif d == "kind":
            out.append(r["kind"])
        else:
            out.append(r[d])
    return tuple(out)


def _group(
    key: tuple[Any, ...], group_by: list[str], states: Sequence[str] = TARGET_STATES
) -> dict[str, Any]:
    g: dict[str, Any] = dict(zip(group_by, key, strict=True))
    extra = {} if states is ORDER_STATES else {"blocked_in_period": 0, "unblocked_in_period": 0}
    for name in KIND_NAMES.values():
        g[name] = {**_empty(states), **extra}
    return g


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if k is None else str(k) for k in key)


def to_csv(report: dict[str, Any]) -> str:
    """One CSV row per group and kind, plus total rows."""
    dims = list(report["group_by"])
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    metrics = list(report["totals"]["numbers"])
    w.writerow([*dims, "kind", *metrics])
    for g in report["groups"]:
        for name in KIND_NAMES.values():
            w.writerow([*(g.get(d, "") for d in dims), name, *(g[name].get(m, 0) for m in metrics)])
    for name in KIND_NAMES.values():
        w.writerow(
            [
                *(["TOTAL"] + [""] * (len(dims) - 1) if dims else []),
                name,
                *(report["totals"][name].get(m, 0) for m in metrics),
            ]
        )
    return out.getvalue()


async def compact(store: Store) -> tuple[int, int]:
    """Fold counter deltas (one process at a time); returns (rows folded, rows kept)."""
    async with store.transaction() as tx:
        if not await tx.fetchval("counts_compact_lock"):
            return 0, 0
        row = await tx.fetchrow("counts_compact")
    assert row is not None
    return int(row["folded"]), int(row["kept"])
