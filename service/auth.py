"""Tokens and principals: who is calling, and what their role lets them do."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from service import audit
from service.errors import Forbidden, Invalid, NotFound, Unauthorized
from service.models import Role
from service.store import IntegrityConflict, Store


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


async def authenticate(store: Store, authorization: str | None) -> Principal:
    """The principal behind an `Authorization: Bearer` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    row = await store.fetchrow("token_by_hash", token_hash(token.strip()))
    if row is None:
        raise Unauthorized("unknown or revoked token")
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
) -> tuple[int, str]:
    """Create a token; returns its id and the token itself (shown once)."""
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
            row = await tx.fetchrow("token_insert", name, role, unit, operator, token_hash(token))
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
                        {"name": name, "role": role, "unit": unit, "operator": operator},
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
