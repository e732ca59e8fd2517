"""Delivering escalations: the loop that claims due deliveries, sends them and records each
outcome (again later with backoff, or dead after the last attempt)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any, assert_never

import orjson
import structlog

from service import escalations
from service.escalation_ports import Delivered, EscalationSender, Refused, Retryable, SendResult
from service.retry import next_attempt
from service.settings import Settings
from service.store import Row, Store, StoreError

log = structlog.get_logger()
ERROR_CHARS = 1000


def event_body(r: Row) -> bytes:
    """An event as endpoints receive it: `{"type", "timestamp", "data"}`."""
    occurred: datetime = r["occurred_at"]
    doc = {"type": r["type"], "timestamp": occurred, "data": r["data"]}
    return orjson.dumps(doc, option=orjson.OPT_UTC_Z)


def outcome(
    r: Row, result: SendResult, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """What to record of one attempt: delivered, queued again (with when) or dead."""
    now = now or datetime.now(UTC)
    attempts = r["attempts"] + 1
    if isinstance(result, Delivered):
        return _row(r, "delivered", None, None, result.http_status)
    if isinstance(result, Refused):
        return _row(r, "dead", None, result.error, result.http_status)
    if isinstance(result, Retryable):
        when = None
        if attempts < settings.escalation_max_attempts:
            when = next_attempt(
                now=now,
                created_at=r["created_at"],
                attempts=attempts,
                base_s=settings.retry_base_s,
                cap_s=settings.retry_cap_s,
                max_age_s=settings.max_order_age_s,
                retry_after_s=result.retry_after,
            )
        if when is None:
            error = f"gave up after {attempts} attempts: {result.error}"
            return _row(r, "dead", None, error, result.http_status)
        return _row(r, "queued", when, result.error, result.http_status)
    assert_never(result)


def _row(
    r: Row, status: str, when: datetime | None, error: str | None, http_status: int | None
) -> dict[str, Any]:
    if error is not None and len(error) > ERROR_CHARS:
        error = error[:ERROR_CHARS] + "…"
    return {
        "id": r["id"],
        "status": status,
        "next_attempt_at": when,
        "error": error,
        "http_status": http_status,
    }


class EscalationWorker:
    """Claims due deliveries (`FOR UPDATE SKIP LOCKED`, under a lease), sends them, records
    the outcomes; every maintenance interval it also raises the overdue escalations and takes
    back the deliveries of workers that stopped."""

    def __init__(
        self, store: Store, settings: Settings, sender: EscalationSender, worker: str
    ) -> None:
        self.store = store
        self.settings = settings
        self.sender = sender
        self.worker = worker
        self.stopping = asyncio.Event()
        self.in_flight: list[int] = []
        self.sent = 0

    async def upkeep(self) -> None:
        """Raise the overdue escalations; requeue deliveries whose lease ran out."""
        reaped = await self.store.fetch("escalation_deliveries_reap")
        if reaped:
            log.warning("escalation.lease_expired", count=len(reaped))
        await escalations.sweep_overdue(self.store)

    async def step(self) -> int:
        """Claim a batch of due deliveries, send them at once, record them; how many."""
        s = self.settings
        if self.in_flight:  # a batch whose outcome could not be recorded goes again
            await self.store.fetch("escalation_deliveries_release", self.in_flight, self.worker)
            self.in_flight = []
        claimed = await self.store.fetch(
            "escalation_deliveries_claim", s.escalation_batch, s.lease_s, self.worker
        )
        if not claimed:
            return 0
        self.in_flight = [r["id"] for r in claimed]
        results = await asyncio.gather(*(self._send(r) for r in claimed))
        rows = [outcome(r, res, s) for r, res in zip(claimed, results, strict=True)]
        await self.store.fetch(
            "escalation_deliveries_record",
            orjson.dumps(rows, option=orjson.OPT_UTC_Z).decode(),
            self.worker,
        )
        self.in_flight = []
        self.sent += len(rows)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        log.info("escalation.batch", deliveries=len(rows), **counts)
        return len(rows)

    async def _send(self, r: Row) -> SendResult:
        """The sender's result; a sender that raised (a bug in it) counts as retryable, so
        the loop goes on and the attempt is recorded."""
        msg_id = escalations.webhook_id(r["id"])
        try:
            return await self.sender.send(r["url"], r["secret"], msg_id, event_body(r))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("escalation.sender_raised", delivery=r["id"], error=repr(exc), exc_info=exc)
            return Retryable(f"sender failed: {exc!r}")

    async def drain(self) -> int:
        """Sweep once, then deliver until nothing is due (tests); returns deliveries tried."""
        await self.upkeep()
        total = 0
        while n := await self.step():
            total += n
        return total

    async def run(self) -> None:
        """Deliver until `stop()`; store errors are logged and retried after a pause."""
        s = self.settings
        next_upkeep = 0.0
        try:
            while not self.stopping.is_set():
                busy = False
                try:
                    if time.monotonic() >= next_upkeep:
                        await self.upkeep()
                        next_upkeep = time.monotonic() + s.maintenance_interval_s
                    busy = await self.step() >= s.escalation_batch
                except StoreError as exc:
                    log.warning("escalation.store_error", error=str(exc))
                except Exception as exc:  # a bug must not stop escalations for good
                    log.error("escalation.loop_failed", error=repr(exc), exc_info=exc)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), s.poll_interval_s)
        finally:
            await self._release()
            await self.sender.close()

    async def _release(self) -> None:
        if self.in_flight:
            with contextlib.suppress(StoreError):
                await self.store.fetch("escalation_deliveries_release", self.in_flight, self.worker)
            self.in_flight = []

    def stop(self) -> None:
        """Stop after the batch in hand."""
        self.stopping.set()
