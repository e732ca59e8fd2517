"""The operator adapter interface (a Protocol) and the results it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal, Protocol, runtime_checkable

Action = Literal["block", "unblock"]
TargetKind = Literal["msisdn", "imei"]
AckStatus = Literal[
    "blocked",
    "unblocked",
    "already_blocked",
    "not_subscriber",
    "rejected",
    "disconnected",
    "retained",
]
ACK_STATUSES: tuple[AckStatus, ...] = (
    "blocked",
    "unblocked",
    "already_blocked",
    "not_subscriber",
    "rejected",
    "disconnected",
    "retained",
)
# stages on the way to a block's final answer: its order stays pending
Stage = Literal["outgoing_barred", "incoming_barred", "reverification_pending"]
STAGES: tuple[Stage, ...] = ("outgoing_barred", "incoming_barred", "reverification_pending")
Instruction = Literal["block", "reverify", "unblock"]


@dataclass(frozen=True, slots=True)
class OutboundOrder:
    """One order as an operator sees it; `order_id` is stable across re-sends."""

    order_id: int
    operator: str
    action: Action
    kind: TargetKind
    value: str
    urgent: bool
    attempt: int
    seq: int = 0  # rises with each decision on the target: an operator may drop a lower one
    # the authority behind it (service.authority): the request, its case and its officer
    request_id: int = 0
    unit: str = ""
    case_ref: str = ""
    category: str = ""
    legal_basis: str | None = None
    officer_name: str | None = None
    officer_rank: str | None = None
    instruction: Instruction | None = None  # None: the action itself
    reason: str | None = None  # why besides the request: "reconciliation"

    @property
    def told(self) -> Instruction:
        """What the operator is told to do (`reverify` asks the subscriber first)."""
        return self.instruction or self.action


@dataclass(frozen=True, slots=True)
class Accepted:
    """The operator has the order; its acknowledgement will follow later."""

    order_id: int
    operator_ref: str | None = None
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The operator answered synchronously with a final status."""

    order_id: int
    status: AckStatus
    reason: str | None = None
    operator_ref: str | None = None
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class TransientFailure:
    """Delivery failed in a way worth retrying (timeouts, 5xx, 429, outages)."""

    order_id: int
    error: str
    retry_after: float | None = None
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class PermanentFailure:
    """Delivery failed in a way that retrying cannot fix (4xx, bad data)."""

    order_id: int
    error: str
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class CredentialsRefused:
    """The operator refused our credentials (401, 403); delivery pauses until they are fixed.

    Not the order's fault: it goes back to the queue, and the operator's breaker opens.
    """

    order_id: int
    error: str
    http_status: int | None = None


DeliveryResult = Accepted | Acknowledged | TransientFailure | PermanentFailure | CredentialsRefused


class OperatorAdapter(Protocol):
    """Delivers batches of orders to one operator.

    `send` returns exactly one result per order, in any order, and never raises
    for delivery problems: it translates them into the results above.
    """

    kind: ClassVar[str]
    max_batch: int
    pushes: bool

    async def send(self, orders: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        """Deliver a batch; one result per order."""
        ...

    async def close(self) -> None:
        """Release sockets, files and tasks."""
        ...


@dataclass(frozen=True, slots=True)
class BlocklistLine:
    """One identifier of an operator's expected blocklist, or one change to it."""

    kind: TargetKind
    value: str
    change: Literal["added", "removed"] = "added"
    seq: int | None = None  # a change's cursor; None in a full list
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BlocklistFile:
    """What an operator is expected to block: all of it (`full`), or the changes after
    `since` up to `cursor` (the same content as `GET /v1/operator/blocklist`)."""

    full: bool
    cursor: int
    since: int | None
    day: str  # the day it was made, YYYYMMDD in the report time zone
    lines: Sequence[BlocklistLine]


@runtime_checkable
class BlocklistPublisher(Protocol):
    """An adapter that also hands its operator blocklist files (file_drop)."""

    async def publish_blocklist(self, file: BlocklistFile) -> str:
        """Write the file where the operator collects it; its name."""
        ...
