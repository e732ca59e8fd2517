"""An in-process fake operator for demos, tests and benchmarks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from service.ports import (
    Accepted,
    Acknowledged,
    AckStatus,
    DeliveryResult,
    OutboundOrder,
    TransientFailure,
)

RECEIVED_LIMIT = 100_000
REJECT_REASON = "simulated rejection"


class Outage(BaseModel):
    """A window during which the simulated operator is unreachable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise ValueError("outage end must be after its start")
        return self


class SimulatorConfig(BaseModel):
    """How the simulated operator behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0, ge=0, le=60_000)
    failure_rate: float = Field(default=0, ge=0, le=1)
    outages: tuple[Outage, ...] = ()
    ack_mode: Literal["sync", "accepted"] = "sync"
    not_subscriber_prefixes: tuple[str, ...] = ()
    reject_prefixes: tuple[str, ...] = ()
    max_batch: int = Field(default=500, ge=1, le=100_000)
    seed: int | None = None
    reverify_outcome: Literal["disconnected", "retained"] = Field(
        default="disconnected",
        description="The final answer to an order with `instruction: reverify`.",
    )

    @model_validator(mode="after")
    def _prefixes_not_empty(self) -> Self:
        if "" in self.not_subscriber_prefixes or "" in self.reject_prefixes:
            raise ValueError("prefixes must not be empty strings")
        return self


class SimulatorAdapter:
    """Answers like an operator without leaving the process, and remembers what it took.

    `not_subscriber_prefixes` apply to MSISDN orders, `reject_prefixes` to any value;
    `received` holds the orders it took (not those refused by a failure or outage).
    """

    kind: ClassVar[str] = "simulator"

    def __init__(
        self,
        operator_code: str,
        config: SimulatorConfig,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.operator_code = operator_code
        self.config = config
        self.max_batch = config.max_batch
        self.pushes = True
        self.received: list[OutboundOrder] = []
        self.batches = 0
        self.calls = 0
        self._clock = clock or (lambda: datetime.now(UTC))
        self._random = random.Random(config.seed)
        self._not_subscriber = config.not_subscriber_prefixes
        self._reject = config.reject_prefixes

    def _refusal(self) -> tuple[str, float | None] | None:
        if self.config.outages:
            now = self._clock()
            for outage in self.config.outages:
                if outage.start <= now < outage.end:
                    remaining = (outage.end - now).total_seconds()
                    return f"simulated outage until {outage.end.isoformat()}", remaining
        rate = self.config.failure_rate
        if rate and self._random.random() < rate:
            return "simulated failure", None
        return None

    def _answer(self, order: OutboundOrder) -> DeliveryResult:
        value = order.value
        if (
            self._not_subscriber
            and order.kind == "msisdn"
            and value.startswith(self._not_subscriber)
        ):
            return Acknowledged(order.order_id, "not_subscriber")
        if self._reject and value.startswith(self._reject):
            return Acknowledged(order.order_id, "rejected", reason=REJECT_REASON)
        if self.config.ack_mode == "accepted":
            return Accepted(order.order_id, operator_ref=f"sim-{order.order_id}")
        status: AckStatus = "blocked" if order.action == "block" else "unblocked"
        if order.told == "reverify":
            status = self.config.reverify_outcome
        return Acknowledged(order.order_id, status, operator_ref=f"sim-{order.order_id}")

    def _remember(self, orders: Sequence[OutboundOrder]) -> None:
        self.received.extend(orders)
        overflow = len(self.received) - RECEIVED_LIMIT
        if overflow > 0:
            del self.received[:overflow]

    async def send(self, orders: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        """Answer the batch after the configured latency; one result per order."""
        if len(orders) > self.max_batch:
            raise ValueError(f"batch of {len(orders)} exceeds max_batch {self.max_batch}")
        self.calls += 1
        if not orders:
            return []
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        refusal = self._refusal()
        if refusal is not None:
            error, retry_after = refusal
            return [TransientFailure(o.order_id, error, retry_after=retry_after) for o in orders]
        self.batches += 1
        self._remember(orders)
        answer = self._answer
        return [answer(order) for order in orders]

    async def close(self) -> None:
        """Nothing to release."""
