"""A session's transactions one after another on one connection: a commit asked to begin the
next transaction does so in its own round trip, that transaction keeps the session's plan
settings, and one begun for work that never came is rolled back before the connection goes
back to the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from service import db
from service.store import Row, Store, StoreError

QUERIES = {
    # how long ago this transaction began, and how it plans
    "begun": "SELECT extract(epoch FROM statement_timestamp() - now()) * 1000 AS ms_ago, "
    "current_setting('plan_cache_mode') AS mode",
    "note": "INSERT INTO notes (n) VALUES ($1)",
    "broken": "SELECT 1 / 0",
}
PAUSE_MS = 100  # between two transactions of a session


def _begun(row: Row | None) -> tuple[float, str]:
    assert row is not None
    return float(row["ms_ago"]), row["mode"]


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("CREATE TABLE notes (n int PRIMARY KEY)")
    finally:
        await conn.close()
    pool = await db.create_pool(db_url, 1, 1)  # one connection: what it is left in shows
    try:
        yield Store(pool, QUERIES)
    finally:
        await pool.close()


async def _notes(db_url: str) -> list[int]:
    conn = await asyncpg.connect(db_url)  # from outside: only what was committed
    try:
        return [r["n"] for r in await conn.fetch("SELECT n FROM notes ORDER BY n")]
    finally:
        await conn.close()


async def test_a_commit_begins_the_next_transaction_when_more_work_waits(
    store: Store, db_url: str
) -> None:
    async with store.session(generic_plans=True) as session:
        async with session.transaction(begin_next=lambda: True) as tx:
            await tx.execute("note", 1)
        await asyncio.sleep(PAUSE_MS / 1000)
        async with session.transaction(begin_next=lambda: False) as tx:
            # this transaction began with the last commit, the pause ago
            ms_ago, mode = _begun(await tx.fetchrow("begun"))
            assert ms_ago >= PAUSE_MS * 0.9 and mode == "force_generic_plan"
            assert await _notes(db_url) == [1]  # the first one is committed
            await tx.execute("note", 2)
        await asyncio.sleep(PAUSE_MS / 1000)
        async with session.transaction() as tx:
            ms_ago, mode = _begun(await tx.fetchrow("begun"))  # a BEGIN of its own
            assert ms_ago < PAUSE_MS * 0.9 and mode == "force_generic_plan"
    assert await _notes(db_url) == [1, 2]


async def test_a_transaction_begun_for_work_that_never_came_is_rolled_back(
    store: Store, db_url: str
) -> None:
    async with (
        store.session(generic_plans=True) as session,
        session.transaction(begin_next=lambda: True) as tx,
    ):
        await tx.execute("note", 1)
    await asyncio.sleep(PAUSE_MS / 1000)
    # the pool's one connection is back outside any transaction, planning as before
    async with store.connection() as tx:
        ms_ago, mode = _begun(await tx.fetchrow("begun"))
        assert ms_ago < PAUSE_MS * 0.9 and mode == "auto"
    assert await _notes(db_url) == [1]


async def test_a_failed_transaction_in_a_session_leaves_it_usable(
    store: Store, db_url: str
) -> None:
    async with store.session(generic_plans=True) as session:
        async with session.transaction(begin_next=lambda: True) as tx:
            await tx.execute("note", 1)
        with pytest.raises(StoreError):  # fails in the transaction the commit began
            async with session.transaction(begin_next=lambda: True) as tx:
                await tx.execute("note", 2)
                await tx.fetchrow("broken")
        async with session.transaction() as tx:
            _, mode = _begun(await tx.fetchrow("begun"))
            assert mode == "force_generic_plan"
            await tx.execute("note", 3)
    assert await _notes(db_url) == [1, 3]
