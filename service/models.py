"""Pydantic models of the API and the status literals of the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.inputs import LINE, NONBLANK, STRIPPED, TEXT, Id, Instant, Integer
from service.ports import AckStatus, Action, Stage, TargetKind

Category = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$"),
    Field(
        description="A fraud category's code, one of GET /v1/categories (an admin adds more).",
        examples=["kyc_update", "electricity_bill"],
    ),
]
Priority = Literal["normal", "urgent"]
Role = Literal["investigator", "supervisor", "operator", "admin"]
ROLES: tuple[Role, ...] = ("investigator", "supervisor", "operator", "admin")
RequestStatus = Literal[
    "pending_approval", "dispatching", "completed", "partially_completed", "rejected", "cancelled"
]
REQUEST_STATUSES: tuple[RequestStatus, ...] = (
    "pending_approval",
    "dispatching",
    "completed",
    "partially_completed",
    "rejected",
    "cancelled",
)
OrderStatus = Literal[
    "held", "queued", "in_flight", "sent", "acked", "dead", "cancelled", "withdrawn"
]
OperatorHolds = Literal[
    "blocked",
    "not_blocked",
    "not_subscriber",
    "retained",
    "pending_block",
    "pending_unblock",
    "unknown",
]
TargetState = Literal[
    "pending",
    "blocked",
    "partially_blocked",
    "unblocked",
    "rejected",
    "dead",
    "unroutable",
    "cancelled",
    "retained",
]
TargetOutcome = Literal[
    "queued",
    "in_progress",
    "already_blocked",
    "already_unblocked",
    "held",
    "not_blocked",
    "unroutable",
    "awaiting_approval",
]

CaseRef = Annotated[str, StringConstraints(min_length=1, max_length=64), LINE, NONBLANK]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]


class TargetIn(BaseModel):
    """One target as submitted: a phone number or a handset IMEI, in any usual notation."""

    model_config = ConfigDict(extra="forbid")
    kind: TargetKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class BlockRequestIn(BaseModel):
    """A block or unblock request for one case."""

    model_config = ConfigDict(extra="forbid")
    case_ref: CaseRef = Field(description="The case reference (FIR or complaint number).")
    category: Category
    legal_basis: Annotated[str, StringConstraints(max_length=2000), TEXT] | None = None
    priority: Priority = "normal"
    action: Action = "block"
    note: Annotated[str, StringConstraints(max_length=4000), TEXT] | None = None
    reason: Annotated[str, StringConstraints(max_length=2000), TEXT, STRIPPED] | None = Field(
        default=None,
        validate_default=True,
        description="Why an unblock is asked (court order, false positive).",
    )
    force: bool = Field(
        default=False,
        validate_default=True,
        description="Supervisor only: unblock even while other cases hold it.",
    )
    unit: Code | None = Field(
        default=None,
        description="The unit the request is filed for: a supervisor must name it (422 "
        "otherwise); an investigator files for the own unit (another unit is 403).",
    )
    linked_from: TargetIn | None = Field(
        default=None,
        description="Block this identifier and every one seen with it (the numbers used in a "
        "handset, or the handsets a number was used in), as operators reported them.",
    )
    targets: list[TargetIn] = Field(default_factory=list, max_length=10_000, validate_default=True)

    @field_validator("targets")
    @classmethod
    def _something_to_block(cls, value: list[TargetIn], info: ValidationInfo) -> list[TargetIn]:
        if not value and info.data.get("linked_from") is None:
            raise ValueError("name at least one target (or, for a block, linked_from)")
        return value

    @field_validator("linked_from")
    @classmethod
    def _linked_is_for_block(cls, value: TargetIn | None, info: ValidationInfo) -> TargetIn | None:
        if value is not None and info.data.get("action") != "block":
            raise ValueError("linked_from applies to block requests only")
        return value

    @field_validator("reason")
    @classmethod
    def _unblock_needs_reason(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("action") == "unblock" and not value:
            raise ValueError("an unblock request needs a reason (court order, false positive, ...)")
        return value

    @field_validator("force")
    @classmethod
    def _force_is_for_unblock(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("action") != "unblock":
            raise ValueError("force applies to unblock requests only")
        return value


class OrderOut(BaseModel):
    """One order: a target's delivery to one operator."""

    id: int
    operator: str
    action: Action
    status: OrderStatus
    attempts: int
    created_at: datetime
    first_sent_at: datetime | None = None
    sent_at: datetime | None = None
    acked_at: datetime | None = None
    ack_status: AckStatus | None = None
    ack_reason: str | None = None
    operator_ref: str | None = None
    dead_at: datetime | None = None
    last_error: str | None = None
    request_id: int | None = Field(
        description="The request that decided it; hidden (with operator_ref, ack_reason and "
        "last_error) from an investigator when the request is another unit's."
    )
    seq: int | None = Field(
        default=None,
        description="The decision's number, rising per (target, operator); none while held.",
    )
    stage: Stage | None = Field(
        default=None, description="The latest stage the operator reported, before its answer."
    )
    stage_at: datetime | None = Field(default=None, description="When that stage was reached.")
    reason: str | None = Field(
        default=None, description="Why besides its request: `reconciliation` (sent again)."
    )


class HoldOut(BaseModel):
    """A case that still holds a target blocked; another unit's case reference is hidden
    from an investigator."""

    unit: str
    case_ref: str | None = None


class RequestTargetOut(BaseModel):
    """A target as this request named it, and what happened to it."""

    index: int
    kind: TargetKind
    submitted: str
    value: str
    outcome: TargetOutcome
    state: TargetState
    held_by: list[HoldOut] = Field(
        default_factory=list, description="The other cases that still hold it blocked."
    )
    releases: list[HoldOut] = Field(
        default_factory=list,
        description="The holds this unblock releases (its own case's, or every one with "
        "force): at once when no order must go out, else when the operators confirm.",
    )
    orders: list[OrderOut]


class BlockRequestOut(BaseModel):
    """A stored block request with its targets and orders."""

    id: int
    unit: str
    case_ref: str
    category: Category
    action: Action
    priority: Priority
    legal_basis: str | None
    note: str | None
    reason: str | None
    force: bool
    status: RequestStatus
    target_count: int
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None
    decision_reason: str | None = None
    targets: list[RequestTargetOut] = Field(
        description="A page of the request's targets in the order they were submitted "
        "(target_count counts them all); the filing's own answer carries every target."
    )
    next_after: int | None = Field(
        default=None,
        description="More targets follow: pass this as `after` for the next page (the last "
        "target's index); null on the last page.",
    )


class BlockRequestSummary(BaseModel):
    """A block request in a list."""

    id: int
    unit: str
    case_ref: str
    category: Category
    action: Action
    priority: Priority
    status: RequestStatus
    target_count: int
    created_at: datetime
    updated_at: datetime


class BlockRequestPage(BaseModel):
    """One page of block requests; pass `next_after` as `after` for the next page."""

    items: list[BlockRequestSummary]
    next_after: int | None


class BlockRequestQuery(BaseModel):
    """Filters for listing block requests, which come newest first by the time they were filed
    (those filed together, by id)."""

    model_config = ConfigDict(extra="forbid")
    unit: Code | None = None
    status: RequestStatus | None = None
    category: Category | None = None
    case_ref: Annotated[str, StringConstraints(max_length=64), LINE] | None = None
    created_from: Instant | None = Field(default=None, alias="from")
    created_to: Instant | None = Field(default=None, alias="to")
    limit: Integer = Field(default=50, ge=1, le=500)
    after: Id | None = Field(default=None, description="Cursor: the last id seen.")


class RequestTargetsQuery(BaseModel):
    """Which page of a request's targets to show, in the order they were submitted."""

    model_config = ConfigDict(extra="forbid")
    after: Integer | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Cursor: the last target's index seen."
    )
    limit: Integer = Field(default=100, ge=1, le=1000)


class TargetCaseOut(BaseModel):
    """A request that named the target; of another unit's, an investigator sees only the unit
    and whether it holds the target."""

    request_id: int | None = None
    case_ref: str | None = None
    unit: str
    action: Action | None = None
    status: RequestStatus | None = None
    holds: bool
    created_at: datetime | None = None


class TargetOut(BaseModel):
    """A target's state across operators and every case that named it."""

    kind: TargetKind
    value: str
    state: TargetState
    action: Action
    state_changed_at: datetime
    created_at: datetime
    operators: dict[str, OrderOut] = Field(
        description="Each operator's latest decision (the order it was last told to act on)."
    )
    operator_states: dict[str, OperatorHolds] = Field(
        default_factory=dict, description="What each operator holds, as its answers tell."
    )
    orders: list[OrderOut]
    cases: list[TargetCaseOut]
    retired_at: datetime | None = Field(
        default=None, description="When the number was re-allocated or disconnected (retired)."
    )
    retired_as: Literal["reallocated", "permanently_disconnected"] | None = None
    previous: list[TargetOut] = Field(
        default_factory=list,
        description="The number's earlier lives, retired, newest first, each with its history.",
    )


class UnitOut(BaseModel):
    """A police unit."""

    code: str
    name: str
    kind: Literal["district", "zone"]


UnitKind = Literal["district", "zone"]
UnitName = Annotated[str, StringConstraints(min_length=1, max_length=100), LINE, NONBLANK]


class UnitIn(BaseModel):
    """A new police unit (admin)."""

    model_config = ConfigDict(extra="forbid")
    code: Code = Field(description="Lower-case code, e.g. `kathua-2`; never changes.")
    name: UnitName
    kind: UnitKind = Field(description="A district cyber cell, or the zone's police station.")


class UnitPatch(BaseModel):
    """A unit's new name or kind (admin); a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")
    name: UnitName | None = None
    kind: UnitKind | None = None


class UnitList(BaseModel):
    """All units."""

    items: list[UnitOut]


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    detail: str | None = None


class DecisionIn(BaseModel):
    """A reason for cancelling."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(max_length=2000), TEXT, STRIPPED] | None = None


class RejectIn(BaseModel):
    """Why a request is rejected: a reason is required."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), TEXT, NONBLANK]


class DeadRequeueIn(BaseModel):
    """Which dead orders to put back in the queue: every filter given must match."""

    model_config = ConfigDict(extra="forbid")
    operator: Code | None = Field(default=None, description="Only this operator's orders.")
    dead_from: Instant | None = Field(
        default=None, description="Dead at or after this time (with its UTC offset)."
    )
    dead_to: Instant | None = Field(
        default=None, description="Dead before this time (with its UTC offset)."
    )
    reason: (
        Annotated[str, StringConstraints(min_length=1, max_length=500), LINE, NONBLANK] | None
    ) = Field(default=None, description="Text in the order's last error (any case).")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> DeadRequeueIn:
        if self.dead_from and self.dead_to and self.dead_to <= self.dead_from:
            raise ValueError("dead_to must be later than dead_from")
        return self


class DeadRequeueOut(BaseModel):
    """How many dead orders went back to the queue."""

    requeued: int
    more: bool = Field(description="More matching dead orders remain: call again for them.")
