"""Reads that must see what the locks they waited for protected: settling's (the targets, then
their pairs' latest decisions) and an Idempotency-Key's (the key, then its stored response).
Each waits for a lock, then reads in a statement of its own, after the holder has committed."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg

from service import auth, intake
from service.models import BlockRequestIn
from service.store import Store
from tests.conftest import Tokens


async def _waiting_for_a_lock(watcher: asyncpg.Connection[Any], pid: int) -> None:
    """Until backend `pid` waits for a lock (a few seconds at most)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        kind = await watcher.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if kind == "Lock":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the reader never waited for the lock")


async def test_settling_reads_the_orders_as_the_lock_holder_left_them(
    db_url: str, store: Store, tokens: Tokens
) -> None:
    principal = await auth.authenticate(store, tokens["investigator"]["Authorization"])
    req = BlockRequestIn.model_validate(
        {
            "case_ref": "FIR-1/2026",
            "category": "other",
            "targets": [{"kind": "msisdn", "value": "+919810000001"}],
        }
    )
    await intake.file_one(store, intake.prepare(principal, req))
    row = await store.fetchrow("target_get", "msisdn", "+919810000001")
    assert row is not None
    target = row["id"]
    holder, reader, watcher = [await asyncpg.connect(db_url) for _ in range(3)]
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM targets WHERE id = $1 FOR UPDATE", target)
            await holder.execute(
                "UPDATE orders SET status = 'withdrawn' WHERE target_id = $1", target
            )
            read = asyncio.create_task(
                reader.fetch("SELECT * FROM settle_read($1::bigint[])", [target])
            )
            await _waiting_for_a_lock(watcher, reader.get_server_pid())
        rows = await read
        # the target, and no pair: every order of it was withdrawn before the lock came free
        assert [(r["target_id"], r["operator_code"]) for r in rows] == [(target, None)]
    finally:
        for conn in (holder, reader, watcher):
            await conn.close()


async def test_a_key_is_read_after_its_lock_as_its_first_filing_left_it(
    db_url: str, store: Store, tokens: Tokens
) -> None:
    token_id = (await auth.authenticate(store, tokens["investigator"]["Authorization"])).token_id
    holder, reader, watcher = [await asyncpg.connect(db_url) for _ in range(3)]
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT idempotency_lock($1::bigint[], $2::text[])", [token_id], ["k"]
            )
            await holder.execute(
                "SELECT idempotency_put($1::json)",
                json.dumps(
                    [
                        {
                            "token_id": token_id,
                            "key": "k",
                            "body_hash": "00",
                            "request_id": 1,
                            "response": {"id": 1},
                        }
                    ]
                ),
            )
            read = asyncio.create_task(
                reader.fetch(
                    "SELECT * FROM idempotency_claim($1::bigint[], $2::text[])", [token_id], ["k"]
                )
            )
            await _waiting_for_a_lock(watcher, reader.get_server_pid())
        (row,) = await read
        assert (row["key"], bytes(row["body_hash"]), row["response"]) == ("k", b"\x00", '{"id": 1}')
    finally:
        for conn in (holder, reader, watcher):
            await conn.close()
