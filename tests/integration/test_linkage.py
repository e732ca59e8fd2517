"""Handset <-> SIM linkage over real HTTP: sightings, linked lookups, linked_from blocks that
reach independent operator simulators, alerts, and flagged handsets that need approval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import signing
from adapters.registry import build_adapter, validate_config
from adapters.simulator_server import SIMULATOR_STATE, SimulatorSettings, create_simulator_app
from service import operators
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens

Client = TestClient[Any, Any]
HANDSET = "490154203237518"
OTHER_HANDSET = "356938035643809"
JIO = "+917006012345"  # SAMPLE series: jio
AIRTEL = "+919810012345"  # SAMPLE series: airtel
VI = "+919811012345"  # SAMPLE series: vi
SECRET = signing.generate_secret()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """A handset seen with more than three numbers in a day is flagged."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        log_format="console",
        linked_numbers_per_day=3,
    )


async def sight(
    client: Client, headers: dict[str, str], *items: Any, status: int = 200
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/operator/sightings", headers=headers, json={"sightings": list(items)}
    )
    assert resp.status == status, await resp.text()
    return dict(await resp.json())


def seen(imei: str, msisdn: str, at: str = "2026-11-30T10:00:00+05:30") -> dict[str, str]:
    return {"imei": imei, "msisdn": msisdn, "seen_at": at}


async def get(client: Client, headers: dict[str, str], path: str, status: int = 200) -> Any:
    resp = await client.get(path, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def file(client: Client, headers: dict[str, str], **doc: Any) -> Any:
    body = {"case_ref": "FIR-31/2026", "category": "fake_loan_app", **doc}
    resp = await client.post("/v1/block-requests", headers=headers, json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_sightings_are_judged_one_by_one_and_linked_both_ways(
    client: Client, tokens: Tokens, store: Store
) -> None:
    out = await sight(
        client,
        tokens["jio"],
        seen(HANDSET, "7006012345", "2026-11-30T09:00:00+05:30"),
        seen(HANDSET, "7006012345", "2026-11-30T09:00:00+05:30"),
        seen("490154203237519", "7006012345"),  # bad check digit
        seen(HANDSET, "12"),
        {"imei": HANDSET, "msisdn": "7006012345"},
        seen(HANDSET, "7006012345", "2099-01-01T00:00:00Z"),
        seen(HANDSET, "9810012345", "2026-11-30T11:00:00+05:30"),
        seen(HANDSET, "7006012345", "2026-11-30T12:00:00+05:30"),
    )
    assert [r["result"] for r in out["results"]] == [
        "applied",
        "duplicate",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "applied",
        "applied",
    ]
    assert out["applied"] == 3 and out["flagged"] == []
    assert out["results"][2]["reason"].startswith("imei: ")
    assert out["results"][4]["reason"] == "seen_at: Field required"
    assert out["results"][5]["reason"] == "seen_at: in the future"
    again = await sight(
        client, tokens["jio"], seen(HANDSET, "7006012345", "2026-11-30T09:00+05:30")
    )
    assert [r["result"] for r in again["results"]] == ["duplicate"]
    await sight(client, tokens["airtel"], seen(HANDSET, "7006012345", "2026-11-29T08:00:00+05:30"))

    numbers = await get(client, tokens["investigator"], f"/v1/targets/imei/{HANDSET}/linked")
    assert numbers["flagged"] is None
    assert [(n["value"], n["operator"], n["sightings"]) for n in numbers["linked"]] == [
        (JIO, "airtel", 1),
        (JIO, "jio", 2),
        (AIRTEL, "jio", 1),
    ]
    jio_row = numbers["linked"][1]
    assert (jio_row["first_seen"], jio_row["last_seen"]) == (
        "2026-11-30T03:30:00Z",
        "2026-11-30T06:30:00Z",
    )
    handsets = await get(client, tokens["supervisor"], "/v1/targets/msisdn/07006012345/linked")
    assert {(h["value"], h["operator"]) for h in handsets["linked"]} == {
        (HANDSET, "jio"),
        (HANDSET, "airtel"),
    }
    await get(client, tokens["jio"], f"/v1/targets/imei/{HANDSET}/linked", status=403)
    await get(client, tokens["investigator"], "/v1/targets/imei/123/linked", status=404)
    await sight(client, tokens["investigator"], seen(HANDSET, JIO), status=403)
    entries = [
        a for a in await store.fetch("audit_all", 0, 100) if a["action"] == "sightings.applied"
    ]
    assert [(a["entity_id"], a["details"]["applied"]) for a in entries] == [
        ("jio", 3),
        ("airtel", 1),
    ]


@pytest.fixture
async def simulators(store: Store) -> AsyncIterator[dict[str, TestServer]]:
    """Every operator behind its own standalone simulator (sync answers) over http_json."""
    servers: dict[str, TestServer] = {}
    try:
        for code in operators.DEMO_OPERATORS:
            app = create_simulator_app(SimulatorSettings(secret=SECRET))
            servers[code] = TestServer(app, host="127.0.0.1")
            await servers[code].start_server()
            config = {"url": str(servers[code].make_url("/orders")), "secret": SECRET}
            await operators.set_operator(store, code, "http_json", config, validate_config)
        yield servers
    finally:
        for server in servers.values():
            await server.close()


def received(server: TestServer) -> set[tuple[str, str, str]]:
    state = server.app[SIMULATOR_STATE]
    return {
        (e.order.kind, e.order.value, e.order.case_ref or "")
        for e in state.answers.values()
        if e.order
    }


async def test_a_linked_from_block_reaches_every_linked_numbers_operator(
    client: Client,
    tokens: Tokens,
    store: Store,
    settings: Settings,
    simulators: dict[str, TestServer],
) -> None:
    await sight(client, tokens["jio"], seen(HANDSET, JIO))
    await sight(client, tokens["airtel"], seen(HANDSET, AIRTEL), seen(OTHER_HANDSET, VI))
    req = await file(client, tokens["investigator"], linked_from={"kind": "imei", "value": HANDSET})
    assert [(t["kind"], t["value"], t["index"]) for t in req["targets"]] == [
        ("imei", HANDSET, 0),
        ("msisdn", JIO, 1),
        ("msisdn", AIRTEL, 2),
    ]
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    case = "FIR-31/2026"
    assert received(simulators["jio"]) == {("imei", HANDSET, case), ("msisdn", JIO, case)}
    assert received(simulators["airtel"]) == {("imei", HANDSET, case), ("msisdn", AIRTEL, case)}
    assert received(simulators["vi"]) == {("imei", HANDSET, case)}  # VI was in another handset
    assert received(simulators["bsnl"]) == {("imei", HANDSET, case)}
    doc = await get(client, tokens["investigator"], f"/v1/block-requests/{req['id']}")
    assert doc["status"] == "completed"
    assert {t["state"] for t in doc["targets"]} == {"blocked"}
    # from a number: the handsets it was used in, and the numbers it names itself
    other = await file(
        client,
        tokens["investigator"],
        case_ref="FIR-32/2026",
        linked_from={"kind": "msisdn", "value": "9811012345"},
        targets=[{"kind": "msisdn", "value": "+91 98110 12345"}],
    )
    assert [(t["kind"], t["value"]) for t in other["targets"]] == [
        ("msisdn", VI),
        ("imei", OTHER_HANDSET),
    ]


async def test_linked_from_is_checked(client: Client, tokens: Tokens) -> None:
    h = tokens["investigator"]
    bad = {"case_ref": "F", "category": "other", "linked_from": {"kind": "imei", "value": "12"}}
    resp = await client.post("/v1/block-requests", headers=h, json=bad)
    assert resp.status == 422
    assert {e["field"] for e in (await resp.json())["errors"]} == {"linked_from.value"}
    unblock = {
        "case_ref": "F",
        "category": "other",
        "action": "unblock",
        "reason": "court order",
        "linked_from": {"kind": "imei", "value": HANDSET},
    }
    resp = await client.post("/v1/block-requests", headers=h, json=unblock)
    assert resp.status == 422
    assert "linked_from" in {e["field"] for e in (await resp.json())["errors"]}
    resp = await client.post(
        "/v1/block-requests", headers=h, json={"case_ref": "F", "category": "other"}
    )
    assert resp.status == 422
    assert {e["field"] for e in (await resp.json())["errors"]} == {"targets"}
    # nothing seen with it: the identifier alone
    alone = await file(client, h, linked_from={"kind": "imei", "value": OTHER_HANDSET})
    assert [t["value"] for t in alone["targets"]] == [OTHER_HANDSET]


async def test_a_new_sim_in_a_blocked_handset_raises_an_alert(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    for code in operators.DEMO_OPERATORS:
        await operators.set_operator(store, code, "simulator", {}, validate_config)
    await sight(client, tokens["jio"], seen(HANDSET, JIO, "2026-11-28T10:00:00+05:30"))
    await file(client, tokens["investigator"], targets=[{"kind": "imei", "value": HANDSET}])
    pending = await sight(client, tokens["airtel"], seen(HANDSET, VI, "2026-11-28T11:00:00+05:30"))
    assert pending["results"][0]["alert_id"] is None  # not blocked yet: on its way
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    out = await sight(
        client,
        tokens["airtel"],
        seen(HANDSET, JIO, "2026-11-30T10:00:00+05:30"),  # known number: no alert
        seen(HANDSET, AIRTEL, "2026-11-30T10:05:00+05:30"),
        seen(HANDSET, AIRTEL, "2026-11-30T10:06:00+05:30"),
    )
    first = out["results"][1]["alert_id"]
    assert [r["alert_id"] for r in out["results"]] == [None, first, None]
    assert first is not None
    page = await get(client, tokens["supervisor"], "/v1/alerts")
    assert [
        (a["id"], a["kind"], a["imei"], a["msisdn"], a["operator"], a["details"])
        for a in page["items"]
    ] == [
        (first, "sim_in_blocked_handset", HANDSET, AIRTEL, "airtel", {"handset_state": "blocked"})
    ]
    assert page["items"][0]["seen_at"] == "2026-11-30T04:35:00Z"
    await get(client, tokens["investigator"], "/v1/alerts", status=403)


async def test_a_handset_seen_with_too_many_numbers_is_flagged_and_needs_approval(
    client: Client, tokens: Tokens
) -> None:
    day1 = [seen(HANDSET, f"70060123{i:02d}", f"2026-11-30T0{i}:00:00+05:30") for i in range(3)]
    late = seen(HANDSET, "7006012399", "2026-11-30T23:30:00+05:30")  # the same Indian day
    next_day = seen(HANDSET, "7006012398", "2026-12-01T00:30:00+05:30")
    out = await sight(client, tokens["jio"], *day1, next_day)
    assert out["flagged"] == []
    out = await sight(client, tokens["jio"], late)
    assert out["flagged"] == [HANDSET]
    numbers = await get(client, tokens["investigator"], f"/v1/targets/imei/{HANDSET}/linked")
    assert numbers["flagged"]["day"] == "2026-11-30" and numbers["flagged"]["numbers"] == 4
    handsets = await get(client, tokens["investigator"], "/v1/targets/msisdn/7006012399/linked")
    assert handsets["linked"][0]["flagged"] is True
    alerts = await get(client, tokens["supervisor"], "/v1/alerts?kind=handset_flagged")
    [alert] = alerts["items"]
    assert (alert["imei"], alert["details"]) == (
        HANDSET,
        {"day": "2026-11-30", "numbers": 4, "limit": 3},
    )
    # an investigator's block of it waits for a supervisor; a number linked to it goes at once
    held = await file(client, tokens["investigator"], targets=[{"kind": "imei", "value": HANDSET}])
    assert held["status"] == "pending_approval"
    via_number = await file(
        client, tokens["investigator"], linked_from={"kind": "msisdn", "value": "7006012300"}
    )
    assert via_number["status"] == "pending_approval"
    assert (await get(client, tokens["jio"], "/v1/operator/orders"))["orders"] == []
    resp = await client.post(
        f"/v1/block-requests/{held['id']}/approve", headers=tokens["supervisor"]
    )
    assert resp.status == 200, await resp.text()
    pulled = (await get(client, tokens["jio"], "/v1/operator/orders"))["orders"]
    assert [(o["kind"], o["value"], o["request_id"]) for o in pulled] == [
        ("imei", HANDSET, held["id"])
    ]
    # a supervisor's own filing is its approval
    direct = await file(
        client,
        tokens["supervisor"],
        unit="jammu",
        case_ref="FIR-40/2026",
        targets=[{"kind": "imei", "value": HANDSET}],
    )
    assert direct["status"] != "pending_approval"
    # numbers seen on other days leave another handset alone
    spread = [
        seen(OTHER_HANDSET, f"70060124{i:02d}", f"2026-11-{20 + i}T10:00:00+05:30")
        for i in range(6)
    ]
    assert (await sight(client, tokens["jio"], *spread))["flagged"] == []
    ok = await file(
        client, tokens["investigator"], targets=[{"kind": "imei", "value": OTHER_HANDSET}]
    )
    assert ok["status"] == "dispatching"
