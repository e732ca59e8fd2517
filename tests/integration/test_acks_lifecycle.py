"""Acknowledgements, approval, cancellation and unblocking, end to end over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.http.app import create_app
from service.settings import Settings
from tests.conftest import Tokens

Client = TestClient[Any, Any]
IMEI = "490154203237518"
JIO_NUMBER = "7006012345"  # +9170060 is a SAMPLE Jio series
UNKNOWN_NUMBER = "9876543210"  # no series: every operator is asked


async def file(
    client: Client, headers: dict[str, str], *targets: tuple[str, str], **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "case_ref": "FIR-1",
        "category": "fake_loan_app",
        "targets": [{"kind": k, "value": v} for k, v in targets],
    }
    doc.update(extra)
    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def pull(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get("/v1/operator/orders?limit=100", headers=headers)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["orders"])


async def ack(client: Client, headers: dict[str, str], *items: dict[str, Any]) -> list[Any]:
    resp = await client.post("/v1/operator/acks", headers=headers, json={"acks": list(items)})
    assert resp.status == 200, await resp.text()
    return [r["result"] for r in (await resp.json())["results"]]


async def sent_to(store: Any, *operators: str) -> None:
    """The operators take their due orders, as a pull does."""
    for op in operators:
        await store.fetch("orders_pull", op, 100, f"pull:{op}")


async def get(client: Client, headers: dict[str, str], path: str) -> dict[str, Any]:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def test_ack_results_applied_duplicate_conflict_not_found_invalid(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], ("imei", IMEI))
    [jio_order] = await pull(client, tokens["jio"])
    [airtel_order] = await pull(client, tokens["airtel"])
    jid, aid = jio_order["order_id"], airtel_order["order_id"]
    results = await ack(
        client,
        tokens["jio"],
        {"order_id": jid, "status": "blocked", "operator_ref": "J-1"},
        {"order_id": jid, "status": "blocked"},
        {"order_id": jid, "status": "rejected", "reason": "changed our mind"},
        {"order_id": aid, "status": "blocked"},
        {"order_id": jid, "status": "rejected"},
        {"order_id": "x", "status": "blocked"},
        {"order_id": jid, "status": "unblocked"},
    )
    assert results == [
        "applied",
        "duplicate",
        "conflict",
        "not_found",
        "invalid",
        "invalid",
        "invalid",
    ]
    again = await ack(client, tokens["jio"], {"order_id": jid, "status": "blocked"})
    assert again == ["duplicate"]
    target = await get(client, tokens["supervisor"], f"/v1/targets/imei/{IMEI}")
    assert target["operators"]["jio"]["ack_status"] == "blocked"
    assert target["operators"]["jio"]["operator_ref"] == "J-1"
    assert target["state"] == "pending"  # three operators have not answered yet


async def test_handset_blocked_only_when_every_operator_confirmed(
    client: Client, tokens: Tokens, store: Any
) -> None:
    req = await file(client, tokens["investigator"], ("imei", IMEI))
    for who in ("jio", "airtel"):
        [order] = await pull(client, tokens[who])
        await ack(client, tokens[who], {"order_id": order["order_id"], "status": "blocked"})
    ids = {o["operator"]: o["id"] for o in req["targets"][0]["orders"]}
    await sent_to(store, "vi", "bsnl")  # an operator acknowledges only what it was sent
    async with store.transaction() as tx:
        from service import acks

        await acks.apply_acks(
            tx, "vi", [acks.AckItem(ids["vi"], "already_blocked")], actor="t", role="operator"
        )
        await acks.apply_acks(
            tx,
            "bsnl",
            [acks.AckItem(ids["bsnl"], "rejected", "no CEIR")],
            actor="t",
            role="operator",
        )
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["targets"][0]["state"] == "partially_blocked"
    assert doc["status"] == "partially_completed"
    stats = await get(client, tokens["supervisor"], "/v1/stats")
    assert stats["totals"]["handsets"]["partially_blocked"] == 1
    assert stats["totals"]["handsets"]["blocked"] == 0


async def test_not_subscriber_reroutes_then_unroutable(
    client: Client, tokens: Tokens, store: Any
) -> None:
    req = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    [order] = req["targets"][0]["orders"]
    assert order["operator"] == "jio"
    await pull(client, tokens["jio"])
    assert await ack(
        client, tokens["jio"], {"order_id": order["id"], "status": "not_subscriber"}
    ) == ["applied"]
    target = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    asked = {o["operator"] for o in target["orders"]}
    assert asked == {"jio", "airtel", "vi", "bsnl"}
    assert target["state"] == "pending"
    from service import acks

    await sent_to(store, "airtel", "vi", "bsnl")
    async with store.transaction() as tx:
        for o in target["orders"]:
            if o["operator"] != "jio":
                await acks.apply_acks(
                    tx,
                    o["operator"],
                    [acks.AckItem(o["id"], "not_subscriber")],
                    actor="t",
                    role="operator",
                )
    target = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert target["state"] == "unroutable"
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["status"] == "partially_completed"


async def test_blocked_ack_teaches_the_serving_operator(
    client: Client, tokens: Tokens, store: Any
) -> None:
    from service import acks

    first = await file(client, tokens["investigator"], ("msisdn", UNKNOWN_NUMBER))
    orders = {o["operator"]: o["id"] for o in first["targets"][0]["orders"]}
    assert sorted(orders) == ["airtel", "bsnl", "jio", "vi"]
    await sent_to(store, *orders)
    async with store.transaction() as tx:
        for op, oid in orders.items():
            status = "blocked" if op == "airtel" else "not_subscriber"
            await acks.apply_acks(tx, op, [acks.AckItem(oid, status)], actor="t", role="operator")
    target = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{UNKNOWN_NUMBER}")
    assert target["state"] == "blocked"
    supervisor = tokens["supervisor"]
    unblock = await file(
        client,
        supervisor,
        ("msisdn", UNKNOWN_NUMBER),
        action="unblock",
        reason="false positive",
        force=True,
        unit="jammu",
    )
    assert [o["operator"] for o in unblock["targets"][0]["orders"]] == ["airtel"]
    await sent_to(store, "airtel")
    async with store.transaction() as tx:
        oid = unblock["targets"][0]["orders"][0]["id"]
        await acks.apply_acks(
            tx, "airtel", [acks.AckItem(oid, "unblocked")], actor="t", role="operator"
        )
    again = await file(client, tokens["investigator"], ("msisdn", UNKNOWN_NUMBER))
    assert [o["operator"] for o in again["targets"][0]["orders"]] == ["airtel"]


@pytest.fixture
async def approval_client(db_url: str, tmp_path: Path) -> Any:
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        approval_policy="supervisor",
        log_format="console",
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as c:
        yield c


async def test_approval_reject_and_cancel(approval_client: Client, tokens: Tokens) -> None:
    c = approval_client
    req = await file(c, tokens["investigator"], ("imei", IMEI))
    assert req["status"] == "pending_approval"
    assert await pull(c, tokens["jio"]) == []  # nothing is due before approval
    denied = await c.post(f"/v1/block-requests/{req['id']}/approve", headers=tokens["investigator"])
    assert denied.status == 403
    ok = await c.post(f"/v1/block-requests/{req['id']}/approve", headers=tokens["supervisor"])
    assert ok.status == 200 and (await ok.json())["status"] == "dispatching"
    assert len(await pull(c, tokens["jio"])) == 1
    twice = await c.post(f"/v1/block-requests/{req['id']}/approve", headers=tokens["supervisor"])
    assert twice.status == 409

    other = await file(c, tokens["investigator"], ("imei", "356938035643809"))
    no_reason = await c.post(
        f"/v1/block-requests/{other['id']}/reject", headers=tokens["supervisor"], json={}
    )
    assert no_reason.status == 422
    rej = await c.post(
        f"/v1/block-requests/{other['id']}/reject",
        headers=tokens["supervisor"],
        json={"reason": "not enough evidence"},
    )
    assert rej.status == 200
    doc = await rej.json()
    assert doc["status"] == "rejected" and doc["decision_reason"] == "not enough evidence"
    assert all(o["status"] == "cancelled" for o in doc["targets"][0]["orders"])

    third = await file(c, tokens["investigator"], ("msisdn", JIO_NUMBER))
    cancel = await c.post(
        f"/v1/block-requests/{third['id']}/cancel",
        headers=tokens["investigator"],
        json={"reason": "typo"},
    )
    assert cancel.status == 200 and (await cancel.json())["status"] == "cancelled"
    sent = await c.post(f"/v1/block-requests/{req['id']}/cancel", headers=tokens["investigator"])
    assert sent.status == 409  # jio already fetched its order


async def test_unblock_waits_for_every_case_holding_the_target(
    client: Client, tokens: Tokens
) -> None:
    a = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="CASE-A")
    await file(client, tokens["investigator_samba"], ("msisdn", JIO_NUMBER), case_ref="CASE-B")
    [order] = await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{a['id']}")
    assert doc["status"] == "completed"

    held = await file(
        client,
        tokens["investigator"],
        ("msisdn", JIO_NUMBER),
        action="unblock",
        case_ref="CASE-A",
        reason="court order 12/2026",
    )
    t = held["targets"][0]
    assert (
        t["outcome"] == "held"
        and t["held_by"] == [{"unit": "samba", "case_ref": None}]  # not another unit's case
        and t["orders"][0]["action"] == "block"
    )
    missing = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": "CASE-A",
            "category": "other",
            "action": "unblock",
            "targets": [{"kind": "msisdn", "value": JIO_NUMBER}],
        },
    )
    assert missing.status == 422  # an unblock needs a reason
    forced_by_investigator = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": "CASE-A",
            "category": "other",
            "action": "unblock",
            "force": True,
            "reason": "x",
            "targets": [{"kind": "msisdn", "value": JIO_NUMBER}],
        },
    )
    assert forced_by_investigator.status == 403

    released = await file(
        client,
        tokens["investigator_samba"],
        ("msisdn", JIO_NUMBER),
        action="unblock",
        case_ref="CASE-B",
        reason="false positive",
    )
    t = released["targets"][0]
    assert t["outcome"] == "queued"
    assert [(o["operator"], o["action"]) for o in t["orders"]] == [("jio", "unblock")]
    [order] = await pull(client, tokens["jio"])
    assert order["action"] == "unblock"
    assert await ack(
        client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"}
    ) == ["invalid"]
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "unblocked"})
    target = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert target["state"] == "unblocked" and target["action"] == "unblock"
    stats = await get(client, tokens["supervisor"], "/v1/stats?group_by=unit")
    assert stats["totals"]["numbers"]["unblocked"] == 1
    assert stats["totals"]["numbers"]["blocked"] == 0
    assert stats["totals"]["numbers"]["blocked_in_period"] == 1


async def test_dead_orders_are_listed_and_can_be_requeued(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    req = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    oid = req["targets"][0]["orders"][0]["id"]
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE orders SET status = 'dead', dead_at = now(), "
            "last_error = 'HTTP 400: bad msisdn' WHERE id = $1",
            oid,
        )
    finally:
        await conn.close()
    dead = await get(client, tokens["supervisor"], "/v1/dead")
    assert [(o["id"], o["last_error"]) for o in dead["items"]] == [(oid, "HTTP 400: bad msisdn")]
    assert (await client.get("/v1/dead", headers=tokens["investigator"])).status == 403
    resp = await client.post(f"/v1/orders/{oid}/retry", headers=tokens["supervisor"])
    assert resp.status == 202
    assert (
        await client.post(f"/v1/orders/{oid}/retry", headers=tokens["supervisor"])
    ).status == 409
    assert (await get(client, tokens["supervisor"], "/v1/dead"))["items"] == []
    [order] = await pull(client, tokens["jio"])
    assert order["order_id"] == oid
    health = await get(client, tokens["supervisor"], "/v1/operators")
    jio = next(i for i in health["items"] if i["code"] == "jio")
    assert jio["awaiting_ack"] == 1 and jio["breaker_state"] == "closed"  # pulled: sent
    audit = await get(client, tokens["supervisor"], "/v1/audit?action=order.requeued")
    assert [e["entity_id"] for e in audit["items"]] == [str(oid)]


async def test_unblock_before_the_block_was_sent_withdraws_it(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], ("imei", IMEI), case_ref="CASE-W")
    undo = await file(
        client,
        tokens["investigator"],
        ("imei", IMEI),
        case_ref="CASE-W",
        action="unblock",
        reason="false positive",
    )
    t = undo["targets"][0]
    assert t["outcome"] == "not_blocked" and t["state"] == "unblocked"
    assert await pull(client, tokens["jio"]) == []  # nothing to send at all
    target = await get(client, tokens["supervisor"], f"/v1/targets/imei/{IMEI}")
    assert {o["status"] for o in target["orders"]} == {"withdrawn"}
    assert target["state"] == "unblocked"


async def test_overdue_orders_are_listed_and_resent_on_a_schedule(
    client: Client, tokens: Tokens, store: Any, settings: Settings, db_url: str
) -> None:
    from adapters.registry import build_adapter
    from service.dispatcher import Dispatcher

    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    [order] = await pull(client, tokens["jio"])
    oid = order["order_id"]
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE orders SET status = 'sent', lease_expires_at = NULL, "
            "ack_due_at = now() - interval '1 minute' WHERE id = $1",
            oid,
        )
    finally:
        await conn.close()
    listed = await get(client, tokens["supervisor"], "/v1/overdue")
    assert [o["id"] for o in listed["items"]] == [oid]
    dispatcher = Dispatcher(store, settings, build_adapter)
    await dispatcher.upkeep()
    [again] = await pull(client, tokens["jio"])  # re-sent
    assert again["order_id"] == oid and again["attempt"] == 2
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE orders SET ack_due_at = now() - interval '1 minute' WHERE id = $1", oid
        )
    finally:
        await conn.close()
    await dispatcher.upkeep()
    [third] = await pull(client, tokens["jio"])  # and again, every acknowledgement deadline
    assert third["order_id"] == oid and third["attempt"] == 3
    still = await get(client, tokens["supervisor"], "/v1/overdue")
    assert [o["id"] for o in still["items"]] == [oid] and still["items"][0]["overdue_at"]
    health = await get(client, tokens["supervisor"], "/v1/operators")
    assert next(i for i in health["items"] if i["code"] == "jio")["overdue"] == 1
    await ack(client, tokens["jio"], {"order_id": oid, "status": "blocked"})
    assert (await get(client, tokens["supervisor"], "/v1/overdue"))["items"] == []
