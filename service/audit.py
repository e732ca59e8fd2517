"""The append-only, hash-chained audit log: recording and verifying."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from service.store import Row, Store, Tx

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
    return _canonical(_at_text(at), _fields(e))


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(at: str, fields: dict[str, Any]) -> bytes:
    return orjson.dumps({"at": at, **fields}, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev: bytes, encoded: bytes) -> bytes:
    """SHA-256 over the previous hash and the row's canonical encoding."""
    return hashlib.sha256(prev + encoded).digest()


def encode(entries: Sequence[AuditEntry]) -> str:
    """Entries as the JSON the database's audit_append function chains and stores."""
    now = datetime.now(UTC)
    at = _at_text(now)
    rows = []
    for e in entries:
        fields = _fields(e)
        rows.append({"at": now, **fields, "canonical": _canonical(at, fields).decode()})
    return orjson.dumps(rows).decode()


async def record(tx: Tx, entries: Sequence[AuditEntry]) -> None:
    """Append entries in this transaction; the chain's head stays locked until it commits."""
    if entries:
        await tx.execute("audit_append", encode(entries))


async def record_and_commit(tx: Tx, entries: Sequence[AuditEntry]) -> None:
    """Append entries and commit, with the transaction's deferred writes, in one round trip:
    the transaction's last step."""
    if entries:
        tx.defer("audit_append", encode(entries))
    await tx.commit()


MAX_BREAKS = 100  # problems listed in a VerifyResult; the rest are only counted


@dataclass(frozen=True)
class Break:
    """One place where a chain does not hold: the chain, the row (or the row its head names)
    and what is wrong."""

    chain: int
    row_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"row {self.row_id}" if self.row_id is not None else "head"
        return f"chain {self.chain}, {where}: {self.problem}"


@dataclass(frozen=True)
class VerifyResult:
    """What `verify` found in one snapshot: rows and chains checked, and every break."""

    checked: int
    chains: int = 0
    breaks: tuple[Break, ...] = ()
    more: int = 0  # breaks found beyond the MAX_BREAKS listed

    @property
    def ok(self) -> bool:
        """True when every chain holds from its first row to its head."""
        return not self.breaks

    @property
    def broken_id(self) -> int | None:
        """The row of the first break, if any."""
        return self.breaks[0].row_id if self.breaks else None

    @property
    def problem(self) -> str | None:
        """The first break, described."""
        return str(self.breaks[0]) if self.breaks else None


@dataclass
class _Link:
    """A row's id and stored hash; id None stands for the start of a chain."""

    id: int | None = None
    hash: bytes = GENESIS


@dataclass
class _Chain:
    """What the pass has seen of one chain so far."""

    head_id: int | None  # None: the chain has no head row
    head_hash: bytes
    last: _Link = field(default_factory=_Link)
    before: _Link | None = None  # the row before `last`, once there is one
    head_row_hash: bytes | None = None  # the stored hash of the row the head names
    past_head: int | None = None  # the first row with an id beyond the head's


class _Findings:
    """Breaks in the order found, the first MAX_BREAKS kept."""

    def __init__(self) -> None:
        self.breaks: list[Break] = []
        self.count = 0

    def add(self, chain: int, row_id: int | None, problem: str) -> None:
        self.count += 1
        if len(self.breaks) < MAX_BREAKS:
            self.breaks.append(Break(chain, row_id, problem))


def _check_row(c: _Chain, k: int, r: Row, found: _Findings) -> None:
    """Check one row against its chain's previous row and its own contents."""
    rid: int = r["id"]
    prev, stored = bytes(r["prev_hash"]), bytes(r["hash"])
    if prev != c.last.hash:
        if c.last.id is not None and c.before is not None and prev == c.before.hash:
            # this row links over the previous one: that one was slipped in between
            to = f"row {c.before.id}" if c.before.id is not None else "the chain's start"
            found.add(k, c.last.id, f"not part of the chain: the next row, {rid}, links to {to}")
        elif c.last.id is None:
            found.add(k, rid, "prev_hash is not the chain's start: its first row(s) were removed")
        else:
            found.add(
                k,
                rid,
                f"prev_hash does not match row {c.last.id}, the chain's previous row: a row "
                f"between them was removed, or row {c.last.id} was rewritten",
            )
    entry = AuditEntry(
        r["actor"], r["role"], r["action"], r["entity_type"], r["entity_id"], r["details"]
    )
    if chain_hash(prev, canonical(r["at"], entry)) != stored:
        found.add(k, rid, "hash does not match the row's contents: the row was altered")
    if c.head_id is not None:
        if rid == c.head_id:
            c.head_row_hash = stored
        elif rid > c.head_id and c.past_head is None:
            c.past_head = rid
    c.before, c.last = c.last, _Link(rid, stored)


def _check_head(c: _Chain, k: int, found: _Findings) -> None:
    """Check that the chain ends exactly at the row its head names, with that row's hash."""
    if c.head_id is None:
        return
    ends = f"the chain ends at row {c.last.id}" if c.last.id is not None else "it has no rows"
    if c.head_id == 0:
        if c.head_hash != GENESIS:
            found.add(k, None, "the head names no row but holds a hash other than the start's")
    elif c.head_row_hash is None:
        found.add(
            k,
            c.head_id,
            f"the head names row {c.head_id} as the chain's last, but {ends}: "
            f"its newest row(s) were removed",
        )
    elif c.head_row_hash != c.head_hash:
        found.add(
            k,
            c.head_id,
            f"the head's hash does not match row {c.head_id}, the row it names: "
            f"the row was rewritten or the head was changed",
        )
    if c.past_head is not None:
        found.add(
            k,
            c.past_head,
            f"comes after row {c.head_id}, the chain's head: it was added without "
            f"moving the head (inserted outside audit_append)",
        )


async def verify(store: Store, page: int = 5000) -> VerifyResult:
    """Check every chain from its first row to its head, in one snapshot, and list the breaks.

    The log is 16 chains, each linear in id order; one pass in id order follows them all. Rows
    and heads are read in one REPEATABLE READ READ ONLY transaction: a writer appends its rows
    and moves its head in one transaction, so the snapshot never shows half an append, however
    many pages of `page` rows the pass reads. Each row is checked against its own stored
    prev_hash and against its predecessor, so one tampered place is reported once and the rows
    after it are still checked.
    """
    found = _Findings()
    checked = 0
    async with store.transaction() as tx:
        await tx.execute("audit_snapshot")
        chains = {
            h["chain"]: _Chain(h["last_id"], bytes(h["hash"]))
            for h in await tx.fetch("audit_heads")
        }
        rows = await tx.fetch("audit_first_page", page)
        while rows:
            for r in rows:
                k: int = r["chain"]
                c = chains.get(k)
                if c is None:
                    found.add(
                        k,
                        r["id"],
                        "the row names a chain that has no head: it was added "
                        "outside audit_append, or the head was removed",
                    )
                    c = chains[k] = _Chain(None, GENESIS)
                _check_row(c, k, r, found)
                checked += 1
            rows = await tx.fetch("audit_all", rows[-1]["id"], page)
    for k in sorted(chains):
        _check_head(chains[k], k, found)
    return VerifyResult(checked, len(chains), tuple(found.breaks), found.count - len(found.breaks))
