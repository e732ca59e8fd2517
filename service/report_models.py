"""Pydantic models of what supervisors read: counts, operator health, attention lists, audit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.grievance_models import GrievanceOut
from service.inputs import LINE, Day, Id, Instant, Integer
from service.models import Code, OrderOut
from service.ports import TargetKind

_DIM = "(unit|category|operator|kind|day|week|month)"
GROUP_BY_PATTERN = f"^{_DIM}(,{_DIM})*$"
Filter = Annotated[str, StringConstraints(max_length=200), LINE]


class StatsQuery(BaseModel):
    """Period (days in the zone's time zone, `to` exclusive) and grouping for the counts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: Day | None = Field(default=None, alias="from")
    end: Day | None = Field(default=None, alias="to")
    group_by: Annotated[str, StringConstraints(pattern=GROUP_BY_PATTERN)] | None = Field(
        default=None,
        description="Comma-separated: unit, category, operator, kind, and at most one of "
        "day, week, month.",
    )
    unit: Code | None = None
    unit_kind: Literal["district", "zone"] | None = Field(
        default=None, description="Only the district cells, or only the zone's own station."
    )


class StatsOut(BaseModel):
    """Counts of distinct numbers and handsets by state, in total and per group."""

    model_config = ConfigDict(populate_by_name=True)
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    group_by: list[str]
    totals: dict[str, dict[str, int]] = Field(
        description="numbers and handsets by state; money in paise (put on hold, released, "
        "refunded, still on hold)."
    )
    summary: str | None = Field(
        default=None,
        description="As the zone's press note says it, e.g. '439 calling numbers and 411 phone "
        "sets blocked; Rs 68,34,619 put on hold or lien marked; Rs 21,85,702 refunded'.",
    )
    groups: list[dict[str, Any]]


class OperatorHealth(BaseModel):
    """An operator's delivery health."""

    code: str
    name: str
    active: bool
    adapter: str
    breaker_state: Literal["closed", "open", "half_open"]
    breaker_failures: int
    breaker_opened_at: datetime | None
    rate_limit_per_s: float
    queued: int
    in_flight: int
    awaiting_ack: int
    overdue: int
    dead: int
    acked_24h: int
    success_rate_24h: float | None
    p50_ack_s_24h: float | None
    p95_ack_s_24h: float | None


class OperatorHealthList(BaseModel):
    """Every operator's health."""

    items: list[OperatorHealth]


class AttentionOrder(OrderOut):
    """An order that needs a person: overdue or dead."""

    kind: TargetKind
    value: str
    ack_due_at: datetime | None = None
    overdue_at: datetime | None = None


class AttentionPage(BaseModel):
    """A page of orders needing attention; pass `next_after` as `after`. The overdue list's
    first page also carries the grievances past their decision deadline."""

    items: list[AttentionOrder]
    next_after: int | None
    grievances: list[GrievanceOut] = Field(default_factory=list)


class AttentionQuery(BaseModel):
    """Filters for overdue and dead orders."""

    model_config = ConfigDict(extra="forbid")
    operator: Code | None = None
    after: Id | None = None
    limit: Integer = Field(default=100, ge=1, le=1000)


class AuditQuery(BaseModel):
    """Filters for the audit log."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    action: Filter | None = None
    entity_type: Filter | None = None
    entity_id: Filter | None = None
    actor: Filter | None = None
    start: Instant | None = Field(default=None, alias="from")
    end: Instant | None = Field(default=None, alias="to")
    after: Id | None = None
    limit: Integer = Field(default=100, ge=1, le=1000)


class AuditEntryOut(BaseModel):
    """One audit row."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    entity_type: str
    entity_id: str
    details: dict[str, Any]
    chain: int = Field(description="the hash chain (of 16) the entry was appended to")
    prev_hash: str = Field(description="hex SHA-256 of the chain's previous entry (zeros first)")
    hash: str = Field(description="hex SHA-256 of prev_hash and the entry's canonical JSON")


class AuditPage(BaseModel):
    """A page of the audit log, oldest first."""

    items: list[AuditEntryOut]
    next_after: int | None
