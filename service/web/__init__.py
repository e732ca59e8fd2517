"""The web console served at `/`, and the Prometheus metrics at `/metrics`."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from service.http.context import SETTINGS
from service.web import (
    admin_pages,
    dashboard,
    metrics,
    operator_pages,
    reports_pages,
    requests_pages,
    signin,
)
from service.web.pages import indian_number, local_time

STATIC = Path(__file__).parent / "static"
PAGES = (signin, requests_pages, dashboard, reports_pages, operator_pages, admin_pages)


def setup(app: web.Application) -> None:
    """Templates, static files, pages and metrics on the service's own app."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("service.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    zone = app[SETTINGS].report_tz
    ZoneInfo(zone)  # an unknown zone stops start-up, not the first page
    env.filters["when"] = lambda value: local_time(value, zone)
    env.filters["indian"] = indian_number
    env.globals["zone"] = zone
    for module in PAGES:
        app.router.add_routes(module.routes)
    app.router.add_static("/static", STATIC, name="static", append_version=False)
    app[metrics.METRICS] = metrics.Metrics()
    app.middlewares.insert(0, metrics.measure)  # outermost: it sees the final status
    app.router.add_get("/metrics", metrics.scrape)
