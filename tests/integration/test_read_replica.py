"""Read-only endpoints on a read replica (DATABASE_READ_URL), the primary when it is gone.

A second database of the test server stands in for the replica, reached through a loopback
proxy that can be stopped: its contents differ from the primary's, so every answer shows
which of the two gave it. Then a real streaming standby (pg_basebackup of an embedded primary,
as bench.failover makes it) is read from while it keeps up, and left alone while it lags.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from bench.failover import primary_and_standby
from service import auth, db
from service.http.app import create_app
from service.http.context import READS
from service.read_store import ReadStore, replica_fresh
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens, body, migrated_database
from tests.integration.dispatch_kit import eventually
from tests.integration.pg_proxy import pg_proxy

Client = TestClient[Any, Any]
NUMBER = "9876543210"


@pytest.fixture
async def replica_url(db_url: str, server_url: str, template_url: str) -> AsyncIterator[str]:
    """A second migrated database, empty of requests, standing in for the replica."""
    name = urlsplit(db_url).path.lstrip("/") + "_replica"
    async with migrated_database(server_url, name) as url:
        yield url


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


async def test_a_streaming_standby_is_read_while_it_keeps_up_and_not_once_it_lags(
    tmp_path: Path,
) -> None:
    with primary_and_standby() as (both, server, standby_dir):
        primary_url = f"postgresql://postgres@/postgres?host={server.pgdata}"
        standby_url = f"postgresql://postgres@/postgres?host={standby_dir}"
        settings = Settings(
            database_url=both,  # several hosts, target_session_attrs=read-write
            database_read_url=standby_url,
            data_dir=tmp_path,
            run_dispatcher=False,
            log_format="console",
            read_check_interval_s=0.1,
            read_max_lag_s=0.3,
        )
        app = create_app(settings)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            pool = await db.create_pool(primary_url, 1, 2)
            try:
                _, secret = await auth.create_token(
                    Store(pool), role="investigator", name="t", unit="jammu"
                )
            finally:
                await pool.close()
            headers = {"Authorization": f"Bearer {secret}"}
            reads = app[READS]
            assert isinstance(reads, ReadStore)

            async def file(number: str) -> int:
                resp = await client.post(
                    "/v1/block-requests", headers=headers, json=body(("msisdn", number))
                )
                assert resp.status == 201, await resp.text()
                return int((await resp.json())["id"])

            first = await file(NUMBER)

            async def replayed() -> bool:
                return await _listed(client, headers) == [first]

            # an idle standby that has replayed everything is fresh, however old its last replay
            await eventually(reads.check, "the caught-up standby is read from")
            await eventually(replayed, "the standby replays the first request")

            standby = await asyncpg.connect(standby_url)
            try:
                await standby.execute("SELECT pg_wal_replay_pause()")
                second = await file("9876543211")

                async def stale() -> bool:
                    return not reads.fresh

                await eventually(stale, "a standby behind by more than the bound is left alone")
                # the primary answers: the standby has not replayed the second request yet
                assert await _listed(client, headers) == [second, first]
                assert not await standby.fetchval(
                    "SELECT count(*) FROM block_requests WHERE id = $1", second
                )
                await standby.execute("SELECT pg_wal_replay_resume()")

                async def fresh() -> bool:
                    return reads.fresh

                await eventually(fresh, "the standby is read from again once it catches up")
                assert await _listed(client, headers) == [second, first]
            finally:
                await standby.close()
