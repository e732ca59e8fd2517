"""Pydantic models of grievances: a wrongly blocked subscriber's complaint and its decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.inputs import LINE, NONBLANK, TEXT, Id, Integer
from service.models import CaseRef, Code
from service.ports import TargetKind

GrievanceStatus = Literal["open", "upheld", "dismissed", "partially_upheld"]
Decision = Literal["pending", "upheld", "dismissed"]
_Text = Annotated[str, StringConstraints(min_length=1, max_length=2000), TEXT, NONBLANK]


class GrievanceIn(BaseModel):
    """An operator forwards a subscriber's complaint about a blocked number or handset."""

    model_config = ConfigDict(extra="forbid")
    kind: TargetKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=64), LINE]
    subscriber_ref: Annotated[
        str, StringConstraints(min_length=1, max_length=200), LINE, NONBLANK
    ] = Field(description="The operator's reference for the subscriber or complaint.")
    reason: _Text


class GrievanceCaseOut(BaseModel):
    """One holding case's decision; another unit's case reference and reasons are hidden
    from an investigator, and every case reference from an operator."""

    unit: str
    case_ref: str | None = None
    decision: Decision
    reason: str | None = None
    decided_at: datetime | None = None
    unblock_request_id: int | None = None


class GrievanceOut(BaseModel):
    """A grievance and where each holding case stands."""

    id: int
    kind: TargetKind
    value: str
    operator: str
    subscriber_ref: str
    reason: str
    status: GrievanceStatus
    overdue: bool
    due_at: datetime
    created_at: datetime
    closed_at: datetime | None = None
    cases: list[GrievanceCaseOut]


class GrievancePage(BaseModel):
    """A page of grievances, newest first; pass `next_after` as `after`."""

    items: list[GrievanceOut]
    next_after: int | None


class GrievanceQuery(BaseModel):
    """Filters for grievances."""

    model_config = ConfigDict(extra="forbid")
    status: GrievanceStatus | None = None
    overdue: bool = False
    after: Id | None = None
    limit: Integer = Field(default=50, ge=1, le=500)


class GrievanceDecisionIn(BaseModel):
    """A holding case decides: `upheld` files an unblock request for that case; `dismissed`
    needs a reason. A supervisor names the case's unit."""

    model_config = ConfigDict(extra="forbid")
    case_ref: CaseRef
    unit: Code | None = None
    decision: Literal["upheld", "dismissed"]
    reason: _Text | None = None

    @model_validator(mode="after")
    def _dismissal_needs_reason(self) -> GrievanceDecisionIn:
        if self.decision == "dismissed" and not self.reason:
            raise ValueError("a dismissal needs a reason")
        return self


class NoObjection(BaseModel):
    """What an operator may fetch: the decisions on its grievance, and for each case that
    upheld it the unblock request filed (the police's no-objection to restoring service)."""

    grievance_id: int
    kind: TargetKind
    value: str
    status: GrievanceStatus
    decisions: list[GrievanceCaseOut]
    statement: str
