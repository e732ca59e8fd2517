"""The zone report: per unit, numbers and phone sets blocked and money held and refunded."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from jinja2 import Environment, select_autoescape

from service import spreadsheet
from service.auth import Principal, require
from service.case_models import ZoneReport, ZoneRow
from service.money import grouped, plain_rupees, rupees, summary
from service.store import Store

_BLOCKED = {"msisdn": "numbers_blocked", "imei": "phone_sets_blocked"}  # by target kind
_MONEY = {"hold": "put_on_hold_paise", "release": "released_paise", "refund": "refunded_paise"}
_FIGURES = (
    "numbers_blocked",
    "phone_sets_blocked",
    "put_on_hold_paise",
    "released_paise",
    "refunded_paise",
)


def _row(unit: str, name: str, kind: str, f: dict[str, int]) -> ZoneRow:
    on_hold = f["put_on_hold_paise"] - f["released_paise"] - f["refunded_paise"]
    return ZoneRow(
        unit=unit,
        name=name,
        kind=kind,
        **f,
        still_on_hold_paise=on_hold,
        summary=summary(
            f["numbers_blocked"],
            f["phone_sets_blocked"],
            f["put_on_hold_paise"],
            f["refunded_paise"],
        ),
    )


async def zone_report(
    store: Store, principal: Principal, *, start: date | None, end: date | None
) -> ZoneReport:
    """Every unit's figures for days [start, end) in the zone's time zone, and the totals."""
    require(principal, "supervisor")  # case figures: not an admin's (configuration only)
    units = await store.fetch("unit_list")
    figures = {u["code"]: dict.fromkeys(_FIGURES, 0) for u in units}
    args = (start, end, True, False, None, None, None)
    for r in await store.fetch("stats_targets", *args):  # a row per unit and kind
        if r["unit"] in figures:
            figures[r["unit"]][_BLOCKED[r["kind"]]] += r["blocked"]
    for r in await store.fetch("stats_money", *args):
        if r["unit"] in figures:
            figures[r["unit"]][_MONEY[r["kind"]]] += r["amount"]
    zone = await store.fetchval("report_zone_get")
    # districts first, in the order the zone lists them (the seed's order), then the station
    order = sorted(units, key=lambda u: (u["kind"] != "district", u["code"]))
    rows = [_row(u["code"], u["name"], u["kind"], figures[u["code"]]) for u in order]
    districts = {
        k: sum(figures[u["code"]][k] for u in units if u["kind"] == "district") for k in _FIGURES
    }
    total = {k: sum(f[k] for f in figures.values()) for k in _FIGURES}
    return ZoneReport(
        start=start,
        end=end,
        time_zone=zone,
        units=rows,
        districts=_row("districts", "District cyber cells", "districts", districts),
        total=_row("total", "Jammu zone", "total", total),
    )


CSV_HEADER = (
    "unit",
    "name",
    "numbers_blocked",
    "phone_sets_blocked",
    "put_on_hold_rs",
    "released_rs",
    "refunded_rs",
    "still_on_hold_rs",
)


def to_csv(report: ZoneReport) -> str:
    """One row per unit, then the districts' and the zone's totals; amounts in rupees."""
    out = io.StringIO()
    w = spreadsheet.Writer(out)
    w.writerow(CSV_HEADER)
    for r in [*report.units, report.districts, report.total]:
        w.writerow(
            [
                r.unit,
                r.name,
                r.numbers_blocked,
                r.phone_sets_blocked,
                plain_rupees(r.put_on_hold_paise),
                plain_rupees(r.released_paise),
                plain_rupees(r.refunded_paise),
                plain_rupees(r.still_on_hold_paise),
            ]
        )
    return out.getvalue()


_PAGE = """<!DOCTYPE html>
<html lang="en-IN">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: serif; margin: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #444; padding: 0.3em 0.6em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; }
@media print { body { margin: 0; } }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ period }} (days in {{ report.time_zone }})</p>
<p><strong>District cyber cells:</strong> {{ report.districts.summary }}.</p>
{% for r in report.units if r.kind == "zone" %}
<p><strong>{{ r.name }}:</strong> {{ r.summary }}.</p>
{% endfor %}
<table>
<thead><tr><th>Unit</th><th>Calling numbers blocked</th><th>Phone sets blocked</th>
<th>Put on hold or lien marked</th><th>Released</th><th>Refunded</th><th>Still on hold</th></tr>
</thead>
<tbody>
{% for r in rows %}
<tr{% if r.total %} class="total"{% endif %}><td>{{ r.name }}</td>
<td class="n">{{ r.numbers }}</td><td class="n">{{ r.handsets }}</td>
<td class="n">{{ r.held }}</td><td class="n">{{ r.released }}</td>
<td class="n">{{ r.refunded }}</td><td class="n">{{ r.on_hold }}</td></tr>
{% endfor %}
</tbody>
</table>
</body>
</html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(_PAGE)


def to_html(report: ZoneReport) -> str:
    """A printable page: the sentences, then the table (no script)."""
    rows: list[dict[str, Any]] = [
        {
            "name": r.name,
            "total": r.kind in ("districts", "total"),
            "numbers": grouped(r.numbers_blocked),
            "handsets": grouped(r.phone_sets_blocked),
            "held": rupees(r.put_on_hold_paise),
            "released": rupees(r.released_paise),
            "refunded": rupees(r.refunded_paise),
            "on_hold": rupees(r.still_on_hold_paise),
        }
        for r in [*report.units, report.districts, report.total]
    ]
    if report.start and report.end:
        period = f"From {report.start:%d %b %Y} to {report.end:%d %b %Y} (not included)"
    elif report.start:
        period = f"Since {report.start:%d %b %Y}"
    elif report.end:
        period = f"Before {report.end:%d %b %Y}"
    else:
        period = "Since records began"
    return _template.render(
        title="Jammu zone: cyber cells' report", report=report, rows=rows, period=period
    )
