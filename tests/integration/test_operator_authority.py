"""Orders carry their authority: request, unit, case, category, legal basis, officer, seq and
the instruction the officers' ranks allow, in every form an operator receives them."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import signing
from adapters.registry import build_adapter, validate_config
from adapters.simulator_server import (
    SIMULATOR_STATE,
    SimulatorSettings,
    create_simulator_app,
)
from service import auth, operators
from service.dispatcher import Dispatcher
from service.http.app import create_app
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.test_cli import run_cli

Client = TestClient[Any, Any]
IMEI = "490154203237518"
JIO_NUMBER = "7006012345"  # +9170060 is a SAMPLE Jio series: only jio is asked
SECRET = signing.generate_secret()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Blocks go straight through only from an SP or above."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        log_format="console",
        direct_block_min_rank="sp",
    )


async def officer(
    store: Store, role: str, name: str, rank: str, unit: str | None
) -> dict[str, str]:
    """A bearer header for a person's token that names the officer and rank."""
    _, token = await auth.create_token(
        store,
        role=role,
        name=name.lower(),
        unit=unit,
        officer=name,
        rank=rank,  # type: ignore[arg-type]
    )
    return {"Authorization": f"Bearer {token}"}


async def file(client: Client, headers: dict[str, str], value: str, **extra: Any) -> Any:
    doc = {
        "case_ref": "FIR-88/2026",
        "category": "investment",
        "legal_basis": "BNSS s.94; IT Act s.69A",
        "targets": [{"kind": "imei" if len(value) == 15 else "msisdn", "value": value}],
        **extra,
    }
    resp = await client.post("/v1/block-requests", headers=headers, json=doc)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def pull(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get("/v1/operator/orders", headers=headers)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["orders"])


async def test_pulled_orders_carry_the_request_and_its_officer(
    client: Client, tokens: Tokens, store: Store
) -> None:
    si = await officer(store, "investigator", "Rakesh Kumar", "SI", "jammu")
    sp = await officer(store, "supervisor", "Anita Sharma", "S.P.", None)
    junior = await file(client, si, IMEI)
    senior = await file(client, sp, "356938035643809", unit="samba", case_ref="FIR-9/2026")
    orders = {o["request_id"]: o for o in await pull(client, tokens["jio"])}
    first = orders[junior["id"]]
    assert {k: v for k, v in first.items() if k not in ("order_id", "ack_due_in_s")} == {
        "action": "block",
        "kind": "imei",
        "value": IMEI,
        "urgent": False,
        "attempt": 1,
        "seq": junior["targets"][0]["orders"][0]["seq"],
        "instruction": "reverify",  # an SI is below the SP the service requires
        "request_id": junior["id"],
        "unit": "jammu",
        "case_ref": "FIR-88/2026",
        "category": "investment",
        "legal_basis": "BNSS s.94; IT Act s.69A",
        "officer": {"name": "Rakesh Kumar", "rank": "SI"},
        "reason": None,
    }
    second = orders[senior["id"]]
    assert second["instruction"] == "block"
    assert (second["unit"], second["case_ref"]) == ("samba", "FIR-9/2026")
    assert second["officer"] == {"name": "Anita Sharma", "rank": "SP"}
    # a token without an officer: the order says so, and a block needs re-verification
    plain = await file(client, tokens["investigator"], "352099001761481")
    [third] = [o for o in await pull(client, tokens["airtel"]) if o["request_id"] == plain["id"]]
    assert third["officer"] == {"name": None, "rank": None}
    assert third["instruction"] == "reverify"


async def test_an_approval_by_a_senior_officer_authorises_a_direct_block(
    settings: Settings, store: Store
) -> None:
    app = create_app(settings.model_copy(update={"approval_policy": "supervisor"}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        asi = await officer(store, "investigator", "Mohd Iqbal", "asi", "doda")
        dig = await officer(store, "supervisor", "V. Raina", "DIG", None)
        inspector = await officer(store, "supervisor", "K. Singh", "Inspector", None)
        _, jio = await auth.create_token(store, role="operator", name="jio", operator="jio")
        jio_h = {"Authorization": f"Bearer {jio}"}
        approved_high = await file(client, asi, JIO_NUMBER)
        approved_low = await file(client, asi, "7006012346")
        assert await pull(client, jio_h) == []  # nothing goes before its approval
        for req, by in ((approved_high, dig), (approved_low, inspector)):
            resp = await client.post(f"/v1/block-requests/{req['id']}/approve", headers=by)
            assert resp.status == 200, await resp.text()
        got = {o["request_id"]: o for o in await pull(client, jio_h)}
    assert got[approved_high["id"]]["instruction"] == "block"
    assert got[approved_high["id"]]["officer"] == {"name": "V. Raina", "rank": "DIG"}
    assert got[approved_low["id"]]["instruction"] == "reverify"
    assert got[approved_low["id"]]["officer"] == {"name": "K. Singh", "rank": "Inspector"}


@pytest.fixture
async def simulator() -> AsyncIterator[TestServer]:
    """The standalone fake operator (sync answers) on a loopback port."""
    server = TestServer(create_simulator_app(SimulatorSettings(secret=SECRET)), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


async def test_the_simulated_operator_receives_the_authority_over_http_json(
    client: Client, store: Store, settings: Settings, simulator: TestServer
) -> None:
    await operators.set_operator(
        store,
        "jio",
        "http_json",
        {"url": str(simulator.make_url("/orders")), "secret": SECRET},
        validate_config,
    )
    si = await officer(store, "investigator", "Rakesh Kumar", "SI", "jammu")
    ssp = await officer(store, "supervisor", "P. Dutta", "SSP", None)
    junior = await file(client, si, JIO_NUMBER)
    senior = await file(client, ssp, "7006012399", unit="kathua")
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    state = simulator.app[SIMULATOR_STATE]
    received = {int(e.order.request_id or 0): e.order for e in state.answers.values() if e.order}
    low, high = received[junior["id"]], received[senior["id"]]
    assert (low.instruction, low.unit, low.case_ref, low.category) == (
        "reverify",
        "jammu",
        "FIR-88/2026",
        "investment",
    )
    assert low.legal_basis == "BNSS s.94; IT Act s.69A"
    assert low.officer == {"name": "Rakesh Kumar", "rank": "SI"}
    assert low.seq == junior["targets"][0]["orders"][0]["seq"] > 0
    assert (high.instruction, high.officer) == ("block", {"name": "P. Dutta", "rank": "SSP"})
    # the simulator disconnects a number it was told to re-verify: that counts as blocked
    resp = await client.get(f"/v1/targets/msisdn/{JIO_NUMBER}", headers=si)
    target = await resp.json()
    assert target["state"] == "blocked"
    assert target["operators"]["jio"]["ack_status"] == "disconnected"


async def test_file_drop_csv_carries_the_authority(
    client: Client, store: Store, settings: Settings, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    await operators.set_operator(
        store, "jio", "file_drop", {"outbox": str(outbox)}, validate_config
    )
    dsp = await officer(store, "investigator", "S. Bhat", "dsp", "reasi")
    req = await file(client, dsp, JIO_NUMBER, priority="urgent")
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    [batch] = sorted(outbox.glob("orders-*.csv"))
    with batch.open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["request_id"] == str(req["id"])
    assert row["seq"] == str(req["targets"][0]["orders"][0]["seq"])
    assert (row["unit"], row["case_ref"], row["category"]) == ("reasi", "FIR-88/2026", "investment")
    assert row["legal_basis"] == "BNSS s.94; IT Act s.69A"
    assert (row["officer_name"], row["officer_rank"]) == ("S. Bhat", "DSP")
    assert row["instruction"] == "reverify"


async def test_token_create_takes_an_officer_and_a_rank(db_url: str) -> None:
    run = await run_cli(
        db_url,
        "token",
        "create",
        "--role",
        "investigator",
        "--unit",
        "jammu",
        "--name",
        "hc-1",
        "--officer",
        "R. Lal",
        "--rank",
        "head constable",
    )
    assert run.rc == 0, run.err
    listing = await run_cli(db_url, "token", "list")
    assert "\thc-1\tactive\tHead Constable R. Lal" in listing.out
    bad = await run_cli(
        db_url,
        "token",
        "create",
        "--role",
        "investigator",
        "--unit",
        "jammu",
        "--name",
        "x",
        "--rank",
        "Commissioner",
    )
    assert bad.rc != 0
    assert "unknown rank 'Commissioner'" in bad.err
