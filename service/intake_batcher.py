"""Group commit for intake: concurrent filings share one transaction and one commit.

Each filing costs Postgres a BEGIN, a commit that waits for its WAL flush, and an audit append,
whatever its size. Under load, the requests that arrive while a lane's transaction is in flight
are filed together in that lane's next one, as if one after another, so those costs are shared.
A request that arrives at a quiet moment goes straight through: nothing waits on a timer.

A filing is answered only after its batch commits. If anything in a batch fails, the batch rolls
back and its filings are filed again one by one, so one bad request (or a deadlock) never fails
the others. A lost database connection fails the whole batch instead: the commit may have landed,
so filing again could file twice (callers repeat safely with an Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import structlog

from service.intake import Filing, IntakeResult, file_in, file_one
from service.store import RetryableConflict, Session, Store, StoreUnavailable

log = structlog.get_logger()

_Item = tuple[Filing, "asyncio.Future[IntakeResult]"]


class IntakeBatcher:
    """`lanes` transactions in flight at most, each filing requests of up to `max_targets`
    targets in all (a larger request goes alone)."""

    def __init__(self, store: Store, *, lanes: int = 2, max_targets: int = 1_000) -> None:
        self._store = store
        self._lanes = lanes
        self._max_targets = max_targets
        self._pending: deque[_Item] = deque()
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        """Start the lanes (in the running event loop)."""
        self._tasks = [
            asyncio.create_task(self._lane(), name=f"intake-lane-{i}") for i in range(self._lanes)
        ]

    async def stop(self, grace_s: float = 10.0) -> None:
        """File what is queued (for up to `grace_s`), then stop the lanes; filings still queued
        after that are refused, never half-filed."""
        self._stopping = True
        self._arrived.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(StoreUnavailable("the service is stopping"))

    async def file(self, filing: Filing) -> IntakeResult:
        """File the request with whatever else is waiting; returns once it is committed."""
        if not self._tasks or self._stopping:
            raise StoreUnavailable("the service is not accepting requests")
        future: asyncio.Future[IntakeResult] = asyncio.get_running_loop().create_future()
        self._pending.append((filing, future))
        self._arrived.set()
        return await future

    async def _lane(self) -> None:
        while True:
            while not self._pending:
                if self._stopping:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            try:
                # while filings keep coming, the lane keeps its connection, and each commit
                # begins the next batch's transaction in the same round trip
                async with self._store.session(generic_plans=True) as session:
                    while self._pending:
                        batch = self._take()
                        try:
                            go_on = await self._file_batch(batch, session)
                        except BaseException:  # cancelled mid-batch: its callers must hear
                            for _, future in batch:
                                _answer(future, StoreUnavailable("the service is stopping"))
                            raise
                        if not go_on:  # the connection may be what failed
                            break
            except StoreUnavailable as exc:  # no connection to be had: the next batch hears it
                if self._pending:
                    for _, future in self._take():
                        _answer(future, exc)

    def _take(self) -> list[_Item]:
        """The next batch: the oldest filing, and those after it up to `max_targets`."""
        batch = [self._pending.popleft()]
        size = len(batch[0][0].targets)
        while self._pending and size + len(self._pending[0][0].targets) <= self._max_targets:
            size += len(self._pending[0][0].targets)
            batch.append(self._pending.popleft())
        return batch

    async def _file_batch(self, batch: list[_Item], session: Session) -> bool:
        """File a batch in one transaction of the session, or else one by one; whether the
        session may go on (not after a lost connection)."""
        try:
            async with session.transaction(begin_next=self._waiting) as tx:
                results = await file_in(tx, [filing for filing, _ in batch])
        except StoreUnavailable as exc:  # the commit may have landed: no second try here
            for _, future in batch:
                _answer(future, exc)
            return False
        except Exception as exc:
            if len(batch) == 1 and not isinstance(exc, RetryableConflict):
                _answer(batch[0][1], exc)
                return True
            if len(batch) > 1:
                log.info("intake.batch_split", size=len(batch), error=type(exc).__name__)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                _answer(future, result)
            return True
        for filing, future in batch:  # each alone, again after a deadlock
            try:
                _answer(future, await file_one(self._store, filing))
            except Exception as exc:
                _answer(future, exc)
        return True

    def _waiting(self) -> bool:
        return bool(self._pending)


def _answer(future: asyncio.Future[IntakeResult], outcome: IntakeResult | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
