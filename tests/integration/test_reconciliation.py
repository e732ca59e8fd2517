"""Reconciliation over real HTTP: the blocklist an operator is expected to hold (full and
changes), and its own list compared with it, with a simulated operator receiving the
re-queued orders."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from adapters import signing
from adapters.registry import build_adapter, validate_config
from adapters.simulator_server import SIMULATOR_STATE, SimulatorSettings, create_simulator_app
from service import operators
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import eventually

Client = TestClient[Any, Any]
A, B, C, D = "+917006012341", "+917006012342", "+917006012343", "+917006012344"  # jio series


async def file(client: Client, headers: dict[str, str], *values: str, **extra: Any) -> Any:
    doc = {
        "case_ref": "FIR-60/2026",
        "category": "olx_marketplace",
        "targets": [{"kind": "msisdn", "value": v} for v in values],
        **extra,
    }
    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def pull(client: Client, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    resp = await client.get("/v1/operator/orders", headers=headers)
    assert resp.status == 200, await resp.text()
    return {o["value"]: o for o in (await resp.json())["orders"]}


async def ack(client: Client, headers: dict[str, str], *items: tuple[int, str]) -> None:
    acks = [{"order_id": i, "status": s} for i, s in items]
    resp = await client.post("/v1/operator/acks", headers=headers, json={"acks": acks})
    assert resp.status == 200, await resp.text()
    assert {r["result"] for r in (await resp.json())["results"]} == {"applied"}


async def get(client: Client, headers: dict[str, str], path: str, status: int = 200) -> Any:
    resp = await client.get(path, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def reconcile(client: Client, headers: dict[str, str], *values: str, **extra: Any) -> Any:
    doc = {"items": [{"kind": "msisdn", "value": v} for v in values], **extra}
    resp = await client.post("/v1/operator/reconciliation", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def blocked_world(client: Client, tokens: Tokens) -> None:
    """A and B blocked at jio, C retained (not blocked), D on its way."""
    await file(client, tokens["investigator"], A, B, C)
    got = await pull(client, tokens["jio"])
    await ack(
        client,
        tokens["jio"],
        (got[A]["order_id"], "blocked"),
        (got[B]["order_id"], "disconnected"),
        (got[C]["order_id"], "retained"),
    )
    await file(client, tokens["investigator"], D, case_ref="FIR-61/2026")


async def test_the_blocklist_is_what_the_operator_confirmed_full_or_as_changes(
    client: Client, tokens: Tokens
) -> None:
    await blocked_world(client, tokens)
    full = await get(client, tokens["jio"], "/v1/operator/blocklist")
    assert full["full"] is True and full["operator"] == "jio"
    assert full["items"] == [{"kind": "msisdn", "value": A}, {"kind": "msisdn", "value": B}]
    cursor = full["cursor"]
    assert (full["more"], full["next"]) == (False, None)
    first = await get(client, tokens["jio"], "/v1/operator/blocklist?limit=1")
    assert first["items"] == [{"kind": "msisdn", "value": A}] and first["more"] is True
    assert first["cursor"] == cursor
    assert (await get(client, tokens["airtel"], "/v1/operator/blocklist"))["items"] == []
    await file(
        client, tokens["investigator"], A, action="unblock", reason="court order (W.P. 12/2026)"
    )
    undo = (await pull(client, tokens["jio"]))[A]
    assert undo["action"] == "unblock"
    await ack(client, tokens["jio"], (undo["order_id"], "unblocked"))
    delta = await get(client, tokens["jio"], f"/v1/operator/blocklist?since={cursor}")
    assert delta["full"] is False and delta["items"] is None
    assert [(c["value"], c["change"]) for c in delta["changes"]] == [(A, "removed")]
    assert delta["cursor"] == delta["changes"][0]["seq"] > cursor
    again = await get(client, tokens["jio"], f"/v1/operator/blocklist?since={delta['cursor']}")
    assert (again["changes"], again["cursor"], again["more"]) == ([], delta["cursor"], False)
    everything = await get(client, tokens["jio"], "/v1/operator/blocklist?since=0&limit=2")
    assert {(c["value"], c["change"]) for c in everything["changes"]} == {
        (A, "added"),
        (B, "added"),
    }
    assert everything["more"] is True
    imeis = await get(client, tokens["jio"], "/v1/operator/blocklist?kind=imei")
    assert imeis["items"] == []
    full = await get(client, tokens["jio"], "/v1/operator/blocklist")
    assert full["items"] == [{"kind": "msisdn", "value": B}]
    # a page read after the unblock still belongs to the list as of its first page
    await get(client, tokens["jio"], "/v1/operator/blocklist?after=bm90LWEtdG9rZW4", status=422)
    later = await get(
        client, tokens["jio"], f"/v1/operator/blocklist?limit=1&after={first['next']}"
    )
    assert later["items"] == [{"kind": "msisdn", "value": B}] and later["cursor"] == cursor
    assert (later["more"], later["next"]) == (False, None)
    await get(client, tokens["investigator"], "/v1/operator/blocklist", status=403)


async def test_a_reconciliation_requeues_the_missing_and_lists_the_unexpected(
    client: Client, tokens: Tokens, store: Store
) -> None:
    await blocked_world(client, tokens)
    run = await reconcile(client, tokens["jio"], A, "+917006019999", D, "12", kind="msisdn")
    assert (run["operator"], run["listed"], run["matched"]) == ("jio", 3, 1)
    assert run["missing"] == [{"kind": "msisdn", "value": B}]
    assert run["unexpected"] == [{"kind": "msisdn", "value": "+917006019999"}]
    assert run["in_transit"] == [{"kind": "msisdn", "value": D}]  # its order is still queued
    assert [(i["index"], i["value"]) for i in run["invalid"]] == [(3, "12")]
    [requeued] = run["requeued"]
    got = await pull(client, tokens["jio"])
    again = got[B]
    assert (again["order_id"], again["action"], again["reason"]) == (
        requeued,
        "block",
        "reconciliation",
    )
    assert again["case_ref"] == "FIR-60/2026"
    target = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{B}")
    assert target["state"] == "pending"
    assert target["operators"]["jio"]["reason"] == "reconciliation"
    await ack(client, tokens["jio"], (requeued, "already_blocked"), (got[D]["order_id"], "blocked"))
    target = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{B}")
    assert target["state"] == "blocked"
    # the operator's list now matches: nothing missing, nothing sent again
    clean = await reconcile(client, tokens["jio"], A, B, D)
    assert (clean["matched"], clean["missing"], clean["unexpected"], clean["requeued"]) == (
        3,
        [],
        [],
        [],
    )
    page = await get(client, tokens["supervisor"], "/v1/reconciliations?operator=jio")
    assert [r["id"] for r in page["items"]] == [clean["id"], run["id"]]
    assert page["items"][1]["unexpected"] == run["unexpected"]
    assert page["items"][1]["requeued"] == [requeued]
    await get(client, tokens["jio"], "/v1/reconciliations", status=403)
    audited = [
        a for a in await store.fetch("audit_all", 0, 1000) if a["action"] == "reconciliation.run"
    ]
    assert [(a["entity_id"], a["details"]["missing"]) for a in audited] == [
        (str(run["id"]), 1),
        (str(clean["id"]), 0),
    ]


async def test_a_simulated_operator_gets_the_missing_block_again(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    secret = signing.generate_secret()
    sim = TestServer(create_simulator_app(SimulatorSettings(secret=secret)), host="127.0.0.1")
    await sim.start_server()
    try:
        config = {"url": str(sim.make_url("/orders")), "secret": secret}
        await operators.set_operator(store, "jio", "http_json", config, validate_config)
        await file(client, tokens["investigator"], A, B)
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        # the operator lost B and holds an extra number
        run = await reconcile(client, tokens["jio"], A, "+917006010000")
        assert run["missing"] == [{"kind": "msisdn", "value": B}]
        assert run["unexpected"] == [{"kind": "msisdn", "value": "+917006010000"}]
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        state = sim.app[SIMULATOR_STATE]
        entry = state.answers[str(run["requeued"][0])]
    finally:
        await sim.close()
    assert entry.order is not None
    assert (entry.order.value, entry.order.reason) == (B, "reconciliation")
    full = await get(client, tokens["jio"], "/v1/operator/blocklist")
    assert [i["value"] for i in full["items"]] == [A, B]
    target = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{B}")
    assert target["state"] == "blocked"


async def test_changes_are_numbered_in_commit_order_so_a_cursor_misses_none(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    await file(client, tokens["investigator"], A, B)
    got = await pull(client, tokens["jio"])
    acked = "UPDATE orders SET status = 'acked', ack_status = 'blocked' WHERE id = $1"
    early, late = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        await early.execute("BEGIN")
        await early.execute(acked, got[B]["order_id"])  # B's change is made first ...
        await late.execute("BEGIN")
        second = asyncio.create_task(late.execute(acked, got[A]["order_id"]))

        async def waiting() -> bool:
            return bool(
                await early.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
            )

        await eventually(waiting, "the second change to wait for the first's commit")
        assert not second.done()
        await early.execute("COMMIT")  # ... and committed first
        await second
        seen = await get(client, tokens["jio"], "/v1/operator/blocklist?since=0")
        assert [c["value"] for c in seen["changes"]] == [B]
        await late.execute("COMMIT")
    finally:
        await early.close()
        await late.close()
    rest = await get(client, tokens["jio"], f"/v1/operator/blocklist?since={seen['cursor']}")
    assert [c["value"] for c in rest["changes"]] == [A]


async def test_a_push_operator_lists_what_awaits_its_ack_and_cannot_pull(
    client: Client, tokens: Tokens, store: Store, settings: Settings, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    await operators.set_operator(
        store, "jio", "file_drop", {"outbox": str(outbox)}, validate_config
    )
    req = await file(client, tokens["investigator"], A, B)
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    resp = await client.get("/v1/operator/orders", headers=tokens["jio"])
    assert resp.status == 409
    assert "pushed (file_drop)" in (await resp.json())["detail"]
    first = await get(client, tokens["jio"], "/v1/operator/unacknowledged?limit=1")
    [one] = first["orders"]
    assert first["next_after"] == one["order_id"]
    rest = await get(client, tokens["jio"], f"/v1/operator/unacknowledged?after={one['order_id']}")
    [two] = rest["orders"]
    assert rest["next_after"] is None
    assert {one["value"], two["value"]} == {A, B}
    assert one["request_id"] == req["id"] and one["attempt"] == 1 and one["sent_at"]
    await ack(client, tokens["jio"], (one["order_id"], "outgoing_barred"))
    again = await get(client, tokens["jio"], "/v1/operator/unacknowledged")  # nothing was taken
    assert [(o["order_id"], o["stage"]) for o in again["orders"]] == [
        (one["order_id"], "outgoing_barred"),
        (two["order_id"], None),
    ]
    await ack(client, tokens["jio"], (one["order_id"], "blocked"), (two["order_id"], "blocked"))
    assert (await get(client, tokens["jio"], "/v1/operator/unacknowledged"))["orders"] == []
    assert (await get(client, tokens["airtel"], "/v1/operator/orders")) == {"orders": []}


async def test_an_ack_for_an_order_never_sent_is_refused(client: Client, tokens: Tokens) -> None:
    req = await file(client, tokens["investigator"], A)
    [order] = req["targets"][0]["orders"]
    resp = await client.post(
        "/v1/operator/acks",
        headers=tokens["jio"],
        json={"acks": [{"order_id": order["id"], "status": "blocked"}]},
    )
    [result] = (await resp.json())["results"]
    assert (result["result"], result["reason"]) == (
        "conflict",
        "this order was never sent to the operator",
    )
    await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], (order["id"], "blocked"))
