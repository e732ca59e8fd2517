"""Staged outcomes: outgoing barred, incoming barred, re-verification pending, then
disconnected (blocked) or retained (the subscriber re-verified), over real HTTP and with the
operator simulator posting its acks back to the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import signing
from adapters.registry import build_adapter, validate_config
from adapters.simulator_server import SIMULATOR_STATE, SimulatorSettings, create_simulator_app
from service import auth, operators
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import eventually

Client = TestClient[Any, Any]
JIO_NUMBER = "7006012345"  # +9170060 is a SAMPLE Jio series: only jio is asked
E164 = "+917006012345"


async def file(client: Client, headers: dict[str, str], *values: str, **extra: Any) -> Any:
    doc = {
        "case_ref": "FIR-5",
        "category": "kyc_update",
        "targets": [{"kind": "msisdn", "value": v} for v in values],
        **extra,
    }
    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def pull(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get("/v1/operator/orders", headers=headers)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["orders"])


async def ack(client: Client, headers: dict[str, str], *items: dict[str, Any]) -> list[str]:
    resp = await client.post("/v1/operator/acks", headers=headers, json={"acks": list(items)})
    assert resp.status == 200, await resp.text()
    return [r["result"] for r in (await resp.json())["results"]]


async def get(client: Client, headers: dict[str, str], path: str) -> Any:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def numbers(client: Client, headers: dict[str, str]) -> dict[str, int]:
    return dict((await get(client, headers, "/v1/stats"))["totals"]["numbers"])


async def test_stages_keep_the_target_pending_then_retained_is_counted_apart(
    client: Client, tokens: Tokens, store: Store
) -> None:
    req = await file(client, tokens["investigator"], JIO_NUMBER)
    [order] = await pull(client, tokens["jio"])
    oid = order["order_id"]
    # an ack's `at` lies within the clock skew allowed around the send, and before now
    barred = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    later = barred + timedelta(seconds=30)
    assert await ack(
        client,
        tokens["jio"],
        {"order_id": oid, "status": "outgoing_barred", "at": barred.isoformat()},
        {"order_id": oid, "status": "outgoing_barred", "at": barred.isoformat()},
        {"order_id": oid, "status": "incoming_barred", "at": later.isoformat()},
    ) == ["applied", "duplicate", "applied"]
    assert await ack(client, tokens["jio"], {"order_id": oid, "status": "incoming_barred"}) == [
        "duplicate"
    ]
    target = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert target["state"] == "pending"
    latest = target["operators"]["jio"]
    assert (latest["status"], latest["stage"]) == ("sent", "incoming_barred")
    assert latest["stage_at"] == later.isoformat().replace("+00:00", "Z")
    assert target["operator_states"]["jio"] == "pending_block"
    assert await ack(
        client, tokens["jio"], {"order_id": oid, "status": "reverification_pending"}
    ) == ["applied"]
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["status"] == "dispatching"
    assert doc["targets"][0]["orders"][0]["stage"] == "reverification_pending"

    assert await ack(client, tokens["jio"], {"order_id": oid, "status": "retained"}) == ["applied"]
    target = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert target["state"] == "retained"
    assert target["operator_states"]["jio"] == "retained"
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["status"] == "completed"  # a re-verified subscriber is an outcome, not a failure
    counts = await numbers(client, tokens["supervisor"])
    assert (counts["retained"], counts["blocked"], counts["pending"]) == (1, 0, 0)
    stats = await get(client, tokens["supervisor"], "/v1/stats")
    assert stats["summary"].endswith("; 1 number retained after re-verification")
    by_operator = await get(client, tokens["supervisor"], "/v1/stats?group_by=operator")
    assert by_operator["totals"]["numbers"]["retained"] == 1
    # a stage already recorded stays a duplicate; another final answer is a conflict
    assert await ack(
        client,
        tokens["jio"],
        {"order_id": oid, "status": "outgoing_barred"},
        {"order_id": oid, "status": "retained"},
        {"order_id": oid, "status": "disconnected"},
    ) == ["duplicate", "duplicate", "conflict"]
    stages = [
        (a["details"]["stage"], a["entity_id"])
        for a in await store.fetch("audit_all", 0, 1000)
        if a["action"] == "ack.stage"
    ]
    assert stages == [
        ("outgoing_barred", str(oid)),
        ("incoming_barred", str(oid)),
        ("reverification_pending", str(oid)),
    ]


async def test_disconnected_counts_as_blocked_and_an_unblock_reaches_the_operator(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], JIO_NUMBER)
    [order] = await pull(client, tokens["jio"])
    oid = order["order_id"]
    assert await ack(
        client,
        tokens["jio"],
        {"order_id": oid, "status": "outgoing_barred"},
        {"order_id": oid, "status": "disconnected"},
    ) == ["applied", "applied"]
    # a stage first reported after the final answer is refused
    assert await ack(client, tokens["jio"], {"order_id": oid, "status": "incoming_barred"}) == [
        "conflict"
    ]
    target = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert (target["state"], target["operator_states"]["jio"]) == ("blocked", "blocked")
    assert target["operators"]["jio"]["stage"] == "outgoing_barred"
    counts = await numbers(client, tokens["supervisor"])
    assert (counts["blocked"], counts["retained"]) == (1, 0)
    await file(client, tokens["investigator"], JIO_NUMBER, action="unblock", reason="court order")
    [undo] = await pull(client, tokens["jio"])
    assert (undo["action"], undo["instruction"], undo["value"]) == ("unblock", "unblock", E164)


async def test_stages_answer_only_block_orders(client: Client, tokens: Tokens) -> None:
    await file(client, tokens["investigator"], JIO_NUMBER)
    [order] = await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})
    await file(client, tokens["investigator"], JIO_NUMBER, action="unblock", reason="court order")
    [undo] = await pull(client, tokens["jio"])
    resp = await client.post(
        "/v1/operator/acks",
        headers=tokens["jio"],
        json={
            "acks": [
                {"order_id": undo["order_id"], "status": "incoming_barred"},
                {"order_id": undo["order_id"], "status": "retained"},
                {"order_id": undo["order_id"], "status": "barred"},
            ]
        },
    )
    results = (await resp.json())["results"]
    assert [r["result"] for r in results] == ["invalid", "invalid", "invalid"]
    assert results[0]["reason"] == "incoming_barred does not answer a unblock order"


async def test_a_stage_gives_a_slow_order_more_time(
    client: Client, tokens: Tokens, store: Store
) -> None:
    await file(client, tokens["investigator"], JIO_NUMBER)
    [order] = await pull(client, tokens["jio"])
    conn_sql = "UPDATE orders SET ack_due_at = now() - interval '1 s', due_at = now() WHERE id = $1"
    async with store.pool.acquire() as conn:
        await conn.execute(conn_sql, order["order_id"])
        assert await ack(
            client,
            tokens["jio"],
            {"order_id": order["order_id"], "status": "reverification_pending"},
        ) == ["applied"]
        row = await conn.fetchrow(
            "SELECT status, ack_due_at > now() + interval '1 hour' AS later,"
            " order_overdue(status, due_at, ack_due_at, overdue_at) AS overdue"
            " FROM orders WHERE id = $1",
            order["order_id"],
        )
    assert dict(row) == {"status": "sent", "later": True, "overdue": False}
    assert await store.fetch("orders_overdue_resend") == []


@pytest.mark.parametrize("outcome", ["retained", "disconnected"])
async def test_the_simulator_walks_a_reverify_order_through_its_stages(
    outcome: str, db_url: str, tmp_path: Path, store: Store
) -> None:
    from service.http.app import create_app

    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        log_format="console",
        direct_block_min_rank="SP",
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        _, jio = await auth.create_token(store, role="operator", name="jio", operator="jio")
        _, si = await auth.create_token(
            store, role="investigator", name="si", unit="jammu", officer="R. Kumar", rank="SI"
        )
        _, sup = await auth.create_token(store, role="supervisor", name="sup")
        secret = signing.generate_secret()
        sim_settings = SimulatorSettings(
            secret=secret,
            ack_url=str(client.make_url("/v1/operator/acks")),
            token=jio,
            ack_flush_ms=5,
            reverify_outcome=outcome,  # type: ignore[arg-type]
        )
        sim = TestServer(create_simulator_app(sim_settings), host="127.0.0.1")
        await sim.start_server()
        try:
            await operators.set_operator(
                store,
                "jio",
                "http_json",
                {"url": str(sim.make_url("/orders")), "secret": secret},
                validate_config,
            )
            req = await file(client, {"Authorization": f"Bearer {si}"}, JIO_NUMBER)
            await Dispatcher(store, settings, build_adapter, drain=True).run()
            state = sim.app[SIMULATOR_STATE]
            headers = {"Authorization": f"Bearer {sup}"}

            async def settled() -> bool:
                doc = await get(client, headers, f"/v1/block-requests/{req['id']}")
                return bool(doc["status"] == "completed")

            await eventually(settled, "the simulator's staged acks")

            async def all_sent() -> bool:
                return not state.pending_acks

            await eventually(all_sent, "the simulator's ack bookkeeping")
        finally:
            await sim.close()
        target = await get(client, headers, f"/v1/targets/msisdn/{JIO_NUMBER}")
        counts = await numbers(client, headers)
    assert state.acks_sent == 4 and state.acks_dropped == 0
    assert target["state"] == ("retained" if outcome == "retained" else "blocked")
    assert target["operators"]["jio"]["ack_status"] == outcome
    assert target["operators"]["jio"]["stage"] == "reverification_pending"
    assert counts["retained"] == (1 if outcome == "retained" else 0)
    assert counts["blocked"] == (0 if outcome == "retained" else 1)
    rows = await store.fetch("audit_all", 0, 1000)
    assert [a["details"]["stage"] for a in rows if a["action"] == "ack.stage"] == [
        "outgoing_barred",
        "incoming_barred",
        "reverification_pending",
    ]
