"""Number churn over real HTTP and the CLI: a retired number keeps its history, and a later
request naming it starts a new target with new orders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.store import Store
from tests.conftest import Tokens
from tests.integration.test_cli import run_cli

Client = TestClient[Any, Any]
NUMBER = "+917006012345"  # SAMPLE jio series
OTHER = "+917006012346"


async def file(client: Client, headers: dict[str, str], *values: str, **extra: Any) -> Any:
    doc = {
        "case_ref": "FIR-70/2026",
        "category": "social_media",
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


async def get(client: Client, headers: dict[str, str], path: str) -> Any:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def churn(client: Client, headers: dict[str, str], *events: dict[str, Any]) -> Any:
    resp = await client.post("/v1/operator/churn", headers=headers, json={"events": list(events)})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_reallocated_number_filed_again_gets_new_orders(
    client: Client, tokens: Tokens, store: Store, db_url: str
) -> None:
    first = await file(client, tokens["investigator"], NUMBER)
    [old] = await pull(client, tokens["jio"])
    resp = await client.post(
        "/v1/operator/acks",
        headers=tokens["jio"],
        json={"acks": [{"order_id": old["order_id"], "status": "blocked"}]},
    )
    assert resp.status == 200
    cursor = (await get(client, tokens["jio"], "/v1/operator/blocklist"))["cursor"]
    out = await churn(
        client,
        tokens["jio"],
        {"msisdn": "07006012345", "event": "reallocated", "at": "2026-11-30T00:00:00+05:30"},
        {"msisdn": NUMBER, "event": "reallocated", "at": "2026-11-30T00:00:00+05:30"},
        {"msisdn": OTHER, "event": "permanently_disconnected", "at": "2026-11-30T00:00:00Z"},
        {"msisdn": "12", "event": "reallocated", "at": "2026-11-30T00:00:00Z"},
    )
    assert [(r["result"], r["value"]) for r in out["results"]] == [
        ("retired", NUMBER),
        ("duplicate", NUMBER),
        ("not_found", OTHER),
        ("invalid", None),
    ]
    assert out["retired"] == 1
    # jio is no longer expected to block the number: its new holder is innocent
    changes = await get(client, tokens["jio"], f"/v1/operator/blocklist?since={cursor}")
    assert [(c["value"], c["change"]) for c in changes["changes"]] == [(NUMBER, "removed")]
    conn = await asyncpg.connect(db_url)
    try:
        routes = await conn.fetchval("SELECT count(*) FROM msisdn_routes WHERE msisdn = $1", NUMBER)
    finally:
        await conn.close()
    assert routes == 0  # the learned route went with the subscriber

    second = await file(client, tokens["investigator_samba"], NUMBER, case_ref="FIR-71/2026")
    [target] = second["targets"]
    assert target["outcome"] == "queued" and target["state"] == "pending"
    [new] = await pull(client, tokens["jio"])
    assert new["order_id"] != old["order_id"]
    assert (new["value"], new["request_id"], new["unit"]) == (NUMBER, second["id"], "samba")

    seen = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{NUMBER}")
    assert (seen["state"], seen["retired_at"]) == ("pending", None)
    assert [c["request_id"] for c in seen["cases"]] == [second["id"]]
    [before] = seen["previous"]
    assert (before["value"], before["state"], before["retired_as"]) == (
        NUMBER,
        "blocked",
        "reallocated",
    )
    assert before["retired_at"] == "2026-11-29T18:30:00Z"
    assert [o["id"] for o in before["orders"]] == [old["order_id"]]
    assert [c["request_id"] for c in before["cases"]] == [first["id"]]
    units = await get(client, tokens["supervisor"], "/v1/stats?group_by=unit")
    by_unit = {g["unit"]: g["numbers"] for g in units["groups"]}
    assert (by_unit["jammu"]["blocked"], by_unit["samba"]["pending"]) == (1, 1)
    audited = [
        a for a in await store.fetch("audit_all", 0, 1000) if a["action"] == "target.retired"
    ]
    assert [(a["details"]["msisdn"], a["details"]["event"]) for a in audited] == [
        (NUMBER, "reallocated")
    ]


async def test_a_retired_numbers_unsent_orders_never_go(client: Client, tokens: Tokens) -> None:
    req = await file(client, tokens["investigator"], NUMBER)
    await churn(
        client,
        tokens["airtel"],
        {"msisdn": NUMBER, "event": "permanently_disconnected", "at": "2026-11-30T09:00:00Z"},
    )
    assert await pull(client, tokens["jio"]) == []
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["status"] != "dispatching"
    seen = await get(client, tokens["investigator"], f"/v1/targets/msisdn/{NUMBER}")
    assert seen["retired_as"] == "permanently_disconnected" and seen["previous"] == []
    [order] = seen["orders"]
    assert order["status"] == "cancelled"
    assert order["last_error"] == "number retired: re-allocated or disconnected"


async def test_churn_load_retires_the_monthly_list(
    client: Client, tokens: Tokens, db_url: str, tmp_path: Path
) -> None:
    await file(client, tokens["investigator"], NUMBER)
    listing = tmp_path / "disconnected-2026-11.csv"
    listing.write_text(f"msisdn,date\n{NUMBER},2026-11-15\n{OTHER}\nnot-a-number,2026-11-15\n")
    run = await run_cli(db_url, "churn", "load", str(listing))
    assert run.rc == 1, run.err
    assert run.out.strip().endswith(
        f"1 numbers retired, 1 never named in a request, 1 invalid, from {listing}"
    )
    assert "number 3 of the list: " in run.err
    seen = await get(client, tokens["supervisor"], f"/v1/targets/msisdn/{NUMBER}")
    assert (seen["retired_as"], seen["retired_at"]) == (
        "permanently_disconnected",
        "2026-11-14T18:30:00Z",
    )
