"""Re-queuing dead orders in bulk (`POST /v1/dead/requeue`) and one at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.registry import build_adapter
from service import operators, review
from service.auth import Principal
from service.dispatcher import Dispatcher
from service.models import DeadRequeueIn
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import (
    Client,
    FakeOperator,
    ack_all,
    fail,
    fake_operator,
    file_request,
    imeis,
    statuses,
    use_http_json,
    vi_numbers,
)

REQUEUE = "/v1/dead/requeue"


@pytest.fixture
async def dead(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> AsyncIterator[FakeOperator]:
    """Four IMEIs filed to all four operators; vi and airtel refused them for good (400)."""
    async with fake_operator() as fake:
        await use_http_json(store, fake, *operators.DEMO_OPERATORS)
        fake.answers["vi"] = fail(400, "malformed imei")
        fake.answers["airtel"] = fail(400, "Blacklisted range")
        await file_request(client, tokens["investigator"], imeis(4))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        assert await statuses(store, "vi") == await statuses(store, "airtel") == {"dead": 4}
        assert await statuses(store, "jio") == {"acked": 4}
        yield fake


async def requeue(client: Client, tokens: Tokens, doc: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(REQUEUE, headers=tokens["supervisor"], json=doc)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def audit_entries(client: Client, tokens: Tokens) -> list[dict[str, Any]]:
    resp = await client.get("/v1/audit?action=orders.requeued", headers=tokens["supervisor"])
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["items"])


async def test_requeue_by_operator_gives_the_orders_a_new_life_and_is_audited_once(
    client: Client, tokens: Tokens, store: Store, settings: Settings, dead: FakeOperator
) -> None:
    [request_id] = [r["id"] for r in await store.pool.fetch("SELECT id FROM block_requests")]
    before = await store.pool.fetchval("SELECT status FROM block_requests")
    assert before == "partially_completed"

    assert await requeue(client, tokens, {"operator": "vi"}) == {"requeued": 4, "more": False}
    assert await statuses(store, "vi") == {"queued": 4}
    assert await statuses(store, "airtel") == {"dead": 4}
    rows = await store.pool.fetch(
        "SELECT next_attempt_at <= now() AS due, retry_from IS NOT NULL AS fresh, dead_at,"
        " overdue_at FROM orders WHERE operator_code = 'vi'"
    )
    assert all(r["due"] and r["fresh"] and r["dead_at"] is None for r in rows)
    assert all(r["overdue_at"] is None for r in rows)
    # the targets are pending again, and so is their request
    assert {r["state"] for r in await store.pool.fetch("SELECT state FROM targets")} == {"pending"}
    assert await store.pool.fetchval("SELECT status FROM block_requests") == "dispatching"
    assert not await store.pool.fetchval("SELECT bool_or(done) FROM request_targets")

    [entry] = await audit_entries(client, tokens)
    assert entry["actor"].startswith("token:") and entry["actor"].endswith(":supervisor")
    assert (entry["role"], entry["entity_type"], entry["entity_id"]) == (
        "supervisor",
        "orders",
        "vi",
    )
    details = entry["details"]
    assert details["filters"] == {
        "operator": "vi",
        "dead_from": None,
        "dead_to": None,
        "reason": None,
    }
    assert (details["requeued"], details["more"]) == (4, False)
    vi_ids = await store.pool.fetch("SELECT id FROM orders WHERE operator_code = 'vi' ORDER BY id")
    assert details["order_ids"] == [r["id"] for r in vi_ids]

    # the operator is fixed: the orders are delivered, and the request completes after all
    dead.answers["vi"] = ack_all
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    assert await statuses(store, "vi") == {"acked": 4}
    doc = await client.get(f"/v1/block-requests/{request_id}", headers=tokens["investigator"])
    assert (await doc.json())["status"] == "partially_completed"  # airtel's are still dead
    # nothing matches any more: a no-op, audited as such
    assert await requeue(client, tokens, {"operator": "vi"}) == {"requeued": 0, "more": False}
    assert [e["details"]["requeued"] for e in await audit_entries(client, tokens)] == [4, 0]


async def test_requeue_by_reason_matches_a_substring_in_any_case(
    client: Client, tokens: Tokens, store: Store, dead: FakeOperator
) -> None:
    assert await requeue(client, tokens, {"reason": "blacklisted"}) == {
        "requeued": 4,
        "more": False,
    }
    assert await statuses(store, "airtel") == {"queued": 4}
    assert await statuses(store, "vi") == {"dead": 4}
    assert await requeue(client, tokens, {"reason": "nothing like this"}) == {
        "requeued": 0,
        "more": False,
    }
    assert await requeue(client, tokens, {"reason": "%"}) == {"requeued": 0, "more": False}


async def test_requeue_by_time_range_takes_orders_dead_from_inclusive_to_exclusive(
    client: Client, tokens: Tokens, store: Store, dead: FakeOperator
) -> None:
    rows = await store.pool.fetch(
        "SELECT id, operator_code FROM orders WHERE status = 'dead' ORDER BY operator_code, id"
    )
    ids = [r["id"] for r in rows]
    days = [datetime(2026, 3, 1 + i % 4, 12, tzinfo=UTC) for i in range(len(ids))]  # 1-4 each
    await store.pool.execute(
        "UPDATE orders o SET dead_at = u.at FROM unnest($1::bigint[], $2::timestamptz[])"
        " AS u(id, at) WHERE o.id = u.id",
        ids,
        days,
    )
    doc = {"dead_from": "2026-03-02T12:00:00Z", "dead_to": "2026-03-04T12:00:00+00:00"}
    assert await requeue(client, tokens, doc) == {"requeued": 4, "more": False}
    requeued = await store.pool.fetch("SELECT id FROM orders WHERE status = 'queued'")
    assert sorted(r["id"] for r in requeued) == sorted(
        i for i, d in zip(ids, days, strict=True) if d.day in (2, 3)
    )
    # with an operator too: every filter given must match; 18:00 in India is 12:30 UTC
    doc = {"operator": "vi", "dead_from": "2026-03-01T18:00:00+05:30"}
    assert (await requeue(client, tokens, doc))["requeued"] == 1
    [vi_fourth] = [
        i
        for i, d, r in zip(ids, days, rows, strict=True)
        if d.day == 4 and r["operator_code"] == "vi"
    ]
    assert await store.pool.fetchval("SELECT status FROM orders WHERE id = $1", vi_fourth) == (
        "queued"
    )
    [entry, _] = reversed(await audit_entries(client, tokens))
    assert entry["details"]["filters"]["dead_from"] == "2026-03-01T18:00:00+05:30"


async def test_only_supervisors_may_requeue_and_naive_times_are_refused(
    client: Client, tokens: Tokens, store: Store, dead: FakeOperator
) -> None:
    for who in ("investigator", "admin", "jio"):
        resp = await client.post(REQUEUE, headers=tokens[who], json={"operator": "vi"})
        assert resp.status == 403, who
    assert (await client.post(REQUEUE, json={})).status == 401
    for doc, field in (
        ({"dead_from": "2026-03-01T12:00:00"}, "dead_from"),
        ({"dead_to": "2026-03-01 12:00"}, "dead_to"),
        ({"dead_from": "2026-03-02T00:00:00Z", "dead_to": "2026-03-01T00:00:00Z"}, "body"),
        ({"operator": "VI!"}, "operator"),
        ({"reason": ""}, "reason"),
        ({"status": "dead"}, "status"),
    ):
        resp = await client.post(REQUEUE, headers=tokens["supervisor"], json=doc)
        assert resp.status == 422, doc
        problem = await resp.json()
        assert resp.content_type == "application/problem+json"
        assert [e["field"] for e in problem["errors"]] == [field], problem
    assert await statuses(store, "vi") == {"dead": 4}
    assert await audit_entries(client, tokens) == []


async def test_a_superseded_dead_order_stays_dead_in_bulk_and_alone(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi")
        fake.answers["vi"] = fail(400, "malformed")
        await file_request(client, tokens["investigator"], vi_numbers(2))
        await Dispatcher(store, settings, build_adapter, drain=True).run()
        # the first number is filed again: a new order for the same target and operator
        await file_request(client, tokens["investigator"], vi_numbers(1))
    orders = await store.pool.fetch(
        "SELECT id, target_id, status FROM orders WHERE operator_code = 'vi' ORDER BY id"
    )
    assert sorted(r["status"] for r in orders) == ["dead", "dead", "queued"]
    [new] = [r for r in orders if r["status"] == "queued"]
    [old] = [r for r in orders if r["status"] == "dead" and r["target_id"] == new["target_id"]]
    [other] = [r for r in orders if r["target_id"] != new["target_id"]]
    assert old["id"] < new["id"]

    assert await requeue(client, tokens, {"operator": "vi"}) == {"requeued": 1, "more": False}
    status = {r["id"]: r["status"] for r in await store.pool.fetch("SELECT id, status FROM orders")}
    assert (status[old["id"]], status[other["id"]]) == ("dead", "queued")

    resp = await client.post(f"/v1/orders/{old['id']}/retry", headers=tokens["supervisor"])
    assert resp.status == 409
    assert "superseded" in (await resp.json())["detail"]

    # a newer order that was withdrawn does not supersede
    await store.pool.execute("UPDATE orders SET status = 'cancelled' WHERE id = $1", new["id"])
    resp = await client.post(f"/v1/orders/{old['id']}/retry", headers=tokens["supervisor"])
    assert resp.status == 202, await resp.text()


async def test_a_bulk_requeue_is_bounded_and_says_when_more_remain(
    tokens: Tokens, store: Store, dead: FakeOperator
) -> None:
    supervisor = Principal(token_id=0, name="s", role="supervisor", unit=None, operator=None)
    everything = DeadRequeueIn()
    first = await review.requeue_dead(store, supervisor, everything, limit=3)
    assert (first.requeued, first.more) == (3, True)
    second = await review.requeue_dead(store, supervisor, everything, limit=5)
    assert (second.requeued, second.more) == (5, False)
    assert await statuses(store) == {"acked": 8, "queued": 8}
    first_three = await store.pool.fetch(
        "SELECT id FROM orders WHERE retry_from IS NOT NULL ORDER BY id LIMIT 3"
    )
    dead_ids = await store.pool.fetch(
        "SELECT id FROM orders WHERE operator_code IN ('vi', 'airtel') ORDER BY id LIMIT 3"
    )
    assert first_three == dead_ids  # oldest first


async def test_the_route_is_documented_with_its_models(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).json()
    post = doc["paths"][REQUEUE]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    answer = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert (body, answer) == (
        "#/components/schemas/DeadRequeueIn",
        "#/components/schemas/DeadRequeueOut",
    )
    # 400/408/413 come with any body, 503 with any database call
    assert sorted(post["responses"]) == ["200", "400", "401", "403", "408", "413", "422", "503"]
    fields = doc["components"]["schemas"]["DeadRequeueIn"]["properties"]
    assert set(fields) == {"operator", "dead_from", "dead_to", "reason"}
