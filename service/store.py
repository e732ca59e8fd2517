"""The only module that talks to asyncpg: named queries from queries.sql, in transactions."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, TypeVar

import asyncpg
import structlog

Row = Mapping[str, Any]
Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"
_NAME = re.compile(r"^-- name: ([a-z0-9_]+)\s*$", re.MULTILINE)
T = TypeVar("T")
log = structlog.get_logger()


class StoreError(Exception):
    """A database problem, translated so no driver exception crosses a layer."""


class StoreUnavailable(StoreError):
    """The database cannot be reached."""


class RetryableConflict(StoreError):
    """A deadlock or serialization failure: the whole transaction may be retried."""


class IntegrityConflict(StoreError):
    """A constraint refused the change (unique, foreign key, check)."""


class InvalidValue(StoreError):
    """The database refused a value itself (data exception, class 22): out of range, bad bytes."""


# A statement whose best plan depends on its arguments (a period of a day or of years) says so:
# Postgres then plans it for each call's arguments instead of settling on a generic plan.
CUSTOM_PLAN = "-- plan: custom"
CUSTOM_PLANS = "plan_cache_mode = force_custom_plan"  # the setting that marker asks for
# A hot path's transaction (a filing, a dispatched batch, an operator's acks) plans each of its
# statements once per connection and keeps that plan. Left to choose, Postgres re-plans them on
# every call: a custom plan for one array element is estimated cheaper than the generic plan
# (which assumes ten), so the generic one is never taken, and planning the larger statements
# cost more than running them (about 1.8 ms of a single filing's 5 ms of Postgres CPU). Every
# row these statements touch is reached by key, so they are planned without sequential scans:
# a plan kept from when a table was small (a young database, before autovacuum first analyses
# it) would otherwise go on reading the whole table as it grows.
GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off"


def load_queries(text: str | None = None) -> dict[str, str]:
    """Parse `-- name: x` blocks into a dict of name -> SQL."""
    if text is None:
        text = importlib.resources.files("service").joinpath("queries.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


# the database or the connection to it is going away or not there yet: retry later
_UNAVAILABLE = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state ..." on a dying connection
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.AdminShutdownError,  # 57P01: a fast restart terminates every session
    asyncpg.OperatorInterventionError,  # pg_terminate_backend and the like
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,  # a statement timeout or a cancel by an operator
    asyncpg.TooManyConnectionsError,
)


def _translate(exc: BaseException) -> StoreError:
    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        return RetryableConflict(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityConflict(str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(str(exc))
    if isinstance(exc, asyncpg.DataError):
        return InvalidValue(str(exc))
    return StoreError(str(exc))


_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


def _in_open_transaction(conn: Conn) -> bool:
    """Whether a ROLLBACK is due; a connection the pool already took back (lost with the
    server) has nothing to roll back, and asking it would hide the error that lost it."""
    try:
        return not conn.is_closed() and conn.is_in_transaction()
    except asyncpg.InterfaceError:
        return False


def unavailable(exc: BaseException) -> bool:
    """Whether a driver error means the database cannot be reached (now), not a bad query."""
    return (
        isinstance(_translate(exc), StoreUnavailable) if isinstance(exc, _DRIVER_ERRORS) else False
    )


class Tx:
    """Named queries on one connection (usually inside a transaction)."""

    def __init__(
        self,
        conn: Conn,
        queries: Mapping[str, str],
        generic: bool = False,
        begin_next: Callable[[], bool] | None = None,
    ) -> None:
        self._conn = conn
        self._q = queries
        self._committed = False
        self._generic = generic  # the transaction keeps generic plans (GENERIC_PLANS)
        self._deferred: list[tuple[str, str]] = []  # calls made with the next round trip (defer)
        self._begin_next = begin_next  # asked at the commit: begin the next transaction too?

    def _sql(self, name: str) -> str:
        if self._committed:
            raise StoreError(f"{name}: the transaction was already committed")
        return self._q[name]

    async def _run(self, call: Callable[..., Awaitable[T]], name: str, args: Sequence[Any]) -> T:
        """Run a named statement; one marked `-- plan: custom` is planned for its arguments."""
        sql = self._sql(name)
        await self.flush()
        try:
            if CUSTOM_PLAN not in sql:
                return await call(sql, *args)
            if self._generic:  # back to the transaction's generic plans after this statement
                scope, back = "SET LOCAL", GENERIC_PLANS
            else:
                scope, back = "SET", "RESET plan_cache_mode"
            await self._conn.execute(f"{scope} {CUSTOM_PLANS}")
            try:
                return await call(sql, *args)
            finally:  # (in a transaction that fails, its ROLLBACK undoes the SET too)
                with contextlib.suppress(*_DRIVER_ERRORS):
                    await self._conn.execute(back)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        """All rows of a named query."""
        return list(await self._run(self._conn.fetch, name, args))

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        """The first row of a named query, or None."""
        return await self._run(self._conn.fetchrow, name, args)

    async def fetchval(self, name: str, *args: Any) -> Any:
        """The first column of the first row of a named query."""
        return await self._run(self._conn.fetchval, name, args)

    async def execute(self, name: str, *args: Any) -> str:
        """Run a named statement; returns the command tag."""
        return await self._run(self._conn.execute, name, args)

    def defer(self, function: str, document: str) -> None:
        """Call a one-argument SQL function with a JSON document, a write whose result nobody
        reads, with the transaction's next round trip: before its next statement, or in the
        one that commits. A write just before the commit so costs no round trip of its own."""
        if self._committed or not re.fullmatch(r"[a-z_][a-z0-9_]*", function):
            raise StoreError(f"cannot defer {function!r} here")
        self._deferred.append((function, document))

    async def flush(self) -> None:
        """Make the deferred calls now (the next statement may read what they write)."""
        if self._deferred:
            calls, self._deferred = self._deferred, []
            await self._send(_calls_sql(calls))

    async def commit(self) -> None:
        """Make the deferred calls and COMMIT, in one round trip.

        The last write of a transaction often takes a lock held until the commit (the audit
        chain's head); sending both together keeps the client's own latency out of that window.
        In a Session whose caller has more work waiting, the same round trip begins the next
        transaction.
        """
        if self._committed:
            raise StoreError("the transaction was already committed")
        calls, self._deferred = self._deferred, []
        then = self._begin_next is not None and self._begin_next()
        await self._send(
            _calls_sql(calls) + "COMMIT" + (f"; {_begin(self._generic)}" if then else "")
        )
        self._committed = True

    @property
    def committed(self) -> bool:
        """Whether `commit` ran."""
        return self._committed

    async def _send(self, sql: str) -> None:
        try:
            await self._conn.execute(sql)
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc


def _begin(generic_plans: bool) -> str:
    return f"BEGIN; {GENERIC_PLANS}" if generic_plans else "BEGIN"


def _calls_sql(calls: Sequence[tuple[str, str]]) -> str:
    """`SELECT f(document::json); ...` for each call. The documents travel dollar-quoted under
    a random tag none of them contains."""
    tag = "j" + secrets.token_hex(8)
    while any(f"${tag}$" in document for _, document in calls):
        tag = "j" + secrets.token_hex(8)
    return "".join(f"SELECT {f}(${tag}${document}${tag}$::json); " for f, document in calls)


class Session:
    """Transactions one after another on one pooled connection, for a caller that runs them
    back to back (an intake lane under load). A commit can begin the next transaction in its
    own round trip when the caller says more work is waiting, which saves the next one its
    BEGIN: a round trip that, on a busy event loop, costs as long as a statement."""

    def __init__(self, conn: Conn, queries: Mapping[str, str], generic_plans: bool) -> None:
        self._conn = conn
        self._queries = queries
        self._generic = generic_plans

    @asynccontextmanager
    async def transaction(
        self, *, begin_next: Callable[[], bool] | None = None
    ) -> AsyncIterator[Tx]:
        """A transaction that commits on success (unless `Tx.commit` already did) and rolls
        back on any error. `begin_next`, asked at the commit: whether to begin the next one."""
        conn = self._conn
        if not _in_open_transaction(conn):  # else the last commit began this one
            try:
                await conn.execute(_begin(self._generic))
            except _DRIVER_ERRORS as exc:
                raise _translate(exc) from exc
        tx = Tx(conn, self._queries, self._generic, begin_next)
        try:
            yield tx
            if not tx.committed:
                await tx.commit()
        except BaseException:  # (a failed commit too: the next transaction starts clean)
            if _in_open_transaction(conn):
                with contextlib.suppress(*_DRIVER_ERRORS):
                    await conn.execute("ROLLBACK")
            raise


class Store:
    """The pool and the named queries."""

    def __init__(
        self, pool: asyncpg.Pool[Any] | None = None, queries: Mapping[str, str] | None = None
    ) -> None:
        self._pool = pool
        self.queries = dict(queries or load_queries())

    def bind(self, pool: asyncpg.Pool[Any]) -> None:
        """Attach the pool once the application has started."""
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        """The connection pool; StoreUnavailable before start-up."""
        if self._pool is None:
            raise StoreUnavailable("the database pool is not started")
        return self._pool

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
        """A pooled connection for one unit of work (a read store may choose another pool)."""
        async with self.pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self, *, generic_plans: bool = False) -> AsyncIterator[Tx]:
        """A transaction on a pooled connection; commits on success (unless `Tx.commit`
        already did), rolls back on any error. With generic_plans, a hot path's transaction
        (GENERIC_PLANS), set in the same round trip as the BEGIN."""
        async with (
            self.session(generic_plans=generic_plans) as session,
            session.transaction() as tx,
        ):
            yield tx

    @asynccontextmanager
    async def session(self, *, generic_plans: bool = False) -> AsyncIterator[Session]:
        """One pooled connection for transactions one after another (see Session). A
        transaction a commit began for work that did not come is rolled back at the end."""
        try:
            async with self._acquire() as conn:
                try:
                    yield Session(conn, self.queries, generic_plans)
                finally:
                    if _in_open_transaction(conn):
                        with contextlib.suppress(*_DRIVER_ERRORS):
                            await conn.execute("ROLLBACK")
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def retrying(
        self,
        work: Callable[[Tx], Awaitable[T]],
        *,
        attempts: int = 5,
        what: str = "transaction",
        generic_plans: bool = False,
    ) -> T:
        """Run `work` in a transaction; one that lost a deadlock (or a serialization conflict)
        was rolled back whole and runs again in a new one, up to `attempts` times."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction(generic_plans=generic_plans) as tx:
                    return await work(tx)
            except RetryableConflict as exc:
                if attempt == attempts:
                    raise
                log.info("db.retry_after_conflict", what=what, attempt=attempt, error=str(exc))
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Tx]:
        """A pooled connection without an explicit transaction (autocommit)."""
        try:
            async with self._acquire() as conn:
                tx = Tx(conn, self.queries)
                yield tx
                await tx.flush()
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def stream(
        self, name: str, *args: Any, chunk_rows: int
    ) -> AsyncGenerator[list[Row], None]:
        """A named query's rows, `chunk_rows` at a time, from a server-side cursor in one
        read-only snapshot: memory stays one chunk whatever the number of rows. The connection
        is held until the iteration ends (close it with `contextlib.aclosing`)."""
        sql = self.queries[name]
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        if CUSTOM_PLAN in sql:  # planned for its arguments, as Tx._run does
            begin += f"; SET LOCAL {CUSTOM_PLANS}"
        try:
            async with self._acquire() as conn:
                await conn.execute(begin)
                try:
                    cursor = await conn.cursor(sql, *args)
                    while rows := await cursor.fetch(chunk_rows):
                        yield rows
                finally:
                    if _in_open_transaction(conn):
                        with contextlib.suppress(*_DRIVER_ERRORS):
                            await conn.execute("ROLLBACK")
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

    async def fetch(self, name: str, *args: Any) -> list[Row]:
        """One named query in autocommit."""
        async with self.connection() as tx:
            return await tx.fetch(name, *args)

    async def fetchrow(self, name: str, *args: Any) -> Row | None:
        """One named query in autocommit, first row."""
        async with self.connection() as tx:
            return await tx.fetchrow(name, *args)

    async def fetchval(self, name: str, *args: Any) -> Any:
        """One named query in autocommit, first value."""
        async with self.connection() as tx:
            return await tx.fetchval(name, *args)

    async def listen(
        self, channel: str, callback: Callable[[str], None], timeout_s: float = 10.0
    ) -> Listener:
        """LISTEN on a dedicated pooled connection until the listener is closed; a connection
        that does not answer within `timeout_s` is dropped (StoreUnavailable)."""
        try:
            async with asyncio.timeout(timeout_s):
                conn = await self.pool.acquire()
        except TimeoutError:
            raise StoreUnavailable(f"no connection to LISTEN on within {timeout_s} s") from None
        except _DRIVER_ERRORS as exc:
            raise _translate(exc) from exc

        def on_notify(_c: Any, _pid: int, _channel: str, payload: object) -> None:
            callback(str(payload))

        try:
            async with asyncio.timeout(timeout_s):
                await conn.add_listener(channel, on_notify)
        except (TimeoutError, *_DRIVER_ERRORS) as exc:
            with contextlib.suppress(*_DRIVER_ERRORS):
                conn.terminate()
            with contextlib.suppress(*_DRIVER_ERRORS):
                await self.pool.release(conn)
            if isinstance(exc, TimeoutError):
                raise StoreUnavailable(f"LISTEN {channel} got no answer in {timeout_s} s") from None
            raise _translate(exc) from exc
        return Listener(self, conn, channel, on_notify)


class Listener:
    """A LISTEN that can tell when its connection was lost (a database restart), or stopped
    answering (a half-open connection: the server or the network gone without a word)."""

    def __init__(
        self, store: Store, conn: asyncpg.pool.PoolConnectionProxy[Any], channel: str, handler: Any
    ) -> None:
        self._store, self._conn, self._channel, self._handler = store, conn, channel, handler
        self._broken = False

    @property
    def alive(self) -> bool:
        """False once the connection is gone; notifications stop then, polling goes on."""
        if self._broken:
            return False
        try:
            return not self._conn.is_closed()
        except asyncpg.InterfaceError:  # the pool already took the dead connection back
            return False

    async def ping(self, timeout_s: float) -> bool:
        """Whether the connection still answers within `timeout_s`. A half-open connection
        looks alive until it is asked something; one that fails is dead for good. The question
        is the LISTEN again (a no-op for a session already listening), so the connection
        still reads as a LISTEN to whoever looks at pg_stat_activity."""
        if not self.alive:
            return False
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self._channel):
            raise StoreError(f"cannot ping a LISTEN on {self._channel!r}")
        try:
            async with asyncio.timeout(timeout_s):
                await self._conn.execute(f'LISTEN "{self._channel}"')
        except (TimeoutError, *_DRIVER_ERRORS):
            self._broken = True
            return False
        return True

    async def close(self) -> None:
        """Stop listening and give the connection back."""
        if self._broken:  # UNLISTEN would wait forever on a half-open connection: drop it
            with contextlib.suppress(*_DRIVER_ERRORS):
                self._conn.terminate()
        else:  # the connection may already be broken; it is released either way
            with contextlib.suppress(*_DRIVER_ERRORS):
                await self._conn.remove_listener(self._channel, self._handler)
        with contextlib.suppress(*_DRIVER_ERRORS):
            await self._store.pool.release(self._conn)
