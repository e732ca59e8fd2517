"""One batch's in-process delivery (`service.delivery.deliver`) against fake adapters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import pytest
from multidict import CIMultiDict
from structlog.testing import capture_logs

from adapters.http_json import map_failure
from service.delivery import deliver
from service.ports import (
    Accepted,
    CredentialsRefused,
    DeliveryResult,
    OutboundOrder,
    PermanentFailure,
    TransientFailure,
)
from service.settings import Settings

Answer = Callable[[Sequence[OutboundOrder]], list[DeliveryResult]]


def orders(count: int) -> list[OutboundOrder]:
    """`count` block orders of one operator, on their first attempt."""
    return [
        OutboundOrder(i, "op-a", "block", "msisdn", f"+9198{i:08d}", False, 1)
        for i in range(1, count + 1)
    ]


def accept(batch: Sequence[OutboundOrder]) -> list[DeliveryResult]:
    """Every order accepted."""
    return [Accepted(o.order_id) for o in batch]


class Scripted:
    """An adapter answering each call with the next scripted answer, then accepting all;
    it remembers when each call came."""

    kind: ClassVar[str] = "scripted"
    max_batch = 100
    pushes = True

    def __init__(self, *answers: Answer | BaseException) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[float, list[int]]] = []

    async def send(self, batch: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        self.calls.append((time.monotonic(), [o.order_id for o in batch]))
        answer = self.answers.pop(0) if self.answers else accept
        if isinstance(answer, BaseException):
            raise answer
        return answer(batch)

    async def close(self) -> None:
        """Nothing to release."""


def transient(retry_after: float | None = None, status: int | None = 503) -> Answer:
    def answer(batch: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        return [
            TransientFailure(o.order_id, "busy", retry_after=retry_after, http_status=status)
            for o in batch
        ]

    return answer


def settings(**changes: float) -> Settings:
    return Settings(inline_retries=3, inline_retry_max_s=5.0).model_copy(update=changes)


async def test_an_adapter_that_raises_gives_transient_attempts_and_no_inline_retry() -> None:
    adapter = Scripted(RuntimeError("adapter bug"))
    with capture_logs() as logs:
        tried = await deliver(adapter, orders(3), settings())
    assert len(adapter.calls) == 1  # rescheduled in Postgres, not hammered in-process
    assert set(tried.final) == {1, 2, 3}
    assert all(
        r == TransientFailure(r.order_id, "RuntimeError('adapter bug')")
        for r in tried.final.values()
    )
    assert [(a["attempt_no"], a["outcome"], a["error"]) for a in tried.attempts] == [
        (1, "transient", "RuntimeError('adapter bug')")
    ] * 3
    [event] = [e for e in logs if e["event"] == "adapter.raised"]
    assert (event["operator"], event["orders"], event["log_level"]) == ("op-a", 3, "error")


async def test_a_long_exception_text_is_cut_short() -> None:
    adapter = Scripted(ValueError("x" * 5000))
    tried = await deliver(adapter, orders(1), settings())
    [result] = tried.final.values()
    assert isinstance(result, TransientFailure)
    assert result.error.startswith("ValueError('xxx") and len(result.error) <= 1001


async def test_a_cancelled_send_is_not_swallowed() -> None:
    adapter = Scripted(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await deliver(adapter, orders(2), settings())


async def test_an_inline_retry_waits_for_retry_after() -> None:
    adapter = Scripted(transient(retry_after=0.4))
    with capture_logs() as logs:
        tried = await deliver(adapter, orders(2), settings())
    (first, _), (second, ids) = adapter.calls
    assert ids == [1, 2]
    assert second - first >= 0.39, second - first  # tenacity alone waits 0-100 ms here
    assert all(isinstance(r, Accepted) for r in tried.final.values())
    assert tried.tries == {1: 2, 2: 2}
    [sleep] = [e for e in logs if e["event"] == "order.retry_inline"]
    assert sleep["sleep_s"] >= 0.4


async def test_the_longest_retry_after_of_the_batch_sets_the_wait() -> None:
    def mixed(batch: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        return [
            TransientFailure(1, "busy", retry_after=0.1),
            TransientFailure(2, "busy", retry_after=0.3),
            TransientFailure(3, "busy"),
        ]

    adapter = Scripted(mixed)
    await deliver(adapter, orders(3), settings())
    (first, _), (second, ids) = adapter.calls
    assert ids == [1, 2, 3] and second - first >= 0.29


async def test_a_retry_after_past_the_inline_budget_is_left_to_postgres() -> None:
    adapter = Scripted(transient(retry_after=0.6))
    tried = await deliver(adapter, orders(2), settings(inline_retry_max_s=0.5))
    assert len(adapter.calls) == 1
    assert all(
        isinstance(r, TransientFailure) and r.retry_after == 0.6 for r in tried.final.values()
    )


async def test_refused_credentials_and_permanent_failures_are_never_retried_inline() -> None:
    def refused(batch: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        return [
            CredentialsRefused(1, "HTTP 401", http_status=401),
            PermanentFailure(2, "HTTP 400", http_status=400),
        ]

    adapter = Scripted(refused)
    tried = await deliver(adapter, orders(2), settings())
    assert len(adapter.calls) == 1
    assert [(a["outcome"], a["http_status"]) for a in tried.attempts] == [
        ("transient", 401),
        ("permanent", 400),
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_http_json_maps_401_and_403_to_refused_credentials(status: int) -> None:
    results = map_failure(orders(2), status, b'{"error": "bad signature"}', CIMultiDict())
    assert results == [
        CredentialsRefused(i, f'HTTP {status}: {{"error": "bad signature"}}', http_status=status)
        for i in (1, 2)
    ]


@pytest.mark.parametrize("status", [400, 404, 409])
def test_other_4xx_stay_permanent(status: int) -> None:
    [result] = map_failure(orders(1), status, b"", CIMultiDict())
    assert result == PermanentFailure(1, f"HTTP {status}", http_status=status)
