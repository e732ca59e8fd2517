"""Writes a transaction defers (Tx.defer) go with its next round trip: a later statement of
the transaction sees them, the commit carries them, a rollback drops them, and one that fails
fails the commit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from service import db
from service.store import IntegrityConflict, Store, StoreError

SETUP = """
CREATE TABLE probe (v text PRIMARY KEY);
CREATE FUNCTION probe_put(doc json) RETURNS void LANGUAGE sql AS
    $$ INSERT INTO probe SELECT json_array_elements_text(doc) $$;
"""
# every function the service defers, read from its source so that a new one is checked too
DEFERRED = sorted(
    {
        name
        for source in (Path(__file__).parents[2] / "service").rglob("*.py")
        for name in re.findall(r'\.defer\(\s*"([a-z_]+)"', source.read_text("utf-8"))
    }
)
QUERIES = {"probe_values": "SELECT coalesce(array_agg(v ORDER BY v), '{}') FROM probe"}


async def _committed(db_url: str) -> list[str]:
    """What another session sees."""
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetchval(QUERIES["probe_values"]))
    finally:
        await conn.close()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(SETUP)
    finally:
        await conn.close()
    pool = await db.create_pool(db_url, 1, 1)
    yield Store(pool, QUERIES)
    await pool.close()


async def test_a_deferred_write_rides_the_commit(store: Store, db_url: str) -> None:
    async with store.transaction() as tx:
        tx.defer("probe_put", '["a", "b"]')
        assert await _committed(db_url) == []
    assert await _committed(db_url) == ["a", "b"]


async def test_a_later_statement_sees_what_was_deferred(store: Store, db_url: str) -> None:
    async with store.transaction() as tx:
        tx.defer("probe_put", '["a"]')
        assert await tx.fetchval("probe_values") == ["a"]
        tx.defer("probe_put", '["$j$ b"]')  # a document with dollar quotes in it
        tx.defer("probe_put", '["c"]')
        await tx.commit()  # every deferred call, in order, then COMMIT
    assert await _committed(db_url) == ["$j$ b", "a", "c"]


async def test_a_rollback_drops_the_deferred_writes(store: Store, db_url: str) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            tx.defer("probe_put", '["a"]')
            raise RuntimeError("changed our mind")
    assert await _committed(db_url) == []
    async with store.transaction() as tx:  # the connection is clean for the next one
        assert await tx.fetchval("probe_values") == []


async def test_a_failing_deferred_write_fails_the_commit(store: Store, db_url: str) -> None:
    async with store.transaction() as tx:
        tx.defer("probe_put", '["a"]')
    with pytest.raises(IntegrityConflict):
        async with store.transaction() as tx:
            tx.defer("probe_put", '["b"]')
            tx.defer("probe_put", '["a"]')  # already there: the commit is refused
    assert await _committed(db_url) == ["a"]


async def test_without_a_transaction_the_writes_go_before_the_connection_does(
    store: Store, db_url: str
) -> None:
    async with store.connection() as tx:
        tx.defer("probe_put", '["a"]')
    assert await _committed(db_url) == ["a"]


async def test_only_a_plain_function_name_is_deferred(store: Store) -> None:
    async with store.transaction() as tx:
        with pytest.raises(StoreError):
            tx.defer("probe_put(NULL); DROP TABLE probe; SELECT probe_put", "[]")


async def test_the_functions_the_service_defers_are_not_parsed_again_at_each_call(
    db_url: str,
) -> None:
    """A deferred call travels as text with the COMMIT, so it is planned at every call; planning
    a call of a LANGUAGE sql function parses its whole body to see whether it can be inlined
    (sql/0026). A PL/pgSQL function is never inlined and keeps its statements' plans."""
    assert {"audit_append", "targets_settle", "routes_learn", "idempotency_put"} <= set(DEFERRED)
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT p.proname, l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.proname = ANY($1::text[])",
            DEFERRED,
        )
    finally:
        await conn.close()
    assert {r["proname"]: r["lanname"] for r in rows} == dict.fromkeys(DEFERRED, "plpgsql")
