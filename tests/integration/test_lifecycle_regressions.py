"""The block/unblock lifecycle's promises, one failure each: what every operator ends up
holding equals the latest decision, holds are per case, nothing stays unfinished."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.registry import build_adapter
from service import auth
from service.dispatcher import Dispatcher
from service.http.app import create_app
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import ack_all, fail, fake_operator, use_http_json
from tests.integration.test_acks_lifecycle import IMEI, JIO_NUMBER, ack, file, get, pull

Client = TestClient[Any, Any]
VI_NUMBER = "9811000001"  # +9198110 is a SAMPLE Vi series
OPERATORS = ("airtel", "bsnl", "jio", "vi")


async def operator_tokens(store: Store) -> dict[str, dict[str, str]]:
    """A bearer header for each of the four operators."""
    out = {}
    for code in OPERATORS:
        _, token = await auth.create_token(store, role="operator", name=code, operator=code)
        out[code] = {"Authorization": f"Bearer {token}"}
    return out


async def unblock(
    client: Client, headers: dict[str, str], target: tuple[str, str], reason: str, **extra: Any
) -> dict[str, Any]:
    """File an unblock request (case C1 unless told otherwise)."""
    extra.setdefault("case_ref", "C1")
    return await file(client, headers, target, action="unblock", reason=reason, **extra)


async def block_everywhere(client: Client, tokens: Tokens, ops: dict[str, Any]) -> int:
    """File a block for the handset and let all four operators confirm it; its request id."""
    req = await file(client, tokens["investigator"], ("imei", IMEI), case_ref="C1")
    for code in OPERATORS:
        [order] = await pull(client, ops[code])
        assert await ack(client, ops[code], {"order_id": order["order_id"], "status": "blocked"})
    return int(req["id"])


async def handsets_blocked(client: Client, tokens: Tokens) -> int:
    doc = await get(client, tokens["supervisor"], "/v1/stats")
    return int(doc["totals"]["handsets"]["blocked"])


async def target(client: Client, tokens: Tokens) -> dict[str, Any]:
    return await get(client, tokens["supervisor"], f"/v1/targets/imei/{IMEI}")


async def test_a_cancelled_unblock_leaves_the_target_blocked(
    client: Client, tokens: Tokens, store: Store
) -> None:
    ops = await operator_tokens(store)
    await block_everywhere(client, tokens, ops)
    assert await handsets_blocked(client, tokens) == 1
    undo = await unblock(
        client, tokens["investigator"], ("imei", IMEI), "court order", case_ref="C1"
    )
    assert undo["targets"][0]["outcome"] == "queued"
    cancel = await client.post(
        f"/v1/block-requests/{undo['id']}/cancel", headers=tokens["investigator"], json={}
    )
    assert cancel.status == 200, await cancel.text()
    t = await target(client, tokens)
    assert t["state"] == "blocked" and t["action"] == "block"
    assert set(t["operator_states"].values()) == {"blocked"}
    assert [c["holds"] for c in t["cases"] if c["action"] == "block"] == [True]
    assert await handsets_blocked(client, tokens) == 1
    for code in OPERATORS:  # nothing goes out
        assert await pull(client, ops[code]) == []


@pytest.fixture
async def approving(settings: Settings) -> Any:
    """The service with the supervisor approval policy on."""
    app = create_app(settings.model_copy(update={"approval_policy": "supervisor"}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def test_an_unblock_awaiting_approval_changes_nothing_and_a_rejection_keeps_it_so(
    approving: Client, tokens: Tokens, store: Store
) -> None:
    client = approving
    ops = await operator_tokens(store)
    req = await file(client, tokens["investigator"], ("imei", IMEI), case_ref="C1")
    ok = await client.post(f"/v1/block-requests/{req['id']}/approve", headers=tokens["supervisor"])
    assert ok.status == 200, await ok.text()
    for code in OPERATORS:
        [order] = await pull(client, ops[code])
        await ack(client, ops[code], {"order_id": order["order_id"], "status": "blocked"})
    undo = await unblock(
        client, tokens["investigator"], ("imei", IMEI), "court order", case_ref="C1"
    )
    assert undo["status"] == "pending_approval"
    assert undo["targets"][0]["outcome"] == "awaiting_approval"
    assert (await target(client, tokens))["state"] == "blocked"
    assert await handsets_blocked(client, tokens) == 1
    rej = await client.post(
        f"/v1/block-requests/{undo['id']}/reject",
        headers=tokens["supervisor"],
        json={"reason": "no court order attached"},
    )
    assert rej.status == 200, await rej.text()
    t = await target(client, tokens)
    assert t["state"] == "blocked" and await handsets_blocked(client, tokens) == 1
    assert [c["holds"] for c in t["cases"] if c["action"] == "block"] == [True]

    again = await unblock(
        client, tokens["investigator"], ("imei", IMEI), "court order 9/2026", case_ref="C1"
    )
    ok = await client.post(
        f"/v1/block-requests/{again['id']}/approve", headers=tokens["supervisor"]
    )
    assert ok.status == 200, await ok.text()
    for code in OPERATORS:  # the decision is made at approval
        [order] = await pull(client, ops[code])
        assert order["action"] == "unblock"
        await ack(client, ops[code], {"order_id": order["order_id"], "status": "unblocked"})
    t = await target(client, tokens)
    assert t["state"] == "unblocked" and await handsets_blocked(client, tokens) == 0
    assert not any(c["holds"] for c in t["cases"])  # released when it took effect


async def test_an_unblock_after_a_failed_send_is_the_last_thing_the_operator_gets(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = fail(503)
        dispatcher = Dispatcher(store, settings, build_adapter, drain=True)
        await file(client, tokens["investigator"], ("msisdn", VI_NUMBER), case_ref="C1")
        await dispatcher.run()  # 503 three times in-process, then rescheduled in Postgres
        undo = await unblock(
            client, tokens["investigator"], ("msisdn", VI_NUMBER), "court order", case_ref="C1"
        )
        assert undo["targets"][0]["outcome"] == "queued"
        fake.answers["vi"] = ack_all  # the operator is back
        await store.pool.execute("UPDATE orders SET next_attempt_at = now()")  # all due now
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        actions = dict(await store.pool.fetch("SELECT id, action FROM orders"))
        received = [actions[i] for i in fake.received("vi")]
        assert received[-1] == "unblock" and received.count("unblock") == 1
        t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{VI_NUMBER}")
        assert t["state"] == "unblocked" and t["operator_states"] == {"vi": "not_blocked"}
        statuses = dict(await store.pool.fetch("SELECT action, status FROM orders"))
        assert statuses == {"block": "withdrawn", "unblock": "acked"}
        # the withdrawn block counts at its operator, and only where there is one
        by_operator = await get(client, tokens["supervisor"], "/v1/stats?group_by=operator")
        [vi] = by_operator["groups"]
        assert vi["operator"] == "vi" and vi["numbers"]["withdrawn"] == 1
        assert "withdrawn" not in vi["handsets"] and vi["handsets"]["blocked"] == 0
        assert by_operator["totals"]["numbers"]["withdrawn"] == 1
        assert "withdrawn" not in by_operator["totals"]["handsets"]


async def test_a_newer_decision_waits_for_the_outstanding_one_and_carries_a_higher_seq(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C1")
    [block] = await pull(client, tokens["jio"])  # sent, not yet answered
    await unblock(
        client, tokens["investigator"], ("msisdn", JIO_NUMBER), "court order", case_ref="C1"
    )
    assert await pull(client, tokens["jio"]) == []  # one outstanding order per pair
    assert await ack(client, tokens["jio"], {"order_id": block["order_id"], "status": "blocked"})
    [undo_order] = await pull(client, tokens["jio"])
    assert undo_order["action"] == "unblock" and undo_order["seq"] > block["seq"]
    await ack(client, tokens["jio"], {"order_id": undo_order["order_id"], "status": "unblocked"})
    t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert t["state"] == "unblocked" and t["operator_states"] == {"jio": "not_blocked"}


async def test_a_late_ack_of_a_withdrawn_order_changes_nothing(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C1")
    [block] = await pull(client, tokens["jio"])
    conn = await asyncpg.connect(db_url)
    try:  # its acknowledgement is late: it goes back to the queue to be sent again
        await conn.execute("UPDATE orders SET ack_due_at = now() - interval '1 minute'")
        await conn.execute(
            "UPDATE orders SET status = 'queued', overdue_at = now() WHERE status = 'sent'"
        )
    finally:
        await conn.close()
    await unblock(
        client, tokens["investigator"], ("msisdn", JIO_NUMBER), "court order", case_ref="C1"
    )
    [undo_order] = await pull(client, tokens["jio"])  # the block was withdrawn, not sent again
    assert undo_order["action"] == "unblock"
    await ack(client, tokens["jio"], {"order_id": undo_order["order_id"], "status": "unblocked"})
    late = await ack(client, tokens["jio"], {"order_id": block["order_id"], "status": "blocked"})
    assert late == ["superseded"]
    t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert t["state"] == "unblocked" and t["operator_states"] == {"jio": "not_blocked"}
    history = {o["id"]: o for o in t["orders"]}
    assert history[block["order_id"]]["ack_status"] == "blocked"  # kept, in its history


async def test_an_unblock_releases_only_its_own_case(client: Client, tokens: Tokens) -> None:
    for case in ("C1", "C2"):
        await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref=case)
    [order] = await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})
    undo = await unblock(
        client, tokens["investigator"], ("msisdn", JIO_NUMBER), "false positive", case_ref="C2"
    )
    t = undo["targets"][0]
    assert t["outcome"] == "held" and t["held_by"] == [{"unit": "jammu", "case_ref": "C1"}]
    doc = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert doc["state"] == "blocked"
    holds = {c["case_ref"]: c["holds"] for c in doc["cases"] if c["action"] == "block"}
    assert holds == {"C1": True, "C2": False}


async def test_a_supervisors_unblock_releases_one_units_case_not_the_same_number_elsewhere(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="FIR-1")
    await file(client, tokens["investigator_samba"], ("msisdn", JIO_NUMBER), case_ref="FIR-1")
    [order] = await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})
    no_unit = await client.post(
        "/v1/block-requests",
        headers=tokens["supervisor"],
        json={
            "case_ref": "FIR-1",
            "category": "other",
            "action": "unblock",
            "reason": "court order",
            "targets": [{"kind": "msisdn", "value": JIO_NUMBER}],
        },
    )
    assert no_unit.status == 422  # a supervisor names the case's unit too
    undo = await unblock(
        client,
        tokens["supervisor"],
        ("msisdn", JIO_NUMBER),
        "court order",
        case_ref="FIR-1",
        unit="samba",
    )
    t = undo["targets"][0]
    assert t["outcome"] == "held" and t["held_by"] == [{"unit": "jammu", "case_ref": "FIR-1"}]
    forced = await unblock(
        client,
        tokens["supervisor"],
        ("msisdn", JIO_NUMBER),
        "court order",
        case_ref="FIR-1",
        unit="samba",
        force=True,
    )
    assert forced["targets"][0]["outcome"] == "queued"


async def test_orders_behind_an_open_breaker_become_overdue_then_dead(
    client: Client, tokens: Tokens, store: Store, settings: Settings, db_url: str
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE operators SET breaker_state = 'open', breaker_opened_at = now() "
            "WHERE code = 'jio'"
        )
        await conn.execute("UPDATE orders SET due_at = now() - interval '1 second'")
    finally:
        await conn.close()
    overdue = await get(client, tokens["supervisor"], "/v1/overdue")
    assert len(overdue["items"]) == 1
    # its life began two seconds ago: past a maximum age of one second
    await store.pool.execute("UPDATE orders SET retry_from = now() - interval '2 seconds'")
    old = settings.model_copy(update={"max_order_age_s": 1.0})
    await Dispatcher(store, old, build_adapter).upkeep()
    dead = await get(client, tokens["supervisor"], "/v1/dead")
    [order] = dead["items"]
    assert "breaker open" in order["last_error"]
    t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert t["state"] == "dead"


async def test_a_pulled_order_waits_for_its_ack_then_dies_unanswered(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    [order] = await pull(client, tokens["jio"])
    await store.pool.execute("UPDATE orders SET lease_expires_at = now() - interval '1 hour'")
    dispatcher = Dispatcher(store, settings, build_adapter)
    await dispatcher.upkeep()  # no lease to expire: the order is sent
    row = await store.pool.fetchrow("SELECT status, attempts FROM orders")
    assert row is not None and (row["status"], row["attempts"]) == ("sent", 1)
    assert await pull(client, tokens["jio"]) == []
    await store.pool.execute("UPDATE orders SET created_at = now() - interval '2 seconds'")
    old = settings.model_copy(update={"max_order_age_s": 1.0})
    await Dispatcher(store, old, build_adapter).upkeep()
    [dead] = (await get(client, tokens["supervisor"], "/v1/dead"))["items"]
    assert dead["id"] == order["order_id"] and "no acknowledgement" in dead["last_error"]


async def test_cancel_and_a_claim_cannot_both_win(
    client: Client, tokens: Tokens, store: Store
) -> None:
    req = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER))
    async with store.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        claimed = await conn.fetch(store.queries["orders_claim"], "jio", 10, 60.0, "w1", True)
        assert len(claimed) == 1
        cancel = asyncio.create_task(
            client.post(
                f"/v1/block-requests/{req['id']}/cancel", headers=tokens["investigator"], json={}
            )
        )
        await asyncio.sleep(0.3)  # the cancel now waits for the claim's lock
        await tx.commit()
        resp = await cancel
    assert resp.status == 409, await resp.text()
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["status"] != "cancelled"


async def test_a_cancelled_unblock_restores_the_block_it_withdrew(
    client: Client, tokens: Tokens
) -> None:
    first = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C1")
    undo = await unblock(
        client,
        tokens["investigator"],
        ("msisdn", JIO_NUMBER),
        "typo in the complaint",
        case_ref="C1",
    )
    assert undo["targets"][0]["outcome"] == "not_blocked"  # the unsent block was withdrawn
    cancel = await client.post(
        f"/v1/block-requests/{undo['id']}/cancel", headers=tokens["investigator"], json={}
    )
    assert cancel.status == 200, await cancel.text()
    [order] = await pull(client, tokens["jio"])  # the block is back in force
    assert order["action"] == "block"
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{first['id']}")
    assert doc["targets"][0]["state"] == "pending"


async def test_an_order_back_from_a_dead_worker_never_follows_a_newer_one(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await file(client, tokens["investigator"], ("msisdn", VI_NUMBER), case_ref="C1")
        # a worker claims the block and dies before sending it; its lease runs out later
        await store.fetch("orders_claim", "vi", 10, 60.0, "dead-worker", False)
        undo = await unblock(
            client, tokens["investigator"], ("msisdn", VI_NUMBER), "court order", case_ref="C1"
        )
        assert undo["targets"][0]["outcome"] == "queued"  # the block may have gone out
        await store.pool.execute(
            "UPDATE orders SET lease_expires_at = now() WHERE leased_by IS NOT NULL"
        )
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        actions = dict(await store.pool.fetch("SELECT id, action FROM orders"))
        assert [actions[i] for i in fake.received("vi")] == ["unblock"]
        t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{VI_NUMBER}")
        assert t["state"] == "unblocked" and t["operator_states"] == {"vi": "not_blocked"}


async def test_a_forced_unblock_lists_every_hold_it_releases(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C1")
    await file(client, tokens["investigator_samba"], ("msisdn", JIO_NUMBER), case_ref="S9")
    [order] = await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})
    forced = await unblock(
        client,
        tokens["supervisor"],
        ("msisdn", JIO_NUMBER),
        "high court order",
        case_ref="HC-ORDER-1",
        unit="jammu",
        force=True,
    )
    t = forced["targets"][0]
    assert t["outcome"] == "queued"
    assert t["releases"] == [
        {"unit": "jammu", "case_ref": "C1"},
        {"unit": "samba", "case_ref": "S9"},
    ]
    entry = (await get(client, tokens["supervisor"], "/v1/audit?action=request.filed.unblock"))[
        "items"
    ][0]
    assert [(r["unit"], r["case_ref"]) for r in entry["details"]["releases"]] == [
        ("jammu", "C1"),
        ("samba", "S9"),
    ]
    doc = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert all(c["holds"] for c in doc["cases"] if c["action"] == "block")  # not yet in effect
    [undo] = await pull(client, tokens["jio"])
    await ack(client, tokens["jio"], {"order_id": undo["order_id"], "status": "unblocked"})
    doc = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert doc["state"] == "unblocked" and not any(c["holds"] for c in doc["cases"])


async def test_concurrent_decisions_and_acks_take_locks_in_one_order(
    client: Client, tokens: Tokens, store: Store
) -> None:
    """Filings, unblocks, cancels and acks over the same targets at once: none of them may
    end in a deadlock answered with 503."""
    ops = await operator_tokens(store)
    imeis = [f"35{n:012d}" for n in range(1, 6)]
    statuses: list[int] = []

    async def investigator(k: int) -> None:
        for i in range(8):
            names = imeis[k % 5 :] + imeis[: k % 5]  # every task names them in its own order
            names = names[::-1] if i % 2 else names
            doc = {
                "case_ref": f"C{k % 2}",
                "category": "other",
                "targets": [{"kind": "imei", "value": v} for v in names[:3]],
            }
            if i % 3 == 2:
                doc |= {"action": "unblock", "reason": "court order"}
            resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
            statuses.append(resp.status)
            if resp.status == 201 and i % 4 == 3:
                rid = (await resp.json())["id"]
                cancel = await client.post(
                    f"/v1/block-requests/{rid}/cancel", headers=tokens["investigator"], json={}
                )
                statuses.append(cancel.status)

    async def operator(code: str) -> None:
        for _ in range(12):
            resp = await client.get("/v1/operator/orders?limit=20", headers=ops[code])
            statuses.append(resp.status)
            assert resp.status == 200, await resp.text()
            orders = (await resp.json())["orders"]
            acks = [
                {
                    "order_id": o["order_id"],
                    "status": "blocked" if o["action"] == "block" else "unblocked",
                }
                for o in orders
            ]
            if acks:
                done = await client.post(
                    "/v1/operator/acks", headers=ops[code], json={"acks": acks}
                )
                statuses.append(done.status)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(investigator(k) for k in range(6)), *(operator(c) for c in OPERATORS))
    assert statuses and max(statuses) < 500, sorted(set(statuses))


async def test_cancelling_a_block_another_case_relies_on_keeps_the_target_on_its_way(
    client: Client, tokens: Tokens
) -> None:
    first = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C1")
    second = await file(client, tokens["investigator_samba"], ("msisdn", JIO_NUMBER), case_ref="S1")
    assert second["targets"][0]["outcome"] == "in_progress"  # linked to the first one's order
    cancel = await client.post(
        f"/v1/block-requests/{first['id']}/cancel", headers=tokens["investigator"], json={}
    )
    assert cancel.status == 200, await cancel.text()
    [order] = await pull(client, tokens["jio"])  # still goes out, now for the second case
    assert order["action"] == "block"
    await ack(client, tokens["jio"], {"order_id": order["order_id"], "status": "blocked"})
    doc = await get(client, tokens["investigator_samba"], f"/v1/block-requests/{second['id']}")
    assert doc["status"] == "completed" and doc["targets"][0]["state"] == "blocked"


async def test_a_claim_lost_with_its_connection_comes_back_at_once(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        await file(client, tokens["investigator"], ("msisdn", VI_NUMBER))
        dispatcher = Dispatcher(store, settings, build_adapter, worker="w-lost", drain=True)
        # the claim committed, but its answer never reached the worker
        [lost] = await store.fetch("orders_claim", "vi", 10, 60.0, "w-lost", False)
        lanes = await dispatcher.refresh_operators()
        try:
            lanes["vi"].orphans = True  # what a store error during a step leaves behind
            await lanes["vi"]._release_orphans()
            row = await store.pool.fetchrow("SELECT status, leased_by FROM orders")
            assert row is not None and (row["status"], row["leased_by"]) == ("queued", None)
            await dispatcher.run_until_empty()
        finally:
            for lane in lanes.values():
                await lane.adapter.close()
        assert fake.received("vi") == [lost["id"]]  # delivered now, not a lease later
        outcomes = [
            r["outcome"] for r in await store.pool.fetch("SELECT outcome FROM attempts ORDER BY id")
        ]
        assert outcomes == ["released", "acknowledged"]


async def test_an_unblock_left_waiting_for_another_case_takes_effect_when_that_case_withdraws(
    client: Client, tokens: Tokens
) -> None:
    await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C1")
    other = await file(client, tokens["investigator"], ("msisdn", JIO_NUMBER), case_ref="C2")
    undo = await unblock(client, tokens["investigator"], ("msisdn", JIO_NUMBER), "court order")
    assert undo["targets"][0]["outcome"] == "held"  # C2 still holds it
    cancel = await client.post(
        f"/v1/block-requests/{other['id']}/cancel", headers=tokens["investigator"], json={}
    )
    assert cancel.status == 200, await cancel.text()
    # nothing holds the number now: C1's unblock takes effect (the unsent block is withdrawn)
    assert await pull(client, tokens["jio"]) == []
    t = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{JIO_NUMBER}")
    assert t["state"] == "unblocked" and t["action"] == "unblock"
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{undo['id']}")
    assert doc["targets"][0]["outcome"] == "not_blocked" and doc["status"] == "completed"
