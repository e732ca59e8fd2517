"""Reports in the zone's words: the zone report and operators' service level."""

from __future__ import annotations

from aiohttp import web

from service import sla, zone_report
from service.case_models import SlaQuery, SlaReport, ZoneQuery, ZoneReport
from service.http.context import READS, principal_of
from service.http.exports import csv_text
from service.http.openapi import Operation
from service.http.problems import json_response, query_model

routes = web.RouteTableDef()
_ERR = (403, 422)
OPERATIONS = [
    Operation(
        "GET",
        "/v1/reports/zone",
        "Per unit: numbers and phone sets blocked, money put on hold and refunded",
        "supervision",
        response_model=ZoneReport,
        query_model=ZoneQuery,
        errors=_ERR,
    ),
    Operation(
        "GET",
        "/v1/reports/zone.csv",
        "The zone report as CSV (amounts in rupees)",
        "supervision",
        query_model=ZoneQuery,
        errors=_ERR,
        content_type="text/csv",
    ),
    Operation(
        "GET",
        "/v1/reports/zone.html",
        "The zone report as a printable page",
        "supervision",
        query_model=ZoneQuery,
        errors=_ERR,
        content_type="text/html",
    ),
    Operation(
        "GET",
        "/v1/sla",
        "Operators' acknowledgements against their deadlines",
        "supervision",
        response_model=SlaReport,
        query_model=SlaQuery,
        errors=_ERR,
    ),
    Operation(
        "GET",
        "/v1/sla.csv",
        "Operators' service level as CSV",
        "supervision",
        query_model=SlaQuery,
        errors=_ERR,
        content_type="text/csv",
    ),
]


async def _zone(request: web.Request) -> ZoneReport:
    principal = await principal_of(request)
    q = query_model(request, ZoneQuery)
    return await zone_report.zone_report(request.app[READS], principal, start=q.start, end=q.end)


@routes.get("/v1/reports/zone")
async def get_zone(request: web.Request) -> web.Response:
    """The zone report as JSON."""
    report = await _zone(request)
    return json_response(report.model_dump(mode="json", by_alias=True))


@routes.get("/v1/reports/zone.csv")
async def get_zone_csv(request: web.Request) -> web.Response:
    """The zone report as CSV."""
    return csv_text(zone_report.to_csv(await _zone(request)), "zone-report.csv")


@routes.get("/v1/reports/zone.html")
async def get_zone_html(request: web.Request) -> web.Response:
    """The zone report as a page to print."""
    report = await _zone(request)
    return web.Response(
        text=zone_report.to_html(report),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


async def _sla(request: web.Request) -> SlaReport:
    principal = await principal_of(request)
    q = query_model(request, SlaQuery)
    return await sla.sla_report(
        request.app[READS],
        principal,
        start=q.start,
        end=q.end,
        group_by=sla.parse_group_by(q.group_by),
    )


@routes.get("/v1/sla")
async def get_sla(request: web.Request) -> web.Response:
    """The SLA report as JSON."""
    report = await _sla(request)
    return json_response(report.model_dump(mode="json", by_alias=True))


@routes.get("/v1/sla.csv")
async def get_sla_csv(request: web.Request) -> web.Response:
    """The SLA report as CSV."""
    return csv_text(sla.to_csv(await _sla(request)), "sla.csv")
