"""Pydantic models of the operators' API: acknowledgements and pulled orders."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.inputs import LINE, TEXT, Instant, Integer
from service.ports import AckStatus, Action, TargetKind


class AckIn(BaseModel):
    """One acknowledgement from an operator."""

    model_config = ConfigDict(extra="forbid")
    order_id: int = Field(ge=1, le=2**63 - 1)
    status: AckStatus
    operator_ref: Annotated[str, StringConstraints(max_length=200), LINE] | None = None
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), TEXT] | None
    ) = None
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


class PulledOrders(BaseModel):
    """Due orders claimed for the calling operator."""

    orders: list[PulledOrder]


class PullQuery(BaseModel):
    """How many orders to claim."""

    model_config = ConfigDict(extra="forbid")
    limit: Integer = Field(default=100, ge=1, le=1000)
