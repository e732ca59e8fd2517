"""What one unit's investigator can see of another unit's case: that the target is blocked, each
operator's state and which units hold it; never the other case's reference, requests, operator
references, ack reasons or errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from adapters.registry import build_adapter
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import Client, fail, fake_operator, use_http_json

IMEI = "490154203237518"
NUMBER = "+919811000042"  # a vi number of the SAMPLE series
JAMMU_CASE = "FIR-JAMMU-SECRET-77"
SECRETS = ("JIO-SECRET-REF", "airtel-secret-reason", "bsnl-secret-error", JAMMU_CASE)


async def _post(
    client: Client, headers: dict[str, str], path: str, doc: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    resp = await client.post(path, headers=headers, json=doc)
    assert resp.status == status, await resp.text()
    return dict(await resp.json())


async def _get(client: Client, headers: dict[str, str], path: str) -> tuple[str, dict[str, Any]]:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    text = await resp.text()
    return text, orjson.loads(text)


def _filing(
    case_ref: str, action: str = "block", imei_only: bool = False, **extra: Any
) -> dict[str, Any]:
    targets = [{"kind": "imei", "value": IMEI}, {"kind": "msisdn", "value": NUMBER}]
    return {
        "case_ref": case_ref,
        "category": "investment",
        "action": action,
        "targets": targets[:1] if imei_only else targets,
        **extra,
    }


def _orders(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every order in a request, filing or target document."""
    if "targets" in doc:
        return [o for t in doc["targets"] for o in t["orders"]]
    return [*doc["orders"], *doc["operators"].values()]


async def _jammu_case(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> dict[str, Any]:
    """Jammu's case with everything an operator can say: a reference, a reason, an error."""
    filed = await _post(client, tokens["investigator"], "/v1/block-requests", _filing(JAMMU_CASE))
    for who, ack in (
        ("jio", {"status": "blocked", "operator_ref": "JIO-SECRET-REF"}),
        ("airtel", {"status": "rejected", "reason": "airtel-secret-reason"}),
    ):
        resp = await client.get("/v1/operator/orders", headers=tokens[who])
        [order] = (await resp.json())["orders"]
        body = {"acks": [{"order_id": order["order_id"], **ack}]}
        assert (await _post(client, tokens[who], "/v1/operator/acks", body, 200))["applied"] == 1
    async with fake_operator() as fake:
        await use_http_json(store, fake, "bsnl")
        fake.answers["bsnl"] = fail(400, "bsnl-secret-error")
        await Dispatcher(store, settings, build_adapter, drain=True).run()
    _, seen = await _get(client, tokens["supervisor"], f"/v1/targets/imei/{IMEI}")
    refs = {o["operator_ref"] for o in _orders(seen)} | {o["ack_reason"] for o in _orders(seen)}
    assert {"JIO-SECRET-REF", "airtel-secret-reason"} <= refs
    assert any("bsnl-secret-error" in (o["last_error"] or "") for o in _orders(seen))
    return filed


def _assert_redacted(text: str, doc: dict[str, Any], own_requests: set[int]) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    for o in _orders(doc):
        if o["request_id"] is None:
            assert o["operator_ref"] is o["ack_reason"] is o["last_error"] is None
        else:
            assert o["request_id"] in own_requests, o


async def test_an_investigator_sees_another_units_target_state_but_not_its_case(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    jammu = await _jammu_case(client, tokens, store, settings)
    samba = tokens["investigator_samba"]

    text, target = await _get(client, samba, f"/v1/targets/imei/{IMEI}")
    _assert_redacted(text, target, set())
    # what it may learn: the state, each operator's state, which units hold it
    assert target["operator_states"]["jio"] == "blocked"
    assert {o["operator"]: o["status"] for o in target["operators"].values()}["bsnl"] == "dead"
    assert target["cases"] == [
        {
            "unit": "jammu",
            "holds": True,
            "request_id": None,
            "case_ref": None,
            "action": None,
            "status": None,
            "created_at": None,
        }
    ]

    # samba names the same handset in its own case: its filing shows jammu's orders redacted
    text = await (
        await client.post(
            "/v1/block-requests", headers=samba, json=_filing("SAMBA-1", imei_only=True)
        )
    ).text()
    filed = orjson.loads(text)
    _assert_redacted(text, filed, {filed["id"]})
    assert {o["operator"] for o in _orders(filed)} >= {"jio", "airtel", "bsnl"}

    text, got = await _get(client, samba, f"/v1/block-requests/{filed['id']}")
    _assert_redacted(text, got, {filed["id"]})

    text, target = await _get(client, samba, f"/v1/targets/imei/{IMEI}")
    _assert_redacted(text, target, {filed["id"]})
    mine = [c for c in target["cases"] if c["unit"] == "samba"]
    assert [(c["request_id"], c["case_ref"]) for c in mine] == [(filed["id"], "SAMBA-1")]

    # an unblock of a number only jammu holds: held by jammu, case and orders hidden
    unblock = _filing("SAMBA-2", "unblock", reason="false positive")
    unblock["targets"] = unblock["targets"][1:]
    text = await (await client.post("/v1/block-requests", headers=samba, json=unblock)).text()
    undone = orjson.loads(text)
    _assert_redacted(text, undone, {undone["id"]})
    assert undone["targets"][0]["held_by"] == [{"unit": "jammu", "case_ref": None}]

    # jammu and the supervisor still see everything of jammu's case
    for who in ("investigator", "supervisor"):
        text, target = await _get(client, tokens[who], f"/v1/targets/imei/{IMEI}")
        assert all(s in text for s in SECRETS), who
        text, got = await _get(client, tokens[who], f"/v1/block-requests/{jammu['id']}")
        assert "JIO-SECRET-REF" in text and "airtel-secret-reason" in text, who
    # ... but jammu sees samba's case as samba saw jammu's
    _, target = await _get(client, tokens["investigator"], f"/v1/targets/imei/{IMEI}")
    assert [c["case_ref"] for c in target["cases"] if c["unit"] == "samba"] == [None]


async def test_admins_read_configuration_not_case_data(client: Client, tokens: Tokens) -> None:
    await _post(client, tokens["investigator"], "/v1/block-requests", _filing(JAMMU_CASE))
    admin = tokens["admin"]
    for path in (
        "/v1/block-requests",
        "/v1/block-requests/1",
        "/v1/block-requests.csv",
        f"/v1/targets/imei/{IMEI}",
        "/v1/stats",
        "/v1/stats.csv",
        "/v1/overdue",
        "/v1/dead",
    ):
        resp = await client.get(path, headers=admin)
        assert resp.status == 403, (path, await resp.text())
    for path in ("/v1/units", "/v1/operators"):
        assert (await client.get(path, headers=admin)).status == 200, path
    # the audit: token and operator changes, never a filing
    _, audit = await _get(client, admin, "/v1/audit?limit=500")
    assert {e["entity_type"] for e in audit["items"]} == {"token"}
    _, audit = await _get(client, admin, "/v1/audit?action=request.filed.block")
    assert audit["items"] == []
    _, audit = await _get(client, tokens["supervisor"], "/v1/audit?action=request.filed.block")
    assert len(audit["items"]) == 1


async def test_readiness_tells_an_anonymous_caller_nothing_of_the_database(
    client: Client, db_url: str, server_url: str
) -> None:
    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        resp = await client.get("/readyz")
        text = await resp.text()
    finally:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await admin.close()
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert orjson.loads(text) == {"status": "unavailable", "detail": "database unavailable"}
    assert name not in text and "postgres" not in text.lower()
