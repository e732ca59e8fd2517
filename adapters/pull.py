"""The adapter for operators that fetch their own orders over the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from service.ports import DeliveryResult, OutboundOrder, TransientFailure

PULL_ERROR = "pull operators fetch their own orders"


class PullConfig(BaseModel):
    """Settings of an operator that pulls its orders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch: int = Field(default=500, ge=1, le=100_000)


class PullAdapter:
    """Pushes nothing: the dispatcher skips it, and `send` refuses politely if called."""

    kind: ClassVar[str] = "pull"

    def __init__(self, operator_code: str, config: PullConfig) -> None:
        self.operator_code = operator_code
        self.config = config
        self.max_batch = config.max_batch
        self.pushes = False

    async def send(self, orders: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        """Return a transient failure for every order: nothing is pushed."""
        return [TransientFailure(o.order_id, PULL_ERROR) for o in orders]

    async def close(self) -> None:
        """Nothing to release."""
