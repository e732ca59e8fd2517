"""The dispatcher: one lane per operator claims due orders, delivers them and records outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from service import authority, blocklist_files, delivery, intake, settlement, stats
from service.authority import Rank
from service.ports import OperatorAdapter, OutboundOrder
from service.settings import Settings
from service.store import Listener, Row, Store, StoreError, StoreUnavailable, Tx

log = structlog.get_logger()
AdapterFactory = Callable[[str, str, dict[str, Any]], OperatorAdapter]
ORDERS_CHANNEL = "fraudblock_orders"  # the channel queries.sql notifies on
LISTEN_PING_S = 5.0  # a LISTEN connection that does not answer in this long is replaced


def default_worker_id() -> str:
    """host:pid, unique enough to tell workers apart in attempts and leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lane:
    """Delivers one operator's orders, one batch at a time; a batch the operator took is
    recorded while the next one goes."""

    def __init__(self, dispatcher: Dispatcher, operator: Row, adapter: OperatorAdapter) -> None:
        self.d = dispatcher
        self.operator = operator
        self.code: str = operator["code"]
        self.adapter = adapter
        self.wake = asyncio.Event()
        self.in_flight: list[int] = []  # the orders it holds: being delivered or recorded
        self._recording: asyncio.Task[bool] | None = None  # the last batch's record, running on
        self.claimed_at = datetime.now(UTC)
        self.asked = 0  # orders the last claim asked for
        self.emptied = False  # the last batch was short: the queue was empty behind it
        self.retired = False
        self.orphans = False  # a store error may have left orders leased to this lane

    def update(self, operator: Row) -> None:
        """Take new limits and breaker state from the operators table."""
        self.operator = operator
        if operator["breaker_state"] == "closed":
            self.wake.set()

    def retire(self) -> None:
        """Stop after the current batch (the operator was reconfigured or disabled)."""
        self.retired = True
        self.wake.set()

    async def run(self) -> None:
        """Loop until the dispatcher stops; errors are logged and retried after a pause.
        Each batch's record runs on while the lane claims and delivers the next one."""
        try:
            while not self.d.stopping.is_set() and not self.retired:
                # cleared before claiming, so a NOTIFY that arrives mid-batch is not lost
                self.wake.clear()
                self.emptied = False
                try:
                    if self.orphans:
                        await self._release_orphans()
                    did = await self.step(overlap=True)
                except StoreError as exc:
                    log.warning("dispatch.store_error", operator=self.code, error=str(exc))
                    await self._end_recording()
                    # a claim whose answer was lost, or a batch whose record was, leaves orders
                    # leased to this lane that it no longer holds: once the database answers
                    # again, they go back to the queue
                    self.orphans = True
                    self.in_flight = []
                    did = False
                # after a short batch the queue was empty: a claim now would find nothing, so
                # wait for a NOTIFY (one that came during the batch has set `wake` already)
                if not did or self.emptied:
                    await self._pause(self.d.settings.poll_interval_s)
        finally:
            await self._end_recording()
            if self.retired:
                await self.adapter.close()

    async def _end_recording(self) -> None:
        """Let the record in progress finish, its failure logged, not raised: the lane stops,
        or starts over after a store error (its orders then come back as orphans). A lane
        that was cancelled abandons it instead (the dispatcher releases its orders)."""
        task, self._recording = self._recording, None
        if task is None:
            return
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):
            log.warning("dispatch.record_failed", operator=self.code, error=repr(outcome))

    async def recorded(self) -> bool:
        """Wait for the batch being recorded, if any; whether it went without failures. A
        store error that stopped its record is raised here."""
        task, self._recording = self._recording, None
        return True if task is None else await task

    async def _release_orphans(self) -> None:
        """Give back the orders leased to this lane (its operator, this worker) that it does
        not hold: the lane is the only holder of such leases, so none is in anyone's hands."""
        released = await self.d.store.fetch(
            "orders_release_orphans", self.code, self.d.worker, self.in_flight
        )
        self.orphans = False
        if released:
            log.warning("dispatch.orphans_released", operator=self.code, count=len(released))

    async def _pause(self, seconds: float) -> None:
        if self.d.drain:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                stop = asyncio.ensure_future(self.d.stopping.wait())
                wake = asyncio.ensure_future(self.wake.wait())
                try:
                    await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                    wake.cancel()

    async def _breaker_allows(self) -> tuple[bool, bool]:
        """(may claim, is a half-open probe); read from Postgres, so every worker obeys it."""
        state = await self.d.store.fetchval("breaker_state", self.code)
        if state == "closed":
            self.operator = {**self.operator, "breaker_state": state}
            return True, False
        got = await self.d.store.fetchval(
            "breaker_try_half_open", self.code, self.d.settings.lease_s
        )
        self.operator = {**self.operator, "breaker_state": got or state}
        if got == "half_open":
            log.info("breaker.half_open", operator=self.code)
            return True, True
        return False, False

    async def _claim(self) -> list[Row] | None:
        """A batch; None when the rate limit says wait. The limit is the operator's, shared
        by every worker (its token bucket is in Postgres); unused tokens go back."""
        want = min(self.adapter.max_batch, self.d.settings.claim_batch)
        if self.operator["rate_limit_per_s"] <= 0:
            return await self._claim_up_to(want)
        tokens = await self.d.store.fetchrow("operator_take_tokens", self.code, want)
        assert tokens is not None
        n = tokens["granted"]
        if n == 0:
            await asyncio.sleep(tokens["wait_s"])
            return None
        claimed = await self._claim_up_to(n)
        if len(claimed) < n:
            await self.d.store.fetch("operator_return_tokens", self.code, n - len(claimed))
        return claimed

    async def _claim_up_to(self, n: int) -> list[Row]:
        """Up to `n` due orders. The claim itself honours a closed breaker; only when it finds
        nothing is the breaker asked about a half-open probe."""
        s = self.d.settings
        self.claimed_at = datetime.now(UTC)
        self.asked = n
        claimed = await self.d.store.fetch(
            "orders_claim", self.code, n, s.lease_s, self.d.worker, False
        )
        if claimed:
            self.operator = {**self.operator, "breaker_state": "closed"}
            return claimed
        _, probe = await self._breaker_allows()
        if not probe:
            return []
        self.claimed_at = datetime.now(UTC)
        self.asked = 1
        claimed = await self.d.store.fetch(
            "orders_claim", self.code, 1, s.lease_s, self.d.worker, True
        )
        if not claimed:  # nothing due to probe with: open again, ready to probe on the next claim
            await self.d.store.fetchval("breaker_probe_unused", self.code)
            self.operator = {**self.operator, "breaker_state": "open"}
        return claimed

    async def step(self, *, overlap: bool = False) -> bool:
        """Claim and deliver one batch, then record it; False when there was nothing to do or
        the batch failed. With `overlap`, a batch the operator took whole under a closed
        breaker is recorded on in the background while the lane claims and delivers the next one,
        so an order that arrives meanwhile is not kept waiting for the record; only one
        record runs at a time, in the order the batches went. A batch with a failure, or a
        half-open probe, is recorded before the next claim, so the breaker it moves stops that
        claim as before."""
        claimed = await self._claim()
        if claimed is None:
            return True
        if not claimed:
            await self.recorded()
            return False
        s = self.d.settings
        orders = outbound(claimed, self.code, s.direct_block_min_rank)
        self.in_flight = [*self.in_flight, *(o.order_id for o in orders)]
        renew = asyncio.create_task(self._renew_leases())
        sending = time.monotonic()
        try:
            tried = await delivery.deliver(self.adapter, orders, s)
        finally:
            await delivery.cancelled_safely(renew)
        await self.recorded()
        self.emptied = len(claimed) < self.asked
        recording = self._record_batch(claimed, tried, sending)
        closed = self.operator["breaker_state"] == "closed"
        if not (overlap and closed and delivery.went_through(tried)):
            return await recording
        self._recording = asyncio.create_task(recording, name=f"record:{self.code}")
        return True

    async def _record_batch(
        self, claimed: list[Row], tried: delivery.Tried, sending: float
    ) -> bool:
        """Record a delivered batch and follow its outcome; whether it went without failures."""
        done = await self._record(claimed, tried)
        counts, failed, state = done.counts, done.failed, done.breaker
        recorded = {r["id"] for r in claimed}
        self.in_flight = [i for i in self.in_flight if i not in recorded]
        if state is not None and state != self.operator["breaker_state"]:
            log.info("breaker.changed", operator=self.code, state=state)
            if state == "closed":  # the operator is back: what waits out a backoff goes now
                due = await self.d.store.fetchval("orders_due_now", self.code)
                log.info("breaker.backlog_due", operator=self.code, orders=due)
        if state is not None:
            self.operator = {**self.operator, "breaker_state": state}
        log.info("dispatch.batch", operator=self.code, orders=len(claimed), **counts)
        if self.d.on_batch is not None:
            self.d.on_batch(self.code, len(claimed), counts, time.monotonic() - sending)
        self.d.delivered += len(claimed)
        return not failed

    async def _record(self, claimed: list[Row], tried: delivery.Tried) -> delivery.Recorded:
        """Record a delivered batch. An operator's acks for the same orders can arrive through
        the API while this runs, and the two may deadlock; the loser here is rolled back
        whole and recorded again, so no attempt goes unrecorded."""

        async def record(tx: Tx) -> delivery.Recorded:
            return await delivery.record(
                tx, self.operator, claimed, tried, self.d.worker, self.d.settings
            )

        # while the database is away (a restart, a failover), keep the batch's outcome and try
        # again for half a lease, rather than leave its orders to come back when it runs out
        give_up = time.monotonic() + self.d.settings.lease_s / 2
        while True:
            try:
                return await self.d.store.retrying(
                    record, what=f"dispatch.record:{self.code}", generic_plans=True
                )
            except StoreUnavailable as exc:
                if time.monotonic() > give_up or self.d.stopping.is_set():
                    raise
                log.warning("dispatch.record_waiting_for_database", operator=self.code,
                            error=str(exc))  # fmt: skip
                await asyncio.sleep(0.5)

    async def _renew_leases(self) -> None:
        s = self.d.settings
        while True:
            await asyncio.sleep(s.lease_s / 3)
            try:
                await self.d.store.fetch(
                    "orders_renew_lease", self.in_flight, self.d.worker, s.lease_s
                )
            except StoreError as exc:  # keep the batch; the next renewal may get through
                log.warning("order.lease_renew_failed", operator=self.code, error=str(exc))


# a batch's operator, size, outcomes, and seconds from sending it to its outcome being recorded
BatchObserver = Callable[[str, int, Mapping[str, int], float], None]


def outbound(rows: Sequence[Row], operator: str, min_rank: Rank | None) -> list[OutboundOrder]:
    """Claimed orders as their operator receives them, each with the authority behind it."""
    return [
        OutboundOrder(
            r["id"],
            operator,
            r["action"],
            r["kind"],
            r["value"],
            r["urgent"],
            r["attempts"],
            r["seq"] or 0,
            request_id=a.request_id,
            unit=a.unit,
            case_ref=a.case_ref,
            category=a.category,
            legal_basis=a.legal_basis,
            officer_name=a.officer_name,
            officer_rank=a.officer_rank,
            instruction=a.instruction,
            reason=r["reason"],
        )
        for r, a in zip(rows, authority.for_rows(rows, min_rank), strict=True)
    ]


class Dispatcher:
    """Runs a lane per pushing operator, wakes them on NOTIFY, and does periodic upkeep."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        build_adapter: AdapterFactory,
        *,
        worker: str | None = None,
        drain: bool = False,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.store = store
        self.on_batch = on_batch  # told each batch's operator, size, outcomes, time (metrics)
        self.settings = settings
        self.build_adapter = build_adapter
        self.worker = worker or settings.worker_id or default_worker_id()
        self.drain = drain
        self.stopping = asyncio.Event()
        self.listener: Listener | None = None
        self.lanes: dict[str, Lane] = {}
        self.retired: list[Lane] = []
        self.delivered = 0
        self._configs: dict[str, tuple[str, Any]] = {}

    async def refresh_operators(self) -> Mapping[str, Lane]:
        """Create, reconfigure or drop lanes to match the operators table."""
        rows = {r["code"]: r for r in await self.store.fetch("dispatch_operators")}
        for code in list(self.lanes):
            if code not in rows or self._configs[code] != (
                rows[code]["adapter_kind"],
                rows[code]["adapter_config"],
            ):
                # its task finishes the batch in hand with the old adapter, then closes it
                lane = self.lanes.pop(code)
                lane.retire()
                self.retired.append(lane)
        for code, row in rows.items():
            if code in self.lanes:
                self.lanes[code].update(row)
                continue
            adapter = self.build_adapter(row["adapter_kind"], code, row["adapter_config"])
            if adapter.pushes:
                self.lanes[code] = Lane(self, row, adapter)
                self._configs[code] = (row["adapter_kind"], row["adapter_config"])
            else:
                await adapter.close()
        return self.lanes

    def on_notify(self, payload: str) -> None:
        """Wake the lanes named in a NOTIFY payload (comma-separated codes)."""
        for code in payload.split(","):
            lane = self.lanes.get(code)
            if lane is not None:
                lane.wake.set()

    async def upkeep(self) -> None:
        """Return expired leases, re-send unanswered orders, withdraw superseded ones, declare
        the too old dead, fold counters, refresh operators, write due blocklist files."""
        reaped = await self.store.fetch("orders_reap_expired")
        if reaped:
            log.warning("order.lease_expired", count=len(reaped))
            self.on_notify(",".join({r["operator_code"] for r in reaped}))
        overdue = await self.store.fetch("orders_overdue_resend")
        if overdue:
            log.warning("order.overdue_resent", count=len(overdue))
            self.on_notify(",".join({r["operator_code"] for r in overdue}))
        withdrawn = await self.store.fetch("orders_withdraw_superseded")
        if withdrawn:
            log.info("order.superseded_withdrawn", count=len(withdrawn))
        expired = await settlement.expire(self.store, self.settings.max_order_age_s)
        if expired:
            log.warning("order.expired", count=expired)
        if self.listener is not None and not await self.listener.ping(LISTEN_PING_S):
            log.warning("dispatch.listen_reconnecting")
            await self.listener.close()
            self.listener = await self.store.listen(ORDERS_CHANNEL, self.on_notify)
        started = time.perf_counter()
        folded, kept = await stats.compact(self.store)
        if folded:  # its time: a fold runs in one burst, beside the hot paths
            ms = round((time.perf_counter() - started) * 1000, 1)
            log.info("counts.compacted", folded=folded, kept=kept, ms=ms)
        await self.refresh_operators()
        adapters = {code: lane.adapter for code, lane in self.lanes.items()}
        await blocklist_files.publish_due(self.store, adapters, self.settings)
        await intake.purge_idempotency_keys(self.store, self.settings.idempotency_window_s)

    async def run(self) -> None:
        """Run until `stop()`; with drain=True, return once every queue is empty."""
        await self.refresh_operators()
        self.listener = await self.store.listen(ORDERS_CHANNEL, self.on_notify)
        try:
            if self.drain:
                await self.run_until_empty()
                return
            await self._run_forever()
        finally:
            await self.listener.close()
            for lane in [*self.lanes.values(), *self.retired]:
                await lane.adapter.close()

    async def _run_forever(self) -> None:
        tasks: dict[Lane, asyncio.Task[None]] = {}
        try:
            while not self.stopping.is_set():
                for lane, task in list(tasks.items()):
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        log.error(
                            "dispatch.lane_crashed",
                            operator=lane.code,
                            error=repr(task.exception()),
                        )
                    if task.done() and lane.retired:
                        del tasks[lane]
                        self.retired.remove(lane)
                        await lane.adapter.close()  # closing twice is harmless
                for lane in self.lanes.values():
                    if lane not in tasks or tasks[lane].done():
                        tasks[lane] = asyncio.create_task(lane.run(), name=f"lane:{lane.code}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.stopping.wait(), self.settings.maintenance_interval_s
                    )
                if not self.stopping.is_set():
                    try:
                        await self.upkeep()
                    except StoreError as exc:
                        log.warning("dispatch.upkeep_failed", error=str(exc))
        finally:
            await self._finish(tasks)

    async def _finish(self, tasks: Mapping[Lane, asyncio.Task[None]]) -> None:
        """Let in-flight batches finish within the grace period, then release the rest."""
        self.stopping.set()
        if tasks:
            _, late = await asyncio.wait(tasks.values(), timeout=self.settings.shutdown_grace_s)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for lane in {*self.lanes.values(), *tasks}:
            if not lane.in_flight:
                continue
            with contextlib.suppress(StoreError):
                await self.store.fetch(
                    "orders_release", lane.in_flight, self.worker, lane.claimed_at
                )
            log.info("dispatch.released", operator=lane.code, count=len(lane.in_flight))
            lane.in_flight = []

    async def run_until_empty(self) -> int:
        """Deliver until no lane can claim anything (tests and benchmarks); returns orders sent."""
        await self.store.fetch("orders_reap_expired")
        while True:
            # each lane drains at its own pace: a slow operator does not hold the others back
            results = await asyncio.gather(*(_drain(lane) for lane in self.lanes.values()))
            if not any(results):
                return self.delivered

    def stop(self) -> None:
        """Stop claiming; in-flight batches finish or are released."""
        self.stopping.set()


async def _drain(lane: Lane) -> bool:
    """Step one lane until it has nothing to do; whether it did anything."""
    did = False
    while await lane.step():
        did = True
    return did
