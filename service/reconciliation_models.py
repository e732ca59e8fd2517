"""Pydantic models of reconciliation: operators' blocklists and their own lists compared."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.inputs import Id, Integer
from service.models import Code, TargetIn
from service.ports import TargetKind


class Identifier(BaseModel):
    """A number or a handset."""

    kind: TargetKind
    value: str


class BlocklistQuery(BaseModel):
    """The full list, or the changes after a cursor."""

    model_config = ConfigDict(extra="forbid")
    kind: TargetKind | None = None
    since: Id | None = Field(
        default=None, description="A cursor from an earlier answer: only what changed."
    )
    after: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next` of the previous page of the full list: the page after it.",
    )
    limit: Integer = Field(
        default=10_000, ge=1, le=100_000, description="Identifiers or changes per page."
    )


class BlocklistChange(BaseModel):
    """One change to what the operator was confirmed to block."""

    seq: int
    kind: TargetKind
    value: str
    change: Literal["added", "removed"]
    at: datetime


class BlocklistOut(BaseModel):
    """What the service expects the operator to block: all of it, or what changed."""

    operator: str
    kind: TargetKind | None
    cursor: int = Field(description="Pass as `since` to read the changes after this answer.")
    full: bool
    items: list[Identifier] | None = Field(default=None, description="The full list.")
    changes: list[BlocklistChange] | None = Field(
        default=None, description="The changes after `since`, oldest first."
    )
    more: bool = Field(
        default=False,
        description="More remain: changes from `cursor`, or the full list's next page from `next`.",
    )
    next: str | None = Field(
        default=None,
        description="The full list continues: pass as `after` (the list as of `cursor`).",
    )


class ReconciliationIn(BaseModel):
    """The operator's own list of what it blocks (of one kind, or both)."""

    model_config = ConfigDict(extra="forbid")
    kind: TargetKind | None = Field(
        default=None, description="The list holds only this kind; the other is not compared."
    )
    items: list[TargetIn] = Field(max_length=100_000)


class InvalidItem(BaseModel):
    """A listed identifier that could not be read."""

    index: int
    kind: TargetKind
    value: str
    reason: str


class ReconciliationOut(BaseModel):
    """One run: matched, missing (sent again), unexpected (for a supervisor)."""

    id: int
    operator: str
    kind: TargetKind | None
    cursor: int = Field(description="The blocklist as of this cursor was compared.")
    listed: int
    matched: int
    missing: list[Identifier] = Field(description="Expected but not listed: blocked again.")
    unexpected: list[Identifier] = Field(description="Listed but not expected: for a supervisor.")
    in_transit: list[Identifier] = Field(
        description="An order of this operator is on its way for them: not compared."
    )
    invalid: list[InvalidItem]
    requeued: list[int] = Field(description="The orders sent again (reason: reconciliation).")
    created_at: datetime


class ReconciliationPage(BaseModel):
    """Runs, newest first; pass `next_before` as `before` for older ones."""

    items: list[ReconciliationOut]
    next_before: int | None


class ReconciliationQuery(BaseModel):
    """Filters for listing runs."""

    model_config = ConfigDict(extra="forbid")
    operator: Code | None = None
    before: Id | None = Field(default=None, ge=1, description="Cursor: the last id seen.")
    limit: Integer = Field(default=50, ge=1, le=500)
