"""How the store asks Postgres to plan: hot transactions keep generic plans made without
sequential scans, statements marked `-- plan: custom` are planned per call, and neither setting
outlives its transaction or statement on a pooled connection."""

from __future__ import annotations

import pytest

from service import db
from service.store import Row, Store, StoreError

QUERIES = {
    "planning": "SELECT current_setting('plan_cache_mode') AS mode, "
    "current_setting('enable_seqscan') AS seqscan",
    "planning_custom": "-- plan: custom\nSELECT current_setting('plan_cache_mode') AS mode, "
    "current_setting('enable_seqscan') AS seqscan",
}


def _settings(row: Row | None) -> tuple[str, str]:
    assert row is not None
    return row["mode"], row["seqscan"]


async def test_a_hot_transaction_keeps_generic_plans_and_gives_them_back(db_url: str) -> None:
    pool = await db.create_pool(db_url, 1, 1)  # one connection: what leaks would show
    try:
        store = Store(pool, QUERIES)
        async with store.transaction(generic_plans=True) as tx:
            assert _settings(await tx.fetchrow("planning")) == ("force_generic_plan", "off")
            # a statement marked custom is planned for its arguments, then the
            # transaction's generic plans are back for the next one
            assert _settings(await tx.fetchrow("planning_custom"))[0] == "force_custom_plan"
            assert _settings(await tx.fetchrow("planning")) == ("force_generic_plan", "off")
        assert _settings(await store.fetchrow("planning")) == ("auto", "on")
        async with store.transaction() as tx:
            assert _settings(await tx.fetchrow("planning")) == ("auto", "on")
            assert _settings(await tx.fetchrow("planning_custom"))[0] == "force_custom_plan"
            assert _settings(await tx.fetchrow("planning")) == ("auto", "on")
        assert _settings(await store.fetchrow("planning_custom"))[0] == "force_custom_plan"
        assert _settings(await store.fetchrow("planning")) == ("auto", "on")
    finally:
        await pool.close()


async def test_a_failed_hot_transaction_leaves_the_connection_as_it_was(db_url: str) -> None:
    pool = await db.create_pool(db_url, 1, 1)
    try:
        store = Store(pool, {**QUERIES, "broken": "SELECT 1 / 0"})
        with pytest.raises(StoreError):
            async with store.transaction(generic_plans=True) as tx:
                await tx.fetchrow("broken")
        assert _settings(await store.fetchrow("planning")) == ("auto", "on")
    finally:
        await pool.close()
