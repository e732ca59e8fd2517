"""The dispatcher against real Postgres and the in-process simulator."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from adapters.registry import build_adapter, validate_config
from service import operators
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens

Client = TestClient[Any, Any]


async def use_simulator(store: Store, **config: Any) -> None:
    for code in operators.DEMO_OPERATORS:
        await operators.set_operator(store, code, "simulator", config, validate_config)


async def file(client: Client, headers: dict[str, str], *targets: tuple[str, str]) -> Any:
    resp = await client.post(
        "/v1/block-requests",
        headers=headers,
        json={
            "case_ref": "FIR-1",
            "category": "olx_marketplace",
            "targets": [{"kind": k, "value": v} for k, v in targets],
        },
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_orders_are_delivered_acked_and_requests_complete(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    await use_simulator(store)
    req = await file(
        client, tokens["investigator"], ("imei", "490154203237518"), ("msisdn", "9811012345")
    )
    d = Dispatcher(store, settings, build_adapter, drain=True)
    await d.run()
    assert d.delivered == 5
    doc = await (
        await client.get(f"/v1/block-requests/{req['id']}", headers=tokens["investigator"])
    ).json()
    assert doc["status"] == "completed"
    assert {t["state"] for t in doc["targets"]} == {"blocked"}
    assert all(
        o["status"] == "acked" and o["ack_status"] == "blocked"
        for t in doc["targets"]
        for o in t["orders"]
    )
    attempts = await store.fetch("audit_all", 0, 1000)
    assert sum(1 for a in attempts if a["action"] == "ack.applied") == 5


async def test_listener_comes_back_after_its_connection_is_killed(
    store: Store, settings: Settings, db_url: str
) -> None:
    import asyncpg

    d = Dispatcher(store, settings, build_adapter)
    woken: list[str] = []
    d.on_notify = woken.append  # type: ignore[method-assign]
    d.listener = await store.listen("fraudblock_orders", d.on_notify)
    try:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
            for _ in range(100):
                if not d.listener.alive:
                    break
                await asyncio.sleep(0.01)
            assert not d.listener.alive
            await d.upkeep()
            assert d.listener.alive
            await conn.execute("SELECT pg_notify('fraudblock_orders', 'jio')")
            for _ in range(100):
                if woken:
                    break
                await asyncio.sleep(0.01)
            assert woken == ["jio"]
        finally:
            await conn.close()
    finally:
        await d.listener.close()


async def test_a_claim_does_not_wait_for_its_flush_and_leaves_the_connection_as_it_was(
    client: Client, tokens: Tokens, store: Store
) -> None:
    """Claims commit without waiting for the WAL flush (the batch's record commits durably);
    the setting is the claim's transaction's alone, never the pooled connection's."""
    await file(client, tokens["investigator"], ("imei", "490154203237518"))  # to every operator
    claim = store.queries["orders_claim"]
    async with store.pool.acquire() as conn:
        async with conn.transaction():  # inside a transaction, to look before it ends
            assert len(await conn.fetch(claim, "jio", 1, 60.0, "w1", False)) == 1
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert len(await conn.fetch(claim, "airtel", 1, 60.0, "w1", False)) == 1  # autocommit
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
