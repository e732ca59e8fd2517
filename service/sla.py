"""Operators' service level: acknowledgements against their deadlines, per operator and period."""

from __future__ import annotations

import io
from datetime import date

from service import spreadsheet
from service.auth import Principal, require
from service.case_models import SlaReport, SlaRow
from service.errors import Invalid
from service.store import Store

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
    rows = await store.fetch("sla_orders", start, end, period)
    zone = await store.fetchval("report_zone_get")
    return SlaReport(
        start=start,
        end=end,
        time_zone=zone,
        group_by=group_by,
        rows=[
            SlaRow(
                operator=r["operator"],
                period=r["period"],
                due=r["due"],
                acknowledged_in_time=r["in_time"],
                breached=r["breached"],
                compliance_pct=round(100 * r["in_time"] / r["due"], 2) if r["due"] else None,
                p50_ack_s=_seconds(r["p50_ack_s"]),
                p95_ack_s=_seconds(r["p95_ack_s"]),
            )
            for r in rows
        ],
    )


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
