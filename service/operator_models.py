"""Pydantic models of the operators' API: acknowledgements and pulled orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.authority import Rank
from service.inputs import LINE, STRIPPED, TEXT, Id, Instant, Integer
from service.ports import AckStatus, Action, Instruction, Stage, TargetKind


class AckIn(BaseModel):
    """One acknowledgement from an operator."""

    model_config = ConfigDict(extra="forbid")
    order_id: int = Field(ge=1, le=2**63 - 1)
    status: AckStatus | Stage = Field(
        description="A final answer, or a stage on the way to a block's (the order stays "
        "pending): outgoing_barred, incoming_barred, reverification_pending."
    )
    operator_ref: Annotated[str, StringConstraints(max_length=200), LINE] | None = None
    reason: Annotated[str, StringConstraints(max_length=2000), TEXT, STRIPPED] | None = None
    at: Instant | None = Field(
        default=None,
        description="When the operator acted (with its UTC offset); no earlier than the "
        "order's first send less the allowed clock skew, no later than a few minutes from now.",
    )


class AcksIn(BaseModel):
    """A batch of 1-1,000 acknowledgements; each item is judged on its own."""

    model_config = ConfigDict(extra="forbid")
    acks: list[Any] = Field(
        min_length=1,
        max_length=1000,
        description="Each an AckIn (order_id, status, reason, operator_ref, at); an item that "
        "is not one answers `invalid` on its own and the others are still applied.",
    )


class AckResultOut(BaseModel):
    """What became of one acknowledgement."""

    index: int
    order_id: int | None
    result: Literal["applied", "duplicate", "conflict", "not_found", "invalid", "superseded"]
    reason: str | None = None


class AcksOut(BaseModel):
    """One result per submitted ack, in order."""

    results: list[AckResultOut]
    applied: int


class OfficerOut(BaseModel):
    """The officer who authorised an order."""

    name: str | None
    rank: Rank | None


class PulledOrder(BaseModel):
    """An order handed to a pulling operator; ack it by `order_id`."""

    order_id: int
    action: Action
    kind: TargetKind
    value: str
    urgent: bool
    attempt: int
    seq: int = Field(description="Rises with each decision on this target; a lower one is stale.")
    ack_due_in_s: float = Field(description="Acknowledge within this, or it is sent again.")
    instruction: Instruction = Field(
        description="block, unblock, or reverify: ask the subscriber to re-verify first "
        "(the request's officers rank below FRAUDBLOCK_DIRECT_BLOCK_MIN_RANK)."
    )
    request_id: int
    unit: str = Field(description="The requesting police unit.")
    case_ref: str
    category: str
    legal_basis: str | None
    officer: OfficerOut = Field(description="Who approved the request, else who filed it.")
    reason: str | None = Field(
        default=None, description="Why besides the request: `reconciliation` (sent again)."
    )


class PulledOrders(BaseModel):
    """Due orders claimed for the calling operator."""

    orders: list[PulledOrder]


class PullQuery(BaseModel):
    """How many orders to claim."""

    model_config = ConfigDict(extra="forbid")
    limit: Integer = Field(default=100, ge=1, le=1000)


class UnackedOrder(BaseModel):
    """An order sent to the operator and not yet answered."""

    order_id: int
    action: Action
    kind: TargetKind
    value: str
    urgent: bool
    attempt: int
    seq: int
    sent_at: datetime
    ack_due_at: datetime | None
    request_id: int
    reason: str | None
    stage: Stage | None = Field(description="The latest stage reported, if any.")
    stage_at: datetime | None


class UnackedPage(BaseModel):
    """A page of unanswered orders, oldest first; pass `next_after` as `after`."""

    orders: list[UnackedOrder]
    next_after: int | None


class UnackedQuery(BaseModel):
    """Paging through unanswered orders."""

    model_config = ConfigDict(extra="forbid")
    after: Id | None = Field(default=None, description="Cursor: the last order id seen.")
    limit: Integer = Field(default=500, ge=1, le=5000)
