"""Health, request ids, the OpenAPI document, listings, target look-ups and input errors."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import asyncpg
from aiohttp import hdrs, web
from aiohttp.test_utils import TestClient

from service.http.openapi import openapi_path
from tests.conftest import Tokens, body, ids_in_pages

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"
# Routes that serve the API description itself, not operations of the API.
SELF_DESCRIBING = ("/openapi.json", "/docs")


async def file(client: Client, headers: dict[str, str], doc: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def problem_fields(resp: Any, status: int) -> set[str]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    doc = await resp.json()
    assert doc["status"] == status and doc["detail"]
    return {e["field"] for e in doc.get("errors", [])}


def _console(route: Any) -> bool:
    """The web console's pages, its static files and /metrics are not API operations."""
    module = getattr(route.handler, "__module__", "") or ""
    return module.startswith("service.web") or isinstance(route.resource, web.StaticResource)


# --- health, request ids, OpenAPI ---------------------------------------------------------


async def test_health_and_readiness(client: Client) -> None:
    live = await client.get("/healthz")
    assert live.status == 200 and (await live.json()) == {"status": "ok", "detail": None}
    ready = await client.get("/readyz")
    assert ready.status == 200 and ready.content_type == "application/json"
    assert (await ready.json())["status"] == "ok"


async def test_request_id_is_echoed_or_generated(client: Client) -> None:
    sent = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x:y"})
    assert sent.headers["X-Request-ID"] == "abc-123.x:y"
    generated = await client.get("/healthz")
    first = generated.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    other = await client.get("/healthz")
    assert other.headers["X-Request-ID"] != first
    unsafe = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])
    error = await client.get("/v1/units", headers={"X-Request-ID": "err-1"})
    assert error.status == 401 and error.headers["X-Request-ID"] == "err-1"


async def test_openapi_documents_every_registered_route(client: Client) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1.")
    registered = set()
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == hdrs.METH_HEAD or path.startswith(SELF_DESCRIBING) or _console(route):
            continue
        registered.add((route.method.lower(), openapi_path(path)))
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert registered, "no routes found"
    assert registered - documented == set()
    assert documented - registered == set()


# --- listing ------------------------------------------------------------------------------


async def test_block_requests_are_paged_newest_first(client: Client, tokens: Tokens) -> None:
    h = tokens["investigator"]
    ids = [
        (await file(client, h, body(("msisdn", f"98765 4321{i}"), case_ref=f"FIR-{i}")))["id"]
        for i in range(5)
    ]
    seen: list[int] = []
    after: int | None = None
    pages = 0
    while True:
        params = {"limit": "2"} if after is None else {"limit": "2", "after": str(after)}
        resp = await client.get("/v1/block-requests", headers=h, params=params)
        assert resp.status == 200
        page = await resp.json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
        assert after == seen[-1]
    assert pages == 3
    assert seen == sorted(ids, reverse=True)


async def test_block_requests_are_filtered(client: Client, tokens: Tokens, db_url: str) -> None:
    inv, samba, sup = tokens["investigator"], tokens["investigator_samba"], tokens["supervisor"]
    a = await file(client, inv, body(("msisdn", "9876543210"), case_ref="FIR-A"))
    b = await file(client, inv, body(("msisdn", "9876543211"), category="investment"))
    c = await file(client, samba, body(("msisdn", "9876543212"), case_ref="FIR-A"))
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE block_requests SET status = 'cancelled' WHERE id = $1", b["id"])
    finally:
        await conn.close()

    async def ids(headers: dict[str, str], **params: str) -> list[int]:
        resp = await client.get("/v1/block-requests", headers=headers, params=params)
        assert resp.status == 200, await resp.text()
        return [item["id"] for item in (await resp.json())["items"]]

    assert await ids(inv) == [b["id"], a["id"]]
    assert await ids(inv, status="cancelled") == [b["id"]]
    assert await ids(inv, status="dispatching") == [a["id"]]
    assert await ids(inv, category="investment") == [b["id"]]
    assert await ids(inv, case_ref="FIR-A") == [a["id"]]
    assert await ids(inv, unit="samba") == []
    assert await ids(inv, unit="jammu") == [b["id"], a["id"]]
    assert await ids(sup) == [c["id"], b["id"], a["id"]]
    assert await ids(sup, unit="samba") == [c["id"]]
    assert await ids(sup, case_ref="FIR-A") == [c["id"], a["id"]]
    assert await ids(sup, unit="samba", case_ref="FIR-A", status="dispatching") == [c["id"]]

    for bad in ({"limit": "0"}, {"limit": "501"}, {"status": "nope"}, {"colour": "red"}):
        resp = await client.get("/v1/block-requests", headers=sup, params=bad)
        assert await problem_fields(resp, 422) == set(bad)


async def test_a_period_of_requests_comes_newest_first_by_filing_time(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    """Requests filed on given days (ties: a batch filed together) come in pages newest
    first by filing time, then id, each once, whatever the filters; `from` and `to` bound it."""
    sup = tokens["supervisor"]
    ids = [
        (await file(client, tokens["investigator"], body(("msisdn", f"98765 4330{i}"))))["id"]
        for i in range(7)
    ]
    days = ["2026-01-05", "2026-01-03", "2026-01-05", "2025-12-30", "2026-01-04", "2026-01-05"]
    conn = await asyncpg.connect(db_url)
    try:  # the last one filed stays today's; the others move back, three onto one instant
        for rid, day in zip(ids, days, strict=False):
            await conn.execute(
                "UPDATE block_requests SET created_at = $2::date + time '10:00' WHERE id = $1",
                rid,
                date.fromisoformat(day),
            )
    finally:
        await conn.close()
    by_time = sorted(zip([*days, "9999-12-31"], ids, strict=True), reverse=True)
    newest_first = [rid for _, rid in by_time]

    async def pages(**params: str) -> list[int]:
        return await ids_in_pages(client, "/v1/block-requests", sup, **params)

    assert await pages() == newest_first
    assert await pages(unit="jammu") == newest_first
    assert await pages(status="dispatching") == newest_first
    assert await pages(category="kyc_update") == newest_first
    in_period = [rid for day, rid in by_time if "2026-01-01" <= day < "2026-01-05"]
    assert in_period == [ids[4], ids[1]]
    assert await pages(**{"from": "2026-01-01T00:00:00Z", "to": "2026-01-05T00:00:00Z"}) == (
        in_period
    )
    before = [rid for day, rid in by_time if day < "2026-01-05"]
    assert await pages(to="2026-01-05T00:00:00Z", unit="jammu") == before
    assert await pages(**{"from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z"}) == [
        ids[5],
        ids[2],
        ids[0],
    ]


# --- targets ------------------------------------------------------------------------------


async def test_target_is_found_in_any_notation(client: Client, tokens: Tokens) -> None:
    await file(
        client,
        tokens["investigator"],
        body(("msisdn", "98765 43210"), ("imei", "35209900176148")),
    )
    for path in (
        "/v1/targets/msisdn/+91-98765-43210",
        "/v1/targets/msisdn/09876543210",
        "/v1/targets/msisdn/919876543210",
    ):
        resp = await client.get(path, headers=tokens["investigator"])
        assert resp.status == 200, (path, await resp.text())
        assert (await resp.json())["value"] == "+919876543210"
    resp = await client.get("/v1/targets/imei/35-209900-176148-1", headers=tokens["investigator"])
    assert resp.status == 200
    doc = await resp.json()
    assert doc["value"] == "352099001761481" and len(doc["orders"]) == 4


async def test_another_unit_sees_the_target_state_but_not_its_cases(
    client: Client, tokens: Tokens
) -> None:
    filed = await file(client, tokens["investigator"], body(("msisdn", "98765 43210")))
    path = "/v1/targets/msisdn/9876543210"
    own = await (await client.get(path, headers=tokens["investigator"])).json()
    assert [c["case_ref"] for c in own["cases"]] == ["FIR-12/2026"]
    resp = await client.get(path, headers=tokens["investigator_samba"])
    assert resp.status == 200
    other = await resp.json()
    assert other["state"] == own["state"] == "pending"
    assert other["operators"].keys() == own["operators"].keys()
    # which units hold it, and nothing else of their cases
    assert [(c["unit"], c["holds"], c["case_ref"], c["request_id"]) for c in other["cases"]] == [
        ("jammu", True, None, None)
    ]
    assert "FIR-12/2026" not in await resp.text()
    hidden = await client.get(
        f"/v1/block-requests/{filed['id']}", headers=tokens["investigator_samba"]
    )
    assert hidden.status == 404


async def test_a_requests_targets_come_in_pages_in_submitted_order(
    client: Client, tokens: Tokens
) -> None:
    numbers = [f"98765{i:05d}" for i in range(250)]
    filed = await file(client, tokens["investigator"], body(*(("msisdn", n) for n in numbers)))
    path = f"/v1/block-requests/{filed['id']}"
    first = await (await client.get(path, headers=tokens["investigator"])).json()
    assert first["target_count"] == 250 and len(first["targets"]) == 100
    assert first["next_after"] == 99
    seen, after = [], None
    while True:
        query = "?limit=70" + ("" if after is None else f"&after={after}")
        page = await (await client.get(path + query, headers=tokens["investigator"])).json()
        assert page["target_count"] == 250 and len(page["targets"]) <= 70
        seen += [(t["index"], t["submitted"]) for t in page["targets"]]
        assert all(t["orders"] for t in page["targets"])
        after = page["next_after"]
        if after is None:
            break
    assert seen == list(enumerate(numbers))
    # a small request still comes whole, with no next page
    small = await file(client, tokens["investigator"], body(("msisdn", "9876512345")))
    whole = await (
        await client.get(f"/v1/block-requests/{small['id']}", headers=tokens["investigator"])
    ).json()
    assert [t["submitted"] for t in whole["targets"]] == ["9876512345"]
    assert whole["next_after"] is None
    for bad in ("limit=0", "limit=1001", "after=-1", "after=x", "after=2147483648", "page=2"):
        resp = await client.get(f"{path}?{bad}", headers=tokens["investigator"])
        assert await problem_fields(resp, 422), bad
    hidden = await client.get(path + "?limit=5", headers=tokens["investigator_samba"])
    assert hidden.status == 404


async def test_unknown_or_invalid_target_is_a_404_problem(client: Client, tokens: Tokens) -> None:
    for path in (
        "/v1/targets/msisdn/9876543210",
        "/v1/targets/imei/352099001761481",
        "/v1/targets/imei/352099001761482",
        "/v1/targets/email/someone",
    ):
        resp = await client.get(path, headers=tokens["supervisor"])
        assert await problem_fields(resp, 404) == set(), path


# --- input errors -------------------------------------------------------------------------


async def test_too_many_targets_is_refused(client: Client, tokens: Tokens) -> None:
    doc = body(*[("imei", "35209900176148")] * 10_001)
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    assert await problem_fields(resp, 422) == {"targets"}


async def test_unblock_without_reason_is_refused(client: Client, tokens: Tokens) -> None:
    doc = body(("msisdn", "9876543210"), action="unblock")
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    await problem_fields(resp, 422)
    messages = [e["message"] for e in (await resp.json())["errors"]]
    assert any("needs a reason" in m for m in messages), messages


async def test_unblock_without_reason_names_the_reason_field(
    client: Client, tokens: Tokens
) -> None:
    doc = body(("msisdn", "9876543210"), action="unblock")
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    assert await problem_fields(resp, 422) == {"reason"}


async def test_wrong_types_are_refused_naming_the_fields(client: Client, tokens: Tokens) -> None:
    h = tokens["investigator"]
    resp = await client.post("/v1/block-requests", headers=h, json={**body(), "targets": "x"})
    assert await problem_fields(resp, 422) == {"targets"}
    doc = body(("email", "a@b.c"), ("msisdn", "9876543210"))
    doc["targets"][1]["value"] = 9876543210
    doc["priority"] = "asap"
    resp = await client.post("/v1/block-requests", headers=h, json=doc)
    fields = await problem_fields(resp, 422)
    assert fields == {"targets[0].kind", "targets[1].value", "priority"}


async def test_a_body_that_is_not_an_object_is_refused(client: Client, tokens: Tokens) -> None:
    h = tokens["investigator"]
    resp = await client.post("/v1/block-requests", headers=h, json=[body(("imei", "1"))])
    assert await problem_fields(resp, 422) == {"body"}
    for empty in (b"", b"   \n"):
        resp = await client.post(
            "/v1/block-requests", headers={**h, "Content-Type": "application/json"}, data=empty
        )
        assert await problem_fields(resp, 400) == set()
