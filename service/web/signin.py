"""Signing in with a token, signing out, and the landing page of each role."""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from service.errors import Unauthorized
from service.http.context import SETTINGS, STORE, TOKENS
from service.sessions import Session, close_session, open_session, session_of
from service.web.pages import COOKIE, Form, page, render, see_other

routes = web.RouteTableDef()
SIGNIN_COOKIE = "fb_signin"  # a pre-session CSRF token: a form elsewhere cannot sign you in
HOME = {
    "investigator": "/requests",
    "supervisor": "/dashboard",
    "admin": "/admin/tokens",
    "operator": "/orders",
}


def _safe_next(raw: str | None, default: str) -> str:
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return default


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="Strict",
        secure=request.app[SETTINGS].console_secure_cookie,
        path="/",
    )


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    """Each role lands on its own page; strangers on the sign-in form."""
    session = await session_of(request.app[STORE], request.cookies.get(COOKIE))
    return see_other("/signin" if session is None else HOME[session.principal.role])


@routes.get("/signin")
async def signin_form(request: web.Request) -> web.StreamResponse:
    """The sign-in form."""
    return _form(request, None, 200)


def _form(request: web.Request, error: str | None, status: int) -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        None,
        "signin.html",
        {"nonce": nonce, "error": error, "next": _safe_next(request.query.get("next"), "")},
        status=status,
    )
    _cookie(response, request, SIGNIN_COOKIE, nonce)
    return response


@routes.post("/signin")
async def signin(request: web.Request) -> web.StreamResponse:
    """Check the token; open a session held in an HttpOnly, SameSite=Strict cookie."""
    form = await request.post()
    nonce, token = form.get("nonce"), form.get("token")
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not isinstance(nonce, str) or not expected or not hmac.compare_digest(nonce, expected):
        return _form(request, "The sign-in form expired; please try again.", 403)
    if not isinstance(token, str) or not token.strip():
        return _form(request, "Enter your token.", 422)
    try:
        session_id, session = await open_session(
            request.app[STORE],
            token,
            request.app[SETTINGS].console_session_s,
            request.app[TOKENS],
        )
    except Unauthorized:
        return _form(request, "That token is unknown or revoked.", 401)
    nxt = form.get("next")
    target = _safe_next(nxt if isinstance(nxt, str) else None, HOME[session.principal.role])
    response = see_other(target)
    _cookie(response, request, COOKIE, session_id)
    response.del_cookie(SIGNIN_COOKIE, path="/")
    return response


@routes.post("/signout")
@page
async def signout(request: web.Request, session: Session, form: Form) -> web.StreamResponse:
    """End the session."""
    await close_session(request.app[STORE], request.cookies[COOKIE])
    response = see_other("/signin")
    response.del_cookie(COOKIE, path="/")
    return response
