"""The dispatcher against real Postgres and the in-process simulator."""

from __future__ import annotations

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
