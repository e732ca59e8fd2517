"""The `fraudblock` console script, run as a real subprocess against this test's database."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Tokens

Client = TestClient[Any, Any]
ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"^fb_[A-Za-z0-9_-]{20,}$")


@dataclass(frozen=True)
class Run:
    """What one command printed and how it exited."""

    rc: int
    out: str
    err: str


async def run_cli(
    db_url: str | None,
    *args: str,
    program: list[str] | None = None,
    stdin: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> Run:
    """Run the console script (by default `python -m service.cli`) with DATABASE_URL set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDBLOCK_")}
    env["FRAUDBLOCK_LOG_FORMAT"] = "json"
    env.update(env_extra or {})
    if db_url is not None:
        env["DATABASE_URL"] = db_url
    cmd = program or [sys.executable, "-m", "service.cli"]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(stdin.encode() if stdin is not None else b""), timeout=30
    )
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def create_token(db_url: str, *extra: str) -> str:
    run = await run_cli(db_url, "token", "create", *extra)
    assert run.rc == 0, run.err
    return run.out


async def token_id(db_url: str, name: str) -> int:
    listing = await run_cli(db_url, "token", "list")
    assert listing.rc == 0, listing.err
    ids = [int(line.split("\t")[0]) for line in listing.out.splitlines() if f"\t{name}\t" in line]
    assert len(ids) == 1, listing.out
    return ids[0]


async def test_token_create_prints_only_the_token_and_it_works(client: Client, db_url: str) -> None:
    out = await create_token(db_url, "--role", "investigator", "--unit", "jammu", "--name", "x")
    assert out.endswith("\n") and out.count("\n") == 1
    token = out.strip()
    assert TOKEN.match(token), out
    resp = await client.get("/v1/units", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert "jammu" in {u["code"] for u in (await resp.json())["items"]}


async def test_token_list_never_prints_secrets(db_url: str) -> None:
    token = (
        await create_token(db_url, "--role", "investigator", "--unit", "jammu", "--name", "x")
    ).strip()
    conn = await asyncpg.connect(db_url)
    try:
        stored = await conn.fetchval("SELECT token_hash FROM tokens WHERE name = 'x'")
    finally:
        await conn.close()
    listing = await run_cli(db_url, "token", "list")
    assert listing.rc == 0, listing.err
    line = next(row for row in listing.out.splitlines() if "\tx\t" in row)
    assert line.split("\t")[1:] == ["investigator", "jammu", "x", "active"]
    for secret in (token, token.removeprefix("fb_"), bytes(stored).hex()):
        assert secret not in listing.out and secret not in listing.err
    assert "fb_" not in listing.out


async def test_token_revoke_makes_the_token_unauthorized(client: Client, db_url: str) -> None:
    token = (await create_token(db_url, "--role", "supervisor", "--name", "sup")).strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/units", headers=headers)).status == 200
    tid = await token_id(db_url, "sup")
    revoked = await run_cli(db_url, "token", "revoke", str(tid))
    assert revoked.rc == 0, revoked.err
    assert revoked.out.strip() == f"revoked token {tid}"
    resp = await client.get("/v1/units", headers=headers)
    assert resp.status == 401 and resp.content_type == "application/problem+json"
    listing = await run_cli(db_url, "token", "list")
    assert any(row.endswith("\tsup\trevoked") for row in listing.out.splitlines())
    again = await run_cli(db_url, "token", "revoke", str(tid))
    assert again.rc != 0
    assert f"no active token with id {tid}" in again.err


async def test_bad_role_or_unit_is_refused_with_a_clear_message(db_url: str) -> None:
    bad_role, bad_unit, no_unit, unit_on_admin = await asyncio.gather(
        run_cli(db_url, "token", "create", "--role", "sheriff", "--unit", "jammu", "--name", "x"),
        run_cli(
            db_url, "token", "create", "--role", "investigator", "--unit", "mars", "--name", "x"
        ),
        run_cli(db_url, "token", "create", "--role", "investigator", "--name", "x"),
        run_cli(db_url, "token", "create", "--role", "admin", "--unit", "jammu", "--name", "x"),
    )
    assert bad_role.rc != 0 and bad_role.out == ""
    assert "invalid choice: 'sheriff'" in bad_role.err and "investigator" in bad_role.err
    assert bad_unit.rc != 0 and bad_unit.out == ""
    assert "no such unit: mars" in bad_unit.err
    assert no_unit.rc != 0 and "needs --unit" in no_unit.err
    assert unit_on_admin.rc != 0 and "not scoped to a unit" in unit_on_admin.err
    for run in (bad_unit, no_unit, unit_on_admin):
        assert "Traceback" not in run.err
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM tokens") == 0
    finally:
        await conn.close()


async def test_routing_load_routes_numbers_in_the_prefix_to_that_operator(
    client: Client, tokens: Tokens, db_url: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "series.csv"
    csv_file.write_text("prefix,operator,label\n919876,bsnl,test series\n+9170061, jio\n")
    loaded = await run_cli(db_url, "routing", "load", str(csv_file))
    assert loaded.rc == 0, loaded.err
    assert "loaded 2 number-series prefixes" in loaded.out
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": "FIR-1/2026",
            "category": "kyc_update",
            "targets": [
                {"kind": "msisdn", "value": "98765 43210"},
                {"kind": "msisdn", "value": "70061 23456"},
            ],
        },
    )
    assert resp.status == 201, await resp.text()
    first, second = (await resp.json())["targets"]
    assert [o["operator"] for o in first["orders"]] == ["bsnl"]
    assert [o["operator"] for o in second["orders"]] == ["jio"]


async def test_routing_load_refuses_a_file_naming_an_unknown_operator(
    db_url: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "series.csv"
    csv_file.write_text("919876,bsnl\n919877,nosuchop\n")
    run = await run_cli(db_url, "routing", "load", str(csv_file))
    assert run.rc != 0 and "unknown operator" in run.err and "Traceback" not in run.err
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM number_series WHERE prefix='+919876'") == 0
    finally:
        await conn.close()


async def test_operator_set_refuses_a_non_http_url(db_url: str) -> None:
    run = await run_cli(
        db_url,
        "operator",
        "set",
        "jio",
        "--adapter",
        "http_json",
        "--config",
        '{"url":"ftp://x"}',
    )
    assert run.rc != 0 and run.out == ""
    assert "adapter config refused" in run.err and "url" in run.err
    assert "Traceback" not in run.err
    listing = await run_cli(db_url, "operator", "list")
    jio = next(line for line in listing.out.splitlines() if line.startswith("jio"))
    assert "pull" in jio.split()


async def test_help_mentions_every_command() -> None:
    commands = [
        "serve",
        "worker",
        "demo",
        "migrate",
        "seed",
        "token",
        "routing",
        "operator",
        "simulate-operator",
        "audit",
    ]
    script = Path(sys.executable).with_name("fraudblock")
    if not script.exists():
        pytest.skip("the fraudblock console script is not installed next to this Python")
    top, token, routing, operator, audit = await asyncio.gather(
        run_cli(None, "--help", program=[str(script)]),
        run_cli(None, "token", "--help"),
        run_cli(None, "routing", "--help"),
        run_cli(None, "operator", "--help"),
        run_cli(None, "audit", "--help"),
    )
    assert top.rc == 0
    listed = set(re.findall(r"^ {4}([a-z-]+)", top.out, re.MULTILINE))
    assert set(commands) <= listed, top.out
    for run, actions in (
        (token, ["create", "list", "revoke"]),
        (routing, ["load"]),
        (operator, ["list", "set", "disable"]),
        (audit, ["verify"]),
    ):
        assert run.rc == 0
        assert set(actions) <= set(re.findall(r"^ {4}([a-z-]+)", run.out, re.MULTILINE)), run.out


async def test_audit_verify_passes_on_a_fresh_database(db_url: str) -> None:
    run = await run_cli(db_url, "audit", "verify")
    assert run.rc == 0, run.err
    assert run.out.startswith("audit chain intact")


async def test_category_add_lets_requests_name_it_and_report_zone_prints(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    added = await run_cli(db_url, "category", "add", "sextortion", "Sextortion")
    assert added.rc == 0, added.err
    again = await run_cli(db_url, "category", "add", "sextortion", "Sextortion")
    assert again.rc == 2 and "exists" in again.err
    bad = await run_cli(db_url, "category", "add", "Bad Code", "x")
    assert bad.rc == 2
    listing = await run_cli(db_url, "category", "list")
    assert "sextortion\tSextortion" in listing.out.splitlines()
    resp = await client.post(
        "/v1/block-requests",
        headers=tokens["investigator"],
        json={
            "case_ref": "FIR-1",
            "category": "sextortion",
            "targets": [{"kind": "msisdn", "value": "+919810012345"}],
        },
    )
    assert resp.status == 201, await resp.text()
    report = await run_cli(db_url, "report", "zone")
    assert report.rc == 0, report.err
    assert "Zone: 0 calling numbers and 0 phone sets blocked; Rs 0 put on hold" in report.out
    as_csv = await run_cli(db_url, "report", "zone", "--csv", "--from", "2026-01-01")
    assert as_csv.out.splitlines()[0].startswith("unit,name,numbers_blocked")


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_operator_secrets_never_travel_on_the_command_line_nor_print(
    db_url: str, tmp_path: Path
) -> None:
    config = f'{{"url": "http://127.0.0.1:9/orders", "secret": "{SECRET}"}}'
    set_ = ("operator", "set", "jio", "--adapter", "http_json")
    refused = await run_cli(db_url, *set_, "--config", config)
    assert refused.rc == 2 and "secret" in refused.err and "--config-file" in refused.err
    assert SECRET not in refused.err + refused.out

    path = tmp_path / "jio.json"
    path.write_text(config)
    for how, extra in (
        (["--config-file", str(path)], {}),
        (["--config-file", "-"], {"stdin": config}),
        (["--config-env", "JIO_CONFIG"], {"env_extra": {"JIO_CONFIG": config}}),
    ):
        run = await run_cli(db_url, *set_, *how, **extra)  # type: ignore[arg-type]
        assert run.rc == 0, (how, run.err)
        listing = await run_cli(db_url, "operator", "list")
        assert listing.rc == 0
        assert SECRET not in listing.out + listing.err, how
        jio = next(line for line in listing.out.splitlines() if line.startswith("jio"))
        assert '"secret": "whsec_<redacted>"' in jio and "http://127.0.0.1:9/orders" in jio
    conn = await asyncpg.connect(db_url)
    try:
        stored = await conn.fetchval("SELECT adapter_config FROM operators WHERE code = 'jio'")
    finally:
        await conn.close()
    assert SECRET in stored  # stored as given, only printed redacted


async def test_the_simulator_takes_its_credentials_from_a_file_or_the_environment(
    tmp_path: Path,
) -> None:
    for flag in ("--secret", "--token"):
        run = await run_cli(None, "simulate-operator", "--port", "1", flag, SECRET)
        assert run.rc == 2 and f"{flag}-file" in run.err, run.err
    run = await run_cli(None, "simulate-operator", "--port", "1")
    assert run.rc == 2 and "FRAUDBLOCK_SIM_SECRET" in run.err

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    for how, env in (
        (["--secret-file", str(secret_file)], {}),
        ([], {"FRAUDBLOCK_SIM_SECRET": SECRET}),
    ):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDBLOCK_")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "simulate-operator", "--port", str(port), *how,
            env={**environ, **env}, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "the simulator did not start"
                    await asyncio.sleep(0.1)
        finally:
            proc.terminate()
            await proc.wait()
