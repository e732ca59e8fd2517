"""Read-only endpoints on a read replica (DATABASE_READ_URL), the primary when it is gone.

A second database of the test server stands in for the replica, reached through a loopback
proxy that can be stopped: its contents differ from the primary's, so every answer shows
which of the two gave it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from service.http.app import create_app
from service.read_store import replica_fresh
from service.settings import Settings
from tests.conftest import TEMPLATE, Tokens, _with_database, body
from tests.integration.pg_proxy import pg_proxy

Client = TestClient[Any, Any]
NUMBER = "9876543210"


@pytest.fixture
async def replica_url(db_url: str, server_url: str, template_url: str) -> AsyncIterator[str]:
    """A second migrated database, empty of requests, standing in for the replica."""
    name = urlsplit(db_url).path.lstrip("/") + "_replica"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    finally:
        await admin.close()
    yield _with_database(server_url, name)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def _stop(server_url: str, replica_url: str) -> None:
    """The replica's server goes away: its sessions end and it takes no new ones."""
    name = urlsplit(replica_url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()


async def _listed(client: Client, headers: dict[str, str]) -> list[int]:
    resp = await client.get("/v1/block-requests", headers=headers)
    assert resp.status == 200, await resp.text()
    return [r["id"] for r in (await resp.json())["items"]]


async def test_reads_go_to_the_replica_and_to_the_primary_once_it_stops(
    settings: Settings, tokens: Tokens, server_url: str, replica_url: str
) -> None:
    sup = tokens["supervisor"]
    replica = pg_proxy(replica_url)
    proxy = await replica.__aenter__()
    stopped: bool | None = None
    try:
        read_url = proxy.proxied_url()
        app = create_app(
            settings.model_copy(
                update={"database_read_url": read_url, "read_check_interval_s": 0.2}
            )
        )
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            filed = await client.post(
                "/v1/block-requests", headers=tokens["investigator"], json=body(("msisdn", NUMBER))
            )
            assert filed.status == 201
            rid = (await filed.json())["id"]
            # reading one's own write stays on the primary
            assert (await client.get(f"/v1/block-requests/{rid}", headers=sup)).status == 200
            # lists, exports and look-ups answer from the replica, which has no request
            assert await _listed(client, sup) == []
            export = await client.get("/v1/block-requests.csv", headers=sup)
            assert len((await export.text()).splitlines()) == 1
            lookup = await client.get(f"/v1/targets/msisdn/{NUMBER}", headers=sup)
            assert lookup.status == 404
            assert (await client.get("/v1/stats?group_by=unit", headers=sup)).status == 200

            # the replica's server stops: the same reads answer from the primary
            stopped = await replica.__aexit__(None, None, None)
            await _stop(server_url, replica_url)
            with capture_logs() as logs:
                assert await _listed(client, sup) == [rid]
            assert any(e["event"] == "db.replica_unused" for e in logs), logs
            export = await client.get("/v1/block-requests.csv", headers=sup)
            assert export.status == 200 and len((await export.text()).splitlines()) == 2
            lookup = await client.get(f"/v1/targets/msisdn/{NUMBER}", headers=sup)
            assert lookup.status == 200
    finally:
        if stopped is None:
            await replica.__aexit__(None, None, None)


async def test_a_replica_down_from_the_start_leaves_every_read_to_the_primary(
    settings: Settings, tokens: Tokens
) -> None:
    down = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    app = create_app(settings.model_copy(update={"database_read_url": down}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        filed = await client.post(
            "/v1/block-requests", headers=tokens["investigator"], json=body(("msisdn", NUMBER))
        )
        rid = (await filed.json())["id"]
        assert await _listed(client, tokens["supervisor"]) == [rid]
        audit = await client.get("/v1/audit", headers=tokens["supervisor"])
        assert audit.status == 200 and (await audit.json())["items"]


@pytest.mark.parametrize(
    ("standby", "caught_up", "lag_s", "fresh"),
    [
        (False, False, None, True),  # a primary (promoted, or a copy standing in)
        (True, True, 3600.0, True),  # idle primary: nothing to replay, the age grows
        (True, False, 1.0, True),  # replaying, within the bound
        (True, False, 60.0, False),  # behind beyond the bound
        (True, False, None, False),  # never replayed a transaction, not caught up
    ],
)
def test_which_replica_is_fresh_enough(
    standby: bool, caught_up: bool, lag_s: float | None, fresh: bool
) -> None:
    assert replica_fresh(standby=standby, caught_up=caught_up, lag_s=lag_s, max_lag_s=5.0) == fresh
