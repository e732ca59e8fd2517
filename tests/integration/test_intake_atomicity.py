"""Intake writes a request, its targets, orders, counters and audit row in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import audit, auth
from service.store import Store
from tests.conftest import Tokens, body

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"
IMEI = "352099001761481"
# Every table intake writes to, directly or through triggers.
TABLES = (
    "block_requests",
    "targets",
    "request_targets",
    "orders",
    "idempotency_keys",
    "audit_log",
    "target_state_counts",
    "target_event_counts",
    "order_state_counts",
    "target_state_days",
    "target_event_days",
    "order_state_days",
    "target_unit_days",
    "order_unit_days",
)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A raw connection for SQL the service would never run."""
    c = await asyncpg.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


async def snapshot(conn: asyncpg.Connection[Any]) -> dict[str, str]:
    """The full contents of every table intake touches, as comparable text."""
    out = {}
    for table in TABLES:
        out[table] = await conn.fetchval(
            f"SELECT coalesce(jsonb_agg(t ORDER BY t::text), '[]')::text FROM {table} t"
        )
    return out


async def test_a_failure_half_way_through_intake_stores_nothing(
    client: Client, tokens: Tokens, store: Store, conn: asyncpg.Connection[Any]
) -> None:
    await conn.execute(
        """
        CREATE FUNCTION test_fail_intake() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'injected failure on request_targets'; END $$;
        CREATE TRIGGER test_fail_intake BEFORE INSERT ON request_targets
            FOR EACH ROW EXECUTE FUNCTION test_fail_intake();
        """
    )
    before = await snapshot(conn)
    assert before["audit_log"] != "[]"  # the tokens were audited; intake adds nothing
    headers = {**tokens["investigator"], "Idempotency-Key": "fir-12-1"}
    doc = body(("msisdn", "98765 43210"), ("imei", IMEI), ("msisdn", "98110 12345"))

    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 500, await resp.text()
    assert resp.content_type == PROBLEM
    problem = await resp.json()
    assert problem["status"] == 500 and "injected" not in problem["detail"]
    assert await snapshot(conn) == before
    for table in ("block_requests", "targets", "request_targets", "orders", "idempotency_keys"):
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    assert (await client.get("/healthz")).status == 200

    await conn.execute("DROP TRIGGER test_fail_intake ON request_targets")
    again = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert again.status == 201, await again.text()
    assert "Idempotent-Replayed" not in again.headers
    assert await conn.fetchval("SELECT count(*) FROM block_requests") == 1
    # 98765 43210 is in no series (4 orders), the IMEI goes to all 4, 98110 is a Vi series (1)
    assert await conn.fetchval("SELECT count(*) FROM orders") == 9
    assert (await audit.verify(store)).ok


async def test_concurrent_requests_for_one_new_imei_queue_one_order_per_operator(
    client: Client, tokens: Tokens, store: Store, conn: asyncpg.Connection[Any]
) -> None:
    headers = [tokens["investigator"], tokens["investigator_samba"]]
    for unit in ("kathua", "udhampur", "reasi", "doda"):
        _, token = await auth.create_token(store, role="investigator", name=unit, unit=unit)
        headers.append({"Authorization": f"Bearer {token}"})
    formats = [IMEI, "35-209900-176148-1", "35209900176148", "3520990017614812"]
    posts = [
        client.post(
            "/v1/block-requests",
            headers=headers[i % len(headers)],
            json=body(("imei", formats[i % len(formats)]), case_ref=f"FIR-{i}/2026"),
        )
        for i in range(20)
    ]
    responses = await asyncio.gather(*posts)
    statuses = [r.status for r in responses]
    docs = [await r.json() for r in responses]
    assert statuses == [201] * 20, docs
    outcomes = sorted(d["targets"][0]["outcome"] for d in docs)
    assert outcomes == ["in_progress"] * 19 + ["queued"]

    orders = await conn.fetch(
        "SELECT operator_code, request_id FROM orders WHERE kind = 'imei' AND value = $1", IMEI
    )
    assert sorted(o["operator_code"] for o in orders) == ["airtel", "bsnl", "jio", "vi"]
    assert len({o["request_id"] for o in orders}) == 1
    assert await conn.fetchval("SELECT count(*) FROM targets") == 1
    assert await conn.fetchval("SELECT count(*) FROM request_targets") == 20
    units = await conn.fetch("SELECT DISTINCT unit_code FROM block_requests")
    assert len(units) == 6
    counted = await conn.fetchval("SELECT coalesce(sum(n), 0) FROM counted_order_states")
    assert counted == 4
    assert (await audit.verify(store)).ok
