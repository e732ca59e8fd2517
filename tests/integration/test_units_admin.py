"""Admins add units and rename them or change their kind, by the API and on the console."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import Tokens
from tests.integration.test_console import csrf_of, sign_in, token_of

Client = TestClient[Any, Any]


async def units_by_code(client: Client, tokens: Tokens) -> dict[str, dict[str, str]]:
    resp = await client.get("/v1/units", headers=tokens["investigator"])
    return {u["code"]: u for u in (await resp.json())["items"]}


async def test_an_admin_adds_a_unit_that_tokens_and_requests_can_name(
    client: Client, tokens: Tokens
) -> None:
    new = {"code": "kathua-2", "name": "Kathua Rural Cyber Cell", "kind": "district"}
    resp = await client.post("/v1/units", headers=tokens["admin"], json=new)
    assert resp.status == 201, await resp.text()
    assert await resp.json() == new
    assert (await units_by_code(client, tokens))["kathua-2"] == new
    again = await client.post("/v1/units", headers=tokens["admin"], json=new)
    assert again.status == 409
    assert (await again.json())["errors"][0]["field"] == "code"
    filed = await client.post(
        "/v1/block-requests",
        headers=tokens["supervisor"],
        json={
            "case_ref": "FIR-1",
            "category": "other",
            "unit": "kathua-2",
            "targets": [{"kind": "msisdn", "value": "9811012345"}],
        },
    )
    assert filed.status == 201, await filed.text()
    audit = await (await client.get("/v1/audit?action=unit.added", headers=tokens["admin"])).json()
    assert [e["entity_id"] for e in audit["items"]] == ["kathua-2"]


async def test_bad_units_are_refused_naming_the_field(client: Client, tokens: Tokens) -> None:
    for body, field in (
        ({"code": "Kathua 2", "name": "x", "kind": "district"}, "code"),
        ({"code": "kathua-3", "name": "", "kind": "district"}, "name"),
        ({"code": "kathua-3", "name": "x", "kind": "state"}, "kind"),
        ({"code": "kathua-3", "name": "x\u202e", "kind": "district"}, "name"),
        ({"code": "kathua-3", "name": "x", "kind": "district", "extra": 1}, "extra"),
    ):
        resp = await client.post("/v1/units", headers=tokens["admin"], json=body)
        assert resp.status == 422, (body, await resp.text())
        assert resp.content_type == "application/problem+json"
        assert field in (await resp.text())
    assert "kathua-3" not in await units_by_code(client, tokens)


async def test_an_admin_renames_a_unit_or_changes_its_kind(client: Client, tokens: Tokens) -> None:
    resp = await client.patch(
        "/v1/units/kathua", headers=tokens["admin"], json={"name": "Kathua Cyber Cell"}
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"code": "kathua", "name": "Kathua Cyber Cell", "kind": "district"}
    resp = await client.patch("/v1/units/kathua", headers=tokens["admin"], json={"kind": "zone"})
    assert (await resp.json())["kind"] == "zone"
    assert (await units_by_code(client, tokens))["kathua"]["name"] == "Kathua Cyber Cell"
    empty = await client.patch("/v1/units/kathua", headers=tokens["admin"], json={})
    assert empty.status == 422
    missing = await client.patch("/v1/units/nowhere", headers=tokens["admin"], json={"name": "x"})
    assert missing.status == 404
    odd = await client.patch("/v1/units/NO%00WHERE", headers=tokens["admin"], json={"name": "x"})
    assert odd.status == 404
    forbidden = await client.patch(
        "/v1/units/kathua", headers=tokens["supervisor"], json={"name": "Mine"}
    )
    assert forbidden.status == 403
    audit = await (
        await client.get("/v1/audit?action=unit.updated", headers=tokens["admin"])
    ).json()
    details = [e["details"] for e in audit["items"]]
    assert details == [
        {"name": {"from": "Kathua District Cyber Cell", "to": "Kathua Cyber Cell"}},
        {"kind": {"from": "district", "to": "zone"}},
    ]


async def test_the_console_units_page_adds_and_renames(client: Client, tokens: Tokens) -> None:
    await sign_in(client, token_of(tokens, "admin"))
    html = await (await client.get("/admin/units")).text()
    assert 'href="/admin/units"' in html and 'data-unit="cps-jammu"' in html
    csrf = csrf_of(html)
    added = await client.post(
        "/admin/units",
        data={"csrf": csrf, "code": "doda-2", "name": "Doda Hills Cell", "kind": "district"},
    )
    assert added.status == 200 and 'data-unit="doda-2"' in await added.text()
    renamed = await client.post(
        "/admin/units/doda-2", data={"csrf": csrf, "name": "Doda Upper Cell", "kind": "district"}
    )
    assert "Doda Upper Cell" in await renamed.text()
    bad = await client.post(
        "/admin/units", data={"csrf": csrf, "code": "Bad Code", "name": "x", "kind": "district"}
    )
    assert bad.status == 422 and "code" in await bad.text()
    no_csrf = await client.post("/admin/units/doda-2", data={"name": "Sneaky", "kind": "zone"})
    assert no_csrf.status == 403
    assert (await units_by_code(client, tokens))["doda-2"] == {
        "code": "doda-2",
        "name": "Doda Upper Cell",
        "kind": "district",
    }
    await sign_in(client, token_of(tokens, "supervisor"))
    assert (await client.get("/admin/units")).status == 403
    refused = await client.post(
        "/admin/units/doda-2",
        data={
            "csrf": csrf_of(await (await client.get("/")).text()),
            "name": "Mine",
            "kind": "zone",
        },
    )
    assert refused.status == 403
