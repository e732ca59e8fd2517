"""Filing block requests over HTTP against a real Postgres."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from service import audit
from service.http.app import create_app
from service.models import BlockRequestOut
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens, body

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"


async def test_block_request_is_normalised_routed_and_stored(
    client: Client, tokens: Tokens, store: Store
) -> None:
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(
            ("msisdn", "98110 12345"),
            ("imei", "49015420323751"),
            ("msisdn", "+91-98110-12345"),
        ),
    )
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    BlockRequestOut.model_validate(doc)  # the documented shape
    assert doc["unit"] == "jammu" and doc["status"] == "dispatching"
    assert [t["value"] for t in doc["targets"]] == ["+919811012345", "490154203237518"]
    msisdn, imei = doc["targets"]
    # +9198110 is a SAMPLE Vi series; an IMEI goes to every active operator
    assert [o["operator"] for o in msisdn["orders"]] == ["vi"]
    assert sorted(o["operator"] for o in imei["orders"]) == ["airtel", "bsnl", "jio", "vi"]
    assert await store.fetchval("token_by_hash", b"x") is None
    again = await client.get(f"/v1/block-requests/{doc['id']}", headers=tokens["investigator"])
    assert again.status == 200
    assert len((await again.json())["targets"]) == 2


async def test_target_already_on_its_way_gets_no_second_order(
    client: Client, tokens: Tokens
) -> None:
    first = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("imei", "490154203237518"))
    )
    assert first.status == 201
    second = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator_samba"],
        json=body(("imei", "49-015420-323751-8"), case_ref="FIR-99"),
    )
    assert second.status == 201
    t = (await second.json())["targets"][0]
    assert t["outcome"] == "in_progress"
    first_id = (await first.json())["id"]
    # jammu's orders, shown to samba without jammu's request (service.visibility)
    assert len(t["orders"]) == 4 and all(o["request_id"] is None for o in t["orders"])
    look = await client.get("/v1/targets/imei/490154203237518", headers=tokens["supervisor"])
    doc = await look.json()
    assert len(doc["orders"]) == 4 and len(doc["cases"]) == 2
    assert all(o["request_id"] == first_id for o in doc["orders"])


async def test_every_bad_target_is_listed_and_nothing_stored(
    client: Client, tokens: Tokens, store: Store
) -> None:
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(
            ("msisdn", "9876543210"),
            ("msisdn", "12345"),
            ("imei", "490154203237519"),
            ("imei", "abc"),
        ),
    )
    assert resp.status == 422
    assert resp.content_type == PROBLEM
    doc = await resp.json()
    assert [e["index"] for e in doc["errors"]] == [1, 2, 3]
    assert all(e["reason"] for e in doc["errors"])
    rows = await store.fetch("request_list", None, None, None, None, None, None, None, 10)
    assert rows == []


async def test_idempotency_key_replays_and_refuses_other_body(
    client: Client, tokens: Tokens
) -> None:
    h = {**tokens["investigator"], "Idempotency-Key": "k-1"}
    a = await client.post("/v1/block-requests", headers=h, json=body(("msisdn", "9876543210")))
    b = await client.post("/v1/block-requests", headers=h, json=body(("msisdn", "9876543210")))
    assert a.status == b.status == 201
    assert (await a.json()) == (await b.json())
    assert b.headers.get("Idempotent-Replayed") == "true"
    c = await client.post("/v1/block-requests", headers=h, json=body(("msisdn", "9876543211")))
    assert c.status == 422
    assert "Idempotency-Key" in (await c.json())["detail"]


async def test_roles_and_scoping(client: Client, tokens: Tokens) -> None:
    resp = await client.post(
        "/v1/block-requests", headers=tokens["investigator"], json=body(("msisdn", "9876543210"))
    )
    rid = (await resp.json())["id"]
    other = await client.get(f"/v1/block-requests/{rid}", headers=tokens["investigator_samba"])
    assert other.status == 404
    assert (
        await client.get(f"/v1/block-requests/{rid}", headers=tokens["supervisor"])
    ).status == 200
    op = await client.post(
        "/v1/block-requests", headers=tokens["jio"], json=body(("msisdn", "9876543210"))
    )
    assert op.status == 403
    foreign = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json=body(("msisdn", "9876543210"), unit="samba"),
    )
    assert foreign.status == 403
    assert (await client.get("/v1/units")).status == 401
    bad = await client.get("/v1/units", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401 and bad.content_type == PROBLEM
    listing = await client.get("/v1/block-requests", headers=tokens["investigator_samba"])
    assert (await listing.json())["items"] == []


async def test_malformed_input_gets_clear_4xx(client: Client, tokens: Tokens) -> None:
    h = tokens["investigator"]
    r = await client.post("/v1/block-requests", headers=h, data=b"{not json")
    assert r.status == 400 and r.content_type == PROBLEM
    r = await client.post("/v1/block-requests", headers=h, json={"case_ref": "x"})
    assert r.status == 422
    fields = {e["field"] for e in (await r.json())["errors"]}
    assert {"category", "targets"} <= fields
    r = await client.get("/nope")
    assert r.status == 404 and r.content_type == PROBLEM
    r = await client.delete("/v1/units", headers=h)
    assert r.status == 405 and r.content_type == PROBLEM
    big = b'{"case_ref": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = await client.post("/v1/block-requests", headers=h, data=io.BytesIO(big))
    assert r.status == 413 and r.content_type == PROBLEM


async def test_bulk_requests_filed_at_once_that_share_targets_each_stand_alone(
    settings: Settings, store: Store, tokens: Tokens
) -> None:
    """Bulk requests go two at a time, each in its own transaction: four at once, each
    sharing half its numbers with the next, all land, and every number is stored once."""
    bulk = settings.model_copy(update={"bulk_request_targets": 20})
    numbers = [f"98100{n:05d}" for n in range(100)]
    lists = [numbers[i * 20 : i * 20 + 40] for i in range(4)]  # 40 each, 20 shared
    async with TestClient(TestServer(create_app(bulk), host="127.0.0.1")) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/block-requests",
                    headers=tokens["investigator"],
                    json=body(*(("msisdn", v) for v in values), case_ref=f"FIR-{i}/2026"),
                )
                for i, values in enumerate(lists)
            )
        )
        docs = [await a.json() for a in answers]
    assert [a.status for a in answers] == [201] * 4, docs
    for doc, values in zip(docs, lists, strict=True):
        assert [t["value"] for t in doc["targets"]] == [f"+91{v}" for v in values]
    stored = [await store.fetchrow("target_get", "msisdn", f"+91{v}") for v in numbers]
    assert all(t is not None for t in stored)
    assert (await audit.verify(store)).ok
