"""Remembered tokens: a revocation reaches every service process in its own commit."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from service import auth, db
from service.http.app import create_app
from service.http.context import TOKENS
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.pg_proxy import pg_proxy

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


async def _sql(db_url: str, statement: str, *args: Any) -> str:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.execute(statement, *args)
    finally:
        await conn.close()


async def _remembered(client: Client, headers: dict[str, str]) -> int:
    """Use a token until the service remembers it; its id."""
    await _wait_live(client)
    assert (await client.get("/v1/block-requests", headers=headers)).status == 200
    digest = auth.token_hash(headers["Authorization"].split(" ", 1)[1])
    remembered = client.server.app[TOKENS].get(digest)
    assert remembered is not None
    return remembered.token_id


async def test_a_token_revoked_or_deleted_in_sql_is_refused_at_once(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    inv = tokens["investigator"]
    token_id = await _remembered(client, inv)
    await _sql(db_url, "UPDATE tokens SET revoked_at = now() WHERE id = $1", token_id)
    assert await _until_refused(client, inv, within=1.0) < 0.5

    _, fresh = await auth.create_token(store, role="supervisor", name="short-lived")
    sup = {"Authorization": f"Bearer {fresh}"}
    token_id = await _remembered(client, sup)
    assert await _sql(db_url, "DELETE FROM tokens WHERE id = $1", token_id) == "DELETE 1"
    assert await _until_refused(client, sup, within=1.0) < 0.5
    assert (await client.get("/v1/block-requests", headers=tokens["supervisor"])).status == 200


async def test_a_half_open_listen_connection_is_noticed_within_seconds(
    tokens: Tokens, settings: Settings, db_url: str
) -> None:
    async with pg_proxy(db_url) as proxy:
        s = settings.model_copy(update={"database_url": proxy.proxied_url()})
        async with TestClient(TestServer(create_app(s), host="127.0.0.1")) as client:
            inv = tokens["investigator"]
            await _remembered(client, inv)
            cache = client.server.app[TOKENS]
            digest = auth.token_hash(inv["Authorization"].split(" ", 1)[1])
            proxy.freeze()  # every open connection, the LISTEN among them, stops answering
            frozen = time.monotonic()
            try:
                while cache.live or cache.get(digest) is not None:
                    assert time.monotonic() - frozen < 4.0, "a half-open LISTEN went unnoticed"
                    await asyncio.sleep(0.05)
                noticed = time.monotonic() - frozen
            finally:
                proxy.thaw()
            await _wait_live(client)
            token_id = await _remembered(client, inv)
            await _sql(db_url, "UPDATE tokens SET revoked_at = now() WHERE id = $1", token_id)
            assert await _until_refused(client, inv, within=1.0) < 0.5
    print(f"half-open LISTEN noticed after {noticed:.2f} s")
    assert noticed < 3.0
