"""One batch's delivery: in-process retries (tenacity) and recording every outcome in Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, assert_never

import orjson
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from service import acks, settlement
from service.ports import (
    Accepted,
    Acknowledged,
    CredentialsRefused,
    DeliveryResult,
    OperatorAdapter,
    OutboundOrder,
    PermanentFailure,
    TransientFailure,
)
from service.retry import next_attempt
from service.settings import Settings
from service.store import Row, Tx

log = structlog.get_logger()


@dataclass
class Tried:
    """Every try of one batch: attempt rows to record and each order's final result."""

    attempts: list[dict[str, Any]] = field(default_factory=list)
    final: dict[int, DeliveryResult] = field(default_factory=dict)
    tries: dict[int, int] = field(default_factory=dict)


def went_through(tried: Tried) -> bool:
    """Whether the operator took every order of the batch (accepted or acknowledged)."""
    return all(isinstance(r, Accepted | Acknowledged) for r in tried.final.values())


class _StillTransient(Exception):
    """Some orders of the batch failed transiently and may be retried now, but not before
    `wait_s` (the longest `Retry-After` among them)."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"transient failures; retry in {wait_s:g}s at the earliest")
        self.wait_s = wait_s


_BACKOFF = wait_random_exponential(multiplier=0.05, max=1.0)
ERROR_CHARS = 1000


def _inline_wait(state: RetryCallState) -> float:
    """Random-exponential backoff, but never sooner than the operator's `Retry-After`."""
    failure = state.outcome.exception() if state.outcome is not None else None
    floor = failure.wait_s if isinstance(failure, _StillTransient) else 0.0
    return max(_BACKOFF(state), floor)


def _before_sleep(state: RetryCallState) -> None:
    log.info(
        "order.retry_inline", attempt=state.attempt_number, sleep_s=round(state.upcoming_sleep, 3)
    )


def _attempt_row(
    o: OutboundOrder, tries: int, started: datetime, r: DeliveryResult
) -> dict[str, Any]:
    """An attempts row (the worker is added when it is stored)."""
    if isinstance(r, Accepted):
        outcome, error, status = "accepted", None, None
    elif isinstance(r, Acknowledged):
        outcome, error, status = "acknowledged", r.reason, r.status
    elif isinstance(r, TransientFailure | CredentialsRefused):
        outcome, error, status = "transient", r.error, None  # refused: rescheduled, not dead
    elif isinstance(r, PermanentFailure):
        outcome, error, status = "permanent", r.error, None
    else:
        assert_never(r)
    return {
        "order_id": o.order_id,
        "attempt_no": tries,
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "outcome": outcome,
        "error": error,
        "operator_status": status,
        "http_status": r.http_status,
    }


async def _send(
    adapter: OperatorAdapter, batch: list[OutboundOrder]
) -> tuple[list[DeliveryResult], bool]:
    """The adapter's results and False; when it raised instead of answering (a bug in it),
    a transient failure per order and True: the lane must not crash, nor its orders come
    back after their lease with no attempt recorded."""
    try:
        return await adapter.send(batch), False
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = repr(exc)
        if len(error) > ERROR_CHARS:
            error = error[:ERROR_CHARS] + "…"
        log.error(
            "adapter.raised",
            operator=batch[0].operator,
            orders=len(batch),
            error=error,
            exc_info=exc,
        )
        return [TransientFailure(o.order_id, error) for o in batch], True


async def deliver(
    adapter: OperatorAdapter, orders: Sequence[OutboundOrder], settings: Settings
) -> Tried:
    """Send a batch, retrying only its transient failures a few times in-process.

    An inline retry waits at least as long as the operator's `Retry-After` asks; an order
    whose `Retry-After` reaches past the inline budget (`inline_retry_max_s`) is rescheduled
    in Postgres instead. Refused credentials and an adapter that raised are never retried
    inline: the breaker and the backoff in Postgres pace those.
    """
    tried = Tried()
    pending = {o.order_id: o for o in orders}
    begun = time.monotonic()

    async def one_try() -> None:
        started = datetime.now(UTC)
        batch = list(pending.values())
        results, broken = await _send(adapter, batch)
        by_id = {r.order_id: r for r in results}
        budget = settings.inline_retry_max_s - (time.monotonic() - begun)
        wait_s = 0.0
        for o in batch:
            r = by_id.get(o.order_id) or TransientFailure(o.order_id, "adapter gave no result")
            n = tried.tries[o.order_id] = tried.tries.get(o.order_id, o.attempt - 1) + 1
            tried.attempts.append(_attempt_row(o, n, started, r))
            tried.final[o.order_id] = r
            if isinstance(r, TransientFailure) and not broken and (r.retry_after or 0) <= budget:
                wait_s = max(wait_s, r.retry_after or 0)
            else:
                del pending[o.order_id]
        if pending:
            raise _StillTransient(wait_s)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_StillTransient),
        stop=stop_after_attempt(settings.inline_retries)
        | stop_after_delay(settings.inline_retry_max_s),
        wait=_inline_wait,
        before_sleep=_before_sleep,
    )
    try:
        async for attempt in retrying:
            with attempt:
                await one_try()
    except RetryError:
        pass  # the remaining transient failures are rescheduled in Postgres
    return tried


def retry_schedule(settings: Settings, *, urgent: bool) -> tuple[float, float]:
    """The backoff base and cap of an order: urgent ones retry faster, never slower."""
    if urgent:
        return (
            min(settings.urgent_retry_base_s, settings.retry_base_s),
            min(settings.urgent_retry_cap_s, settings.retry_cap_s),
        )
    return settings.retry_base_s, settings.retry_cap_s


@dataclass(frozen=True)
class Recorded:
    """What one batch's recording did: counts per outcome and the breaker's new state."""

    counts: dict[str, int]
    failed: bool
    breaker: str | None


async def record(
    tx: Tx,
    operator: Row,
    claimed: Sequence[Row],
    tried: Tried,
    worker: str,
    settings: Settings,
) -> Recorded:
    """Record attempts and move every order on, in one transaction."""
    code = operator["code"]
    by_id = {r["id"]: r for r in claimed}
    sent: list[tuple[int, str | None, int]] = []
    acked: list[acks.AckItem] = []
    later: list[tuple[int, datetime, str, int]] = []
    dead: list[tuple[int, str, int, bool]] = []
    refused: list[CredentialsRefused] = []
    now = datetime.now(UTC)
    for oid, result in tried.final.items():
        n = tried.tries[oid]
        if isinstance(result, Accepted):
            sent.append((oid, result.operator_ref, n))
        elif isinstance(result, Acknowledged):
            problem = acks.invalid_answer(by_id[oid]["action"], result.status, result.reason)
            if problem is None:
                acked.append(
                    acks.AckItem(oid, result.status, result.reason, result.operator_ref, None, n)
                )
            else:
                dead.append((oid, f"operator's answer refused: {problem}", n, True))
        elif isinstance(result, PermanentFailure):
            dead.append((oid, result.error, n, True))
        elif isinstance(result, CredentialsRefused):
            # our configuration's fault, not the order's: due again at once, but the breaker
            # (opened below) holds it until a half-open probe finds the credentials fixed
            refused.append(result)
            later.append((oid, now, result.error, n))
        elif isinstance(result, TransientFailure):
            base_s, cap_s = retry_schedule(settings, urgent=by_id[oid]["urgent"])
            when = next_attempt(
                now=now,
                created_at=by_id[oid]["created_at"],
                attempts=n,
                base_s=base_s,
                cap_s=cap_s,
                max_age_s=settings.max_order_age_s,
                retry_after_s=result.retry_after,
            )
            if when is None:
                dead.append((oid, f"gave up after {n} attempts: {result.error}", n, False))
            else:
                later.append((oid, when, result.error, n))
        else:
            assert_never(result)
    # a batch fails when nothing in it got through, whether retrying could help or not
    failed = not any(isinstance(r, Accepted | Acknowledged) for r in tried.final.values())
    if refused:
        log.warning(
            "operator.credentials_refused",
            operator=code,
            orders=len(refused),
            http_status=refused[0].http_status,
            error=refused[0].error,
        )
    head = await tx.fetchrow(
        "dispatch_record",
        orjson.dumps(tried.attempts).decode(),
        acks.answers_json(acked),
        worker,
        failed,
        code,
        sorted({r["target_id"] for r in claimed}),
        bool(refused),
    )
    assert head is not None
    if sent:
        await tx.execute(
            "orders_mark_sent",
            [s[0] for s in sent],
            [s[1] for s in sent],
            operator["ack_deadline_s"],
            operator["urgent_ack_deadline_s"],
            worker,
            [s[2] for s in sent],
        )
    if later:
        await tx.execute(
            "orders_reschedule",
            [x[0] for x in later],
            [x[1] for x in later],
            [x[2] for x in later],
            [x[3] for x in later],
            worker,
        )
    if dead:
        gone = await tx.fetch(
            "orders_mark_dead",
            [d[0] for d in dead],
            [d[1] for d in dead],
            [d[2] for d in dead],
            [d[3] for d in dead],
            worker,
        )
        await settlement.settle(tx, {g["target_id"] for g in gone})
    applied = set(head["applied"])
    if applied:
        done = [a for a in acked if a.order_id in applied]
        await settlement.follow_up(
            tx,
            code,
            [by_id[a.order_id] for a in done],
            done,
            actor=f"operator:{code}",
            role="operator",
            commit=True,
        )
    counts = {"sent": len(sent), "acked": len(applied), "retry": len(later), "dead": len(dead)}
    return Recorded(counts, failed, head["breaker"])


async def cancelled_safely(task: asyncio.Task[Any]) -> None:
    """Cancel a helper task and wait for it, without hiding a cancel of our own."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
