"""Remembered tokens: a revocation reaches every service process in its own commit."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service import auth, db
from service.http.context import TOKENS
from service.store import Store
from tests.conftest import Tokens

Client = TestClient[Any, Any]


async def _revoke_elsewhere(db_url: str, token_id: int) -> None:
    """Revoke as `fraudblock token revoke` does: another process, its own connection."""
    pool = await db.create_pool(db_url, 1, 1)
    try:
        await auth.revoke_token(Store(pool), token_id)
    finally:
        await pool.close()


async def _until_refused(client: Client, headers: dict[str, str], within: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if (await client.get("/v1/block-requests", headers=headers)).status == 401:
            return time.monotonic() - start
        await asyncio.sleep(0.005)
    raise AssertionError(f"the revoked token still worked after {within} s")


async def _wait_live(client: Client, within: float = 5.0) -> None:
    cache = client.server.app[TOKENS]
    deadline = time.monotonic() + within
    while not cache.live:
        assert time.monotonic() < deadline, "the token LISTEN did not come back"
        await asyncio.sleep(0.05)


async def test_a_remembered_token_revoked_elsewhere_is_refused_at_once(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    inv = tokens["investigator"]
    await _wait_live(client)
    assert (await client.get("/v1/block-requests", headers=inv)).status == 200
    digest = auth.token_hash(inv["Authorization"].split(" ", 1)[1])
    remembered = client.server.app[TOKENS].get(digest)
    assert remembered is not None  # the next request reads no token row
    assert (await client.get("/v1/block-requests", headers=inv)).status == 200
    await _revoke_elsewhere(db_url, remembered.token_id)
    assert await _until_refused(client, inv, within=1.0) < 0.5
    assert (await client.get("/v1/block-requests", headers=tokens["supervisor"])).status == 200


async def test_while_the_listen_is_down_no_token_is_trusted_from_memory(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    inv = tokens["investigator"]
    await _wait_live(client)
    assert (await client.get("/v1/block-requests", headers=inv)).status == 200
    conn = await asyncpg.connect(db_url)
    try:
        killed = await conn.fetchval(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE datname = current_database() AND query LIKE 'LISTEN%'"""
        )
    finally:
        await conn.close()
    assert killed == 1
    cache = client.server.app[TOKENS]
    digest = auth.token_hash(inv["Authorization"].split(" ", 1)[1])
    deadline = time.monotonic() + 5
    while cache.get(digest) is not None:  # noticed within a check interval, then forgotten
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await _wait_live(client)
    principal = await auth.authenticate(store, inv["Authorization"])
    assert (await client.get("/v1/block-requests", headers=inv)).status == 200
    await _revoke_elsewhere(db_url, principal.token_id)
    assert await _until_refused(client, inv, within=1.0) < 0.5
