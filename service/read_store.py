"""Reads from a streaming replica while it answers and keeps up, from the primary otherwise."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import structlog

from service.store import Row, Store, StoreError, StoreUnavailable, unavailable

log = structlog.get_logger()
T = TypeVar("T")


def replica_fresh(*, standby: bool, caught_up: bool, lag_s: float | None, max_lag_s: float) -> bool:
    """Whether a server may answer reads in the primary's stead. A server out of recovery is a
    primary (a promoted standby, or a copy standing in for one); a standby is fresh when it has
    replayed everything it received while still streaming (an idle primary sends nothing, so
    the age of the last replayed transaction grows without any lag), or when that age is
    within the bound."""
    if not standby or caught_up:
        return True
    return lag_s is not None and lag_s <= max_lag_s


class ReadStore(Store):
    """Named queries for read-only endpoints: on the replica's pool while it is fresh, on the
    primary's when the replica is down or lagging beyond `max_lag_s` (checked every
    `check_every_s` by `watch`, and at once when a connection to it fails)."""

    def __init__(self, primary: Store, *, max_lag_s: float, check_every_s: float) -> None:
        super().__init__(None, primary.queries)
        self._primary = primary
        self._replica: asyncpg.Pool[Any] | None = None
        self._max_lag_s = max_lag_s
        self._check_every_s = check_every_s
        self.fresh = False

    def bind_replica(self, pool: asyncpg.Pool[Any]) -> None:
        """Attach the replica's pool; reads use it from the first check that finds it fresh."""
        self._replica = pool

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        """The primary's pool (what a read falls back to, and what LISTEN uses)."""
        return self._primary.pool

    def _mark(self, fresh: bool, **why: Any) -> None:
        if fresh != self.fresh:
            log.warning("db.replica_fresh" if fresh else "db.replica_unused", **why)
        self.fresh = fresh

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
        conn = await self._replica_connection() if self.fresh else None
        if conn is None:
            async with self._primary.pool.acquire() as primary_conn:
                yield primary_conn
            return
        assert self._replica is not None
        try:
            yield conn
        finally:
            await self._replica.release(conn)

    async def _on_replica(self, read: Callable[[Store], Awaitable[T]]) -> T:
        """Run `read` here; when it went to the replica and lost it (a server stopped under a
        pooled connection fails only when asked), once more on the primary."""
        tried_replica = self.fresh
        try:
            return await read(self)
        except StoreUnavailable as exc:
            if not tried_replica:
                raise
            await self._lost(exc)
        return await read(self._primary)

    async def _lost(self, exc: BaseException) -> None:
        """The replica stopped answering: unused until a check finds it fresh, and its pooled
        connections dropped rather than each failing a read of its own."""
        self._mark(False, error=str(exc) or type(exc).__name__)
        if self._replica is not None:
            await self._replica.expire_connections()

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        """One named query on the replica (or the primary), all rows."""
        return await self._on_replica(lambda store: Store.fetch(store, name, *args))

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        """One named query on the replica (or the primary), first row."""
        return await self._on_replica(lambda store: Store.fetchrow(store, name, *args))

    async def fetchval(self, name: str, *args: Any) -> Any:
        """One named query on the replica (or the primary), first value."""
        return await self._on_replica(lambda store: Store.fetchval(store, name, *args))

    async def stream(
        self, name: str, *args: Any, chunk_rows: int
    ) -> AsyncGenerator[list[Row], None]:
        """`Store.stream` on the replica; on the primary when the replica is lost before the
        first chunk (after it, the export is cut short like any other failure)."""
        tried_replica, started = self.fresh, False
        try:
            async with contextlib.aclosing(
                Store.stream(self, name, *args, chunk_rows=chunk_rows)
            ) as rows:
                async for chunk in rows:
                    started = True
                    yield chunk
            return
        except StoreUnavailable as exc:
            if started or not tried_replica:
                raise
            await self._lost(exc)
        async with contextlib.aclosing(
            self._primary.stream(name, *args, chunk_rows=chunk_rows)
        ) as rows:
            async for chunk in rows:
                yield chunk

    async def _replica_connection(self) -> asyncpg.pool.PoolConnectionProxy[Any] | None:
        """A replica connection, or None (and the replica unused until a check finds it fresh
        again) when it cannot be had within one check interval."""
        assert self._replica is not None
        try:
            return await self._replica.acquire(timeout=self._check_every_s)
        except Exception as exc:
            if not (isinstance(exc, TimeoutError) or unavailable(exc)):
                raise
            await self._lost(exc)
            return None

    async def check(self) -> bool:
        """Ask the replica how far behind it is; whether reads may go to it now."""
        if self._replica is None:
            return False
        try:
            async with asyncio.timeout(self._check_every_s):
                async with self._replica.acquire() as conn:
                    row = await conn.fetchrow(self.queries["replica_freshness"])
        except Exception as exc:
            if not (isinstance(exc, TimeoutError) or unavailable(exc)):
                raise StoreError(str(exc)) from exc
            self._mark(False, error=str(exc) or type(exc).__name__)
            return False
        assert row is not None
        lag_s = row["lag_s"]
        fresh = replica_fresh(
            standby=row["standby"],
            caught_up=row["caught_up"],
            lag_s=lag_s,
            max_lag_s=self._max_lag_s,
        )
        self._mark(fresh, lag_s=None if lag_s is None else round(lag_s, 3))
        return fresh

    async def refresh(self) -> bool:
        """`check`, with a replica that refuses the question (a permission, not a server away)
        logged as an error and left unused."""
        try:
            return await self.check()
        except StoreError as exc:
            log.error("db.replica_check_failed", error=str(exc))
            self._mark(False, error=str(exc))
            return False

    async def watch(self, stop: asyncio.Event) -> None:
        """Check the replica every `check_every_s` until `stop` is set."""
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._check_every_s)
