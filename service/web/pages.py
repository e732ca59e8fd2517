"""What every console page shares: the session from the cookie, CSRF on forms, rendering, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import structlog
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from service.errors import DomainError
from service.http.context import SETTINGS, STORE
from service.sessions import Session, csrf_ok, session_of

log = structlog.get_logger()
COOKIE = "fb_session"
Form = MultiDictProxy[Any]
Page = Callable[[web.Request, Session, Form], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_EMPTY: Form = MultiDictProxy(MultiDict())


def page(handler: Page) -> Handler:
    """A page that needs a signed-in session; forms must carry the session's CSRF token."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        session = await session_of(request.app[STORE], request.cookies.get(COOKIE))
        if session is None:
            return _to_signin(request)
        form = _EMPTY
        if request.method == "POST":
            form = await request.post()
            sent = form.get("csrf")
            if not csrf_ok(session, sent if isinstance(sent, str) else None):
                log.warning("console.csrf_refused", path=request.path)
                return error_page(request, session, 403, "This form has expired; reload the page.")
        try:
            response = await handler(request, session, form)
        except DomainError as exc:
            return error_page(request, session, exc.status, exc.detail, exc.errors)
        response.headers.update(SECURITY_HEADERS)
        return response

    wrapped.__doc__ = handler.__doc__
    return wrapped


def see_other(location: str) -> web.Response:
    """A 303 to another page (after a form, or to sign in)."""
    return web.Response(status=303, headers={"Location": location})


def _to_signin(request: web.Request) -> web.StreamResponse:
    target = f"/signin?next={quote(request.path_qs, safe='')}"
    if request.headers.get("HX-Request"):
        return web.Response(status=401, headers={"HX-Redirect": target})
    return see_other(target if request.method == "GET" else "/signin")


def render(
    request: web.Request,
    session: Session | None,
    template: str,
    context: Mapping[str, Any],
    status: int = 200,
) -> web.Response:
    """A template rendered with the session's principal and CSRF token."""
    ctx = {"me": session.principal if session else None, "csrf": session.csrf if session else ""}
    ctx.update(context)
    response = aiohttp_jinja2.render_template(template, request, ctx, status=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(
    request: web.Request,
    session: Session | None,
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
) -> web.Response:
    """The error, in the page's own words."""
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Check the input"}
    return render(
        request,
        session,
        "error.html",
        {"title": titles.get(status, "Something went wrong"), "detail": detail, "errors": errors},
        status=status if status >= 400 else 400,
    )


def local_time(value: datetime | None, zone: str) -> str:
    """A time in the zone's time zone, to the minute, with the zone's abbreviation."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone)).strftime("%d %b %Y %H:%M:%S %Z")


def indian_number(value: int | float | None) -> str:
    """1234567 → 12,34,567 (Indian digit grouping)."""
    if value is None:
        return "—"
    n = int(value)
    sign, digits = ("-", str(-n)) if n < 0 else ("", str(n))
    if len(digits) <= 3:
        return sign + digits
    head, tail = digits[:-3], digits[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return sign + ",".join([*groups, tail])


def setting_zone(request: web.Request) -> str:
    """The configured time zone."""
    return request.app[SETTINGS].report_tz
