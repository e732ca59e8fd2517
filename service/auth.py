"""Tokens and principals: who is calling, and what their role lets them do."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass

import structlog

from service import audit
from service.authority import parse_rank
from service.errors import Forbidden, Invalid, NotFound, Unauthorized
from service.models import Role
from service.store import IntegrityConflict, Listener, Row, Store, StoreError

log = structlog.get_logger()
# a trigger on tokens (sql/0010) notifies it in every transaction that changes a token
TOKENS_CHANNEL = "fraudblock_tokens"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    token_id: int
    name: str
    role: Role
    unit: str | None = None
    operator: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.token_id}:{self.name}"


SYSTEM_NAME = "system"


def token_hash(token: str) -> bytes:
    """Tokens are stored only as their SHA-256."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A fresh random bearer token."""
    return "fb_" + secrets.token_urlsafe(32)


class TokenCache:
    """The principals of tokens seen lately, so a request need not read its token's row.

    Trusted only while this process LISTENs on token changes: any change to a token (revoked,
    deleted, re-scoped, by any path) notifies every process in its own commit, and the
    notification empties the cache. The LISTEN connection is asked a query every `check_s`
    and must answer within `check_s`, so a dead or half-open one is noticed within two
    intervals. While the LISTEN is down, the cache is empty and unused; entries also expire
    after `ttl_s`. A lookup that raced with a revocation is not remembered.
    """

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._live = False
        self.generation = 0  # moves on every revocation and every lost LISTEN

    @property
    def live(self) -> bool:
        """True while the LISTEN on revocations is up, so remembered tokens can be trusted."""
        return self._live

    def get(self, digest: bytes) -> Principal | None:
        """The remembered principal, while it can be trusted."""
        entry = self._entries.get(digest) if self._live else None
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, digest: bytes, principal: Principal, generation: int) -> None:
        """Remember a principal read at `generation`, unless a revocation came since."""
        if not self._live or generation != self.generation:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[digest] = (principal, time.monotonic() + self._ttl_s)

    def forget(self, _payload: str = "") -> None:
        """Drop everything (a token was revoked somewhere)."""
        self.generation += 1
        self._entries.clear()

    async def keep_listening(self, store: Store, stop: asyncio.Event, check_s: float = 1.0) -> None:
        """LISTEN for token changes until `stop`; while the LISTEN is down, the cache is off."""
        listener: Listener | None = None
        try:
            while not stop.is_set():
                if listener is not None and not await listener.ping(check_s):
                    log.warning("auth.token_listen_lost")
                if listener is None or not listener.alive:
                    self._live = False
                    self.forget()
                    if listener is not None:
                        await listener.close()
                        listener = None
                    try:
                        listener = await store.listen(TOKENS_CHANNEL, self.forget)
                        self._live = True
                    except StoreError as exc:
                        log.warning("auth.token_listen_failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), check_s)
        finally:
            self._live = False
            self.forget()
            if listener is not None:
                await listener.close()


async def authenticate(
    store: Store, authorization: str | None, cache: TokenCache | None = None
) -> Principal:
    """The principal behind an `Authorization: Bearer` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    digest = token_hash(token.strip())
    if cache is not None and (known := cache.get(digest)) is not None:
        return known
    generation = cache.generation if cache is not None else 0
    row = await store.fetchrow("token_by_hash", digest)
    if row is None:
        raise Unauthorized("unknown or revoked token")
    principal = principal_of_row(row)
    if cache is not None:
        cache.put(digest, principal, generation)
    return principal


def principal_of_row(row: Row) -> Principal:
    """The principal of a live token's row (id, name, role, unit_code, operator_code)."""
    return Principal(row["id"], row["name"], row["role"], row["unit_code"], row["operator_code"])


def require(principal: Principal, *roles: Role) -> None:
    """Refuse callers whose role is not among `roles`."""
    if principal.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}; the token is {principal.role}")


async def create_token(
    store: Store,
    *,
    role: Role,
    name: str,
    unit: str | None = None,
    operator: str | None = None,
    actor: str = SYSTEM_NAME,
    officer: str | None = None,
    rank: str | None = None,
) -> tuple[int, str]:
    """Create a token; returns its id and the token itself (shown once). A person's token may
    name its officer and rank: orders they authorise carry them (service.authority)."""
    try:
        officer_rank = None if rank is None else parse_rank(rank)
    except ValueError as exc:
        raise Invalid(str(exc), [{"field": "rank"}]) from None
    if officer is not None and not officer.strip():
        raise Invalid("--officer must not be empty", [{"field": "officer"}])
    if role == "operator" and (officer or rank):
        raise Invalid("operator tokens name no police officer", [{"field": "officer"}])
    if role == "investigator" and not unit:
        raise Invalid("an investigator token needs --unit", [{"field": "unit"}])
    if role == "operator" and not operator:
        raise Invalid("an operator token needs --operator", [{"field": "operator"}])
    if role != "operator" and operator:
        raise Invalid("only operator tokens name an operator", [{"field": "operator"}])
    if role in ("operator", "admin") and unit:
        raise Invalid(f"{role} tokens are not scoped to a unit", [{"field": "unit"}])
    token = new_token()
    try:
        async with store.transaction() as tx:
            row = await tx.fetchrow(
                "token_insert",
                name,
                role,
                unit,
                operator,
                token_hash(token),
                officer.strip() if officer else None,
                officer_rank,
            )
            assert row is not None
            await audit.record(
                tx,
                [
                    audit.AuditEntry(
                        actor,
                        "admin",
                        "token.created",
                        "token",
                        str(row["id"]),
                        {
                            "name": name,
                            "role": role,
                            "unit": unit,
                            "operator": operator,
                            **(
                                {"officer": officer, "rank": officer_rank}
                                if officer or rank
                                else {}
                            ),
                        },
                    )
                ],
            )
    except IntegrityConflict:
        raise Invalid(
            f"no such {'unit' if unit else 'operator'}: {unit or operator}",
            [{"field": "unit" if unit else "operator"}],
        ) from None
    return row["id"], token


async def revoke_token(store: Store, token_id: int, actor: str = SYSTEM_NAME) -> None:
    """Revoke a token; later calls with it get 401."""
    async with store.transaction() as tx:
        row = await tx.fetchrow("token_revoke", token_id)
        if row is None:
            raise NotFound(f"no active token with id {token_id}")
        await audit.record(
            tx,
            [
                audit.AuditEntry(
                    actor, "admin", "token.revoked", "token", str(token_id), {"name": row["name"]}
                )
            ],
        )
