"""Console sign-in sessions: a random id in an HttpOnly cookie, the token checked on every use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import structlog

from service.auth import Principal, TokenCache, authenticate, principal_of_row
from service.store import Store

log = structlog.get_logger()


@dataclass(frozen=True)
class Session:
    """A live console session: who signed in, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def open_session(
    store: Store, token: str, lifetime_s: float, cache: TokenCache | None = None
) -> tuple[str, Session]:
    """Check the token as the API does, then open a session; returns its id (for the cookie)."""
    principal = await authenticate(store, f"Bearer {token.strip()}", cache)
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    async with store.transaction() as tx:
        await tx.execute(
            "console_session_open", _digest(session_id), principal.token_id, csrf, lifetime_s
        )
    log.info("console.signed_in", token_id=principal.token_id, role=principal.role)
    return session_id, Session(principal, csrf)


async def session_of(store: Store, session_id: str | None) -> Session | None:
    """The session behind a cookie, while unexpired and its token unrevoked; else None."""
    if not session_id or len(session_id) > 128:
        return None
    row = await store.fetchrow("console_session_principal", _digest(session_id))
    if row is None:
        return None
    return Session(principal_of_row(row), row["csrf"])


async def close_session(store: Store, session_id: str) -> None:
    """Sign out: the session id is forgotten."""
    async with store.transaction() as tx:
        await tx.execute("console_session_close", _digest(session_id))
    log.info("console.signed_out")


def csrf_ok(session: Session, sent: str | None) -> bool:
    """True when a form's CSRF token is the session's."""
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())
