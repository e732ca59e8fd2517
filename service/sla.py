"""Operators' service level: acknowledgements against their deadlines, per operator and period."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

from service import operators, spreadsheet
from service.auth import Principal, require
from service.case_models import SlaReport, SlaRow
from service.errors import Invalid
from service.store import Row, Store

PERIODS = ("day", "week", "month")


def parse_group_by(raw: str | None) -> list[str]:
    """'operator,month' → ['operator', 'month']; operator is always there."""
    dims = [d.strip() for d in (raw or "").split(",") if d.strip()]
    bad = [d for d in dims if d != "operator" and d not in PERIODS]
    if bad:
        raise Invalid(
            f"unknown group_by {bad}; use operator and one of {', '.join(PERIODS)}",
            [{"field": "group_by", "message": f"unknown: {', '.join(bad)}"}],
        )
    periods = [d for d in dims if d in PERIODS]
    if len(set(periods)) > 1:
        raise Invalid(
            "group_by takes one of day, week, month",
            [{"field": "group_by", "message": "pick one period"}],
        )
    return ["operator", *dict.fromkeys(periods)]


async def sla_report(
    store: Store,
    principal: Principal,
    *,
    start: date | None,
    end: date | None,
    group_by: list[str],
) -> SlaReport:
    """Orders due, acknowledged in time, breached, compliance and time to acknowledge."""
    require(principal, "supervisor")  # case figures: not an admin's (configuration only)
    period = next((d for d in group_by if d in PERIODS), None)
    rows = await operators.per_operator(store, "sla_orders", start, end, period)
    zone = await store.fetchval("report_zone_get")
    return SlaReport(
        start=start,
        end=end,
        time_zone=zone,
        group_by=group_by,
        rows=[_row(operator, p, counts) for (operator, p), counts in _grouped(rows).items()],
    )


# sql/0018: ack_bucket(s) = floor(20 × log10(s)) + 60, so bucket b holds [10^((b-60)/20), ...).
BUCKETS_PER_DECADE = 20
BUCKET_OF_ONE_SECOND = 60


def _grouped(rows: Sequence[Row]) -> dict[tuple[str, date | None], list[Row]]:
    """The counter rows of each (operator, period), in the order the query gave them."""
    out: dict[tuple[str, date | None], list[Row]] = {}
    for r in rows:
        out.setdefault((r["operator"], r["period"]), []).append(r)
    return out


def _row(operator: str, period: date | None, counts: Sequence[Row]) -> SlaRow:
    due = sum(r["n"] for r in counts)
    in_time = sum(r["n"] for r in counts if r["outcome"] == "in_time")
    hist: dict[int, int] = {}
    for r in counts:
        if r["outcome"] in ("in_time", "late"):
            hist[r["bucket"]] = hist.get(r["bucket"], 0) + r["n"]
    return SlaRow(
        operator=operator,
        period=period,
        due=due,
        acknowledged_in_time=in_time,
        breached=due - in_time,
        compliance_pct=round(100 * in_time / due, 2) if due else None,
        p50_ack_s=_seconds(quantile(hist, 0.5)),
        p95_ack_s=_seconds(quantile(hist, 0.95)),
    )


def quantile(hist: dict[int, int], q: float) -> float | None:
    """The q-quantile of times counted in log buckets, interpolated geometrically inside the
    bucket it falls in (within 6% of the exact value with 20 buckets per decade)."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(hist):
        n = hist[bucket]
        if n > 0 and seen + n >= rank:
            fraction = (rank - seen) / n
            return float(10 ** ((bucket - BUCKET_OF_ONE_SECOND + fraction) / BUCKETS_PER_DECADE))
        seen += n
    return None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def to_csv(report: SlaReport) -> str:
    """One row per operator (and period)."""
    out = io.StringIO()
    w = spreadsheet.Writer(out)
    fields = list(SlaRow.model_fields)
    w.writerow(fields)
    for r in report.rows:
        doc = r.model_dump(mode="json")
        w.writerow(["" if doc[f] is None else doc[f] for f in fields])
    return out.getvalue()
