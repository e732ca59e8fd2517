"""The append-only, hash-chained audit log: recording and verifying."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from service.store import Store, Tx

GENESIS = bytes(32)


@dataclass(frozen=True)
class AuditEntry:
    """One action by a person or an operator."""

    actor: str
    role: str
    action: str
    entity_type: str
    entity_id: str
    details: dict[str, Any] = field(default_factory=dict)


def _fields(e: AuditEntry) -> dict[str, Any]:
    return {
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "details": e.details,
    }


def canonical(at: datetime, e: AuditEntry) -> bytes:
    """The canonical encoding hashed into the chain: sorted-key compact JSON."""
    doc = {"at": at.astimezone(UTC).isoformat(timespec="microseconds"), **_fields(e)}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev: bytes, encoded: bytes) -> bytes:
    """SHA-256 over the previous hash and the row's canonical encoding."""
    return hashlib.sha256(prev + encoded).digest()


def encode(entries: Sequence[AuditEntry]) -> str:
    """Entries as the JSON the database's audit_append function chains and stores."""
    now = datetime.now(UTC)
    rows = [{"at": now, **_fields(e), "canonical": canonical(now, e).decode()} for e in entries]
    return orjson.dumps(rows).decode()


async def record(tx: Tx, entries: Sequence[AuditEntry]) -> None:
    """Append entries in this transaction; the chain's head stays locked until it commits."""
    if entries:
        await tx.execute("audit_append", encode(entries))


async def record_and_commit(tx: Tx, entries: Sequence[AuditEntry]) -> None:
    """Append entries and commit in one round trip: the transaction's last step."""
    if entries:
        await tx.commit_with("audit_append", encode(entries))


@dataclass(frozen=True)
class VerifyResult:
    """What `verify` found: rows checked and the first broken row, if any."""

    checked: int
    broken_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the whole chain holds."""
        return self.broken_id is None


async def verify(store: Store, page: int = 5000) -> VerifyResult:
    """Recompute every chain from its first row and name the first broken row.

    The log is 16 chains, each linear in id order; one pass in id order follows them all.
    """
    last: dict[int, bytes] = {}
    last_id = 0
    checked = 0
    while True:
        rows = await store.fetch("audit_all", last_id, page)
        if not rows:
            return VerifyResult(checked)
        for r in rows:
            entry = AuditEntry(
                r["actor"], r["role"], r["action"], r["entity_type"], r["entity_id"], r["details"]
            )
            prev = last.get(r["chain"], GENESIS)
            if bytes(r["prev_hash"]) != prev:
                return VerifyResult(
                    checked, r["id"], "prev_hash does not match the chain's previous row"
                )
            if chain_hash(prev, canonical(r["at"], entry)) != bytes(r["hash"]):
                return VerifyResult(checked, r["id"], "hash does not match the row's contents")
            last[r["chain"]] = bytes(r["hash"])
            last_id = r["id"]
            checked += 1
