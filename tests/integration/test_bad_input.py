"""Bad input gets a 4xx naming the field, never a 500: NUL and control characters, integers and
times out of range, naive or numeric times, bytes that are not UTF-8, a client that goes away,
database faults; partial failures stay partial (acks, every bad target listed)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from adapters.registry import build_adapter
from service import store as store_module
from service.dispatcher import Dispatcher
from service.http.context import STORE
from service.settings import Settings
from service.store import Store, StoreUnavailable
from tests.conftest import Tokens, body

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"
IMEI = "490154203237518"
LISTS = ("/v1/block-requests", "/v1/block-requests.csv", "/v1/overdue", "/v1/dead", "/v1/audit")


async def problem_of(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    doc: dict[str, Any] = await resp.json()
    for e in doc.get("errors", []):
        assert e["message"] and e["field"], doc
    return doc


def fields(doc: dict[str, Any]) -> set[str]:
    return {e["field"] for e in doc.get("errors", [])}


# --- text: NUL bytes, control characters, bidi overrides ----------------------------------


@pytest.mark.parametrize("field", ["case_ref", "note", "legal_basis"])
async def test_nul_byte_in_a_filing_names_the_field(
    client: Client, tokens: Tokens, field: str
) -> None:
    doc = body(("imei", IMEI), **{field: "FIR\u00001"})
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    problem = await problem_of(resp, 422)
    assert field in fields(problem)
    assert "NUL" in str(problem["errors"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("case_ref", "FIR\u202e1"),
        ("case_ref", "FIR\n1"),
        ("note", "a\u0007b"),
        ("legal_basis", "\u2066x"),
    ],
)
async def test_control_and_bidi_characters_in_free_text_are_refused(
    client: Client, tokens: Tokens, field: str, value: str
) -> None:
    doc = body(("imei", IMEI), **{field: value})
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    problem = await problem_of(resp, 422)
    assert field in fields(problem)


async def test_newlines_and_tabs_in_a_note_are_kept(client: Client, tokens: Tokens) -> None:
    doc = body(("imei", IMEI), note="line one\n\tline two")
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["note"] == "line one\n\tline two"


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/block-requests", "case_ref"),
        ("/v1/block-requests.csv", "case_ref"),
        ("/v1/audit", "actor"),
        ("/v1/audit", "action"),
        ("/v1/audit", "entity_type"),
        ("/v1/audit", "entity_id"),
    ],
)
async def test_nul_byte_in_a_list_filter_names_it(
    client: Client, tokens: Tokens, path: str, param: str
) -> None:
    resp = await client.get(f"{path}?{param}=a%00b", headers=tokens["supervisor"])
    assert param in fields(await problem_of(resp, 422))


# --- numbers and times out of range --------------------------------------------------------


@pytest.mark.parametrize("path", LISTS)
async def test_cursor_beyond_64_bits_is_422(client: Client, tokens: Tokens, path: str) -> None:
    resp = await client.get(f"{path}?after=99999999999999999999", headers=tokens["supervisor"])
    assert "after" in fields(await problem_of(resp, 422))


@pytest.mark.parametrize("value", ["0.0", "1e3", "-1"])
async def test_cursors_and_limits_are_plain_integers(
    client: Client, tokens: Tokens, value: str
) -> None:
    for path in ("/v1/overdue", "/v1/dead", "/v1/block-requests"):
        resp = await client.get(f"{path}?after={value}", headers=tokens["supervisor"])
        assert "after" in fields(await problem_of(resp, 422))
    resp = await client.get(f"/v1/audit?limit={value}", headers=tokens["supervisor"])
    assert "limit" in fields(await problem_of(resp, 422))


@pytest.mark.parametrize("path", ["/v1/block-requests", "/v1/block-requests.csv", "/v1/audit"])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("from", "0001-01-01T00:00:00+14:00"),
        ("to", "9999-12-31T23:59:59-14:00"),
        ("to", "0.5"),
        ("from", "274055"),
        ("from", "2026-01-01T00:00:00"),  # naive: never read as host-local time
    ],
)
async def test_times_must_be_iso_with_offset_and_in_range(
    client: Client, tokens: Tokens, path: str, param: str, value: str
) -> None:
    resp = await client.get(f"{path}?{param}={quote(value)}", headers=tokens["supervisor"])
    assert param in fields(await problem_of(resp, 422))


async def test_times_in_range_with_offset_are_accepted(client: Client, tokens: Tokens) -> None:
    since = quote("2026-01-01T00:00:00+05:30")
    for path in ("/v1/block-requests", "/v1/audit"):
        resp = await client.get(f"{path}?from={since}", headers=tokens["supervisor"])
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("value", ["0.5", "274055", "0001-01-01"])
async def test_stats_days_are_iso_dates_in_range(
    client: Client, tokens: Tokens, value: str
) -> None:
    resp = await client.get(f"/v1/stats?from={value}", headers=tokens["supervisor"])
    assert "from" in fields(await problem_of(resp, 422))


async def test_naive_requeue_window_is_422(client: Client, tokens: Tokens) -> None:
    resp = await client.post(
        "/v1/dead/requeue", headers=tokens["supervisor"], json={"dead_from": "2026-01-01T00:00:00"}
    )
    assert "dead_from" in fields(await problem_of(resp, 422))


# --- headers that are not text, 401s, instance ---------------------------------------------


async def raw_exchange(client: Client, request: bytes) -> bytes:
    """Send raw bytes to the test server and read its whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("header", "status"),
    [(b"Authorization: Bearer \xff\xfe", 401), (b"Idempotency-Key: \xff", 400)],
)
async def test_header_bytes_that_are_not_utf8_are_refused_cleanly(
    client: Client, tokens: Tokens, header: bytes, status: int
) -> None:
    auth = (
        b""
        if header.startswith(b"Authorization")
        else tokens["investigator"]["Authorization"].encode()
    )
    lines = [b"POST /v1/block-requests HTTP/1.1", b"Host: x", b"Connection: close", header]
    if auth:
        lines.append(b"Authorization: " + auth)
    payload = (
        b'{"case_ref": "FIR-1", "category": "other", '
        b'"targets": [{"kind": "imei", "value": "490154203237518"}]}'
    )
    lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(payload)]
    answer = await raw_exchange(client, b"\r\n".join(lines) + b"\r\n\r\n" + payload)
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith(f"http/1.1 {status}"), answer
    assert "content-type: application/problem+json" in head
    if status == 401:
        assert "www-authenticate: bearer" in head


async def test_401_names_the_bearer_scheme(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        resp = await client.get("/v1/units", headers=headers)
        await problem_of(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_instance_is_a_uri_reference_without_control_characters(client: Client) -> None:
    resp = await client.get("/v1/no%01where%0a%7f")
    problem = await problem_of(resp, 404)
    assert problem["instance"] == "/v1/no%01where%0A%7F"


async def test_every_listed_error_has_a_message(client: Client, tokens: Tokens) -> None:
    resp = await client.post(
        "/v1/block-requests", headers=tokens["supervisor"], json=body(("imei", IMEI))
    )
    assert fields(await problem_of(resp, 422)) == {"unit"}


async def test_reject_needs_a_reason_and_says_so(client: Client, tokens: Tokens) -> None:
    resp = await client.post("/v1/block-requests/1/reject", headers=tokens["supervisor"], json={})
    assert "reason" in fields(await problem_of(resp, 422))


# --- partial failures: every bad target listed; acks judged alone --------------------------


async def test_a_422_lists_every_bad_target_even_with_a_schema_error(
    client: Client, tokens: Tokens
) -> None:
    doc = {
        "case_ref": "FIR-9",
        "category": "other",
        "targets": [
            {"kind": "imei", "value": IMEI},
            {"kind": "msisdn", "value": "9" * 65},
            {"kind": "msisdn", "value": "12"},
            {"kind": "fax", "value": "7006012345"},
            {"kind": "imei", "value": "490154203237519"},
        ],
    }
    resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
    problem = await problem_of(resp, 422)
    by_index = {e["index"]: e for e in problem["errors"] if "index" in e}
    assert set(by_index) == {1, 2, 3, 4}
    assert by_index[2]["value"] == "12" and by_index[4]["value"] == "490154203237519"
    assert all(e["reason"] for e in by_index.values())


async def pulled(client: Client, tokens: Tokens, n: int) -> list[int]:
    for i in range(n):
        doc = body(("msisdn", f"70060123{i:02d}"), case_ref=f"FIR-{i}")
        resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
        assert resp.status == 201, await resp.text()
    resp = await client.get("/v1/operator/orders?limit=100", headers=tokens["jio"])
    orders = [o["order_id"] for o in (await resp.json())["orders"]]
    assert len(orders) == n
    return orders


async def test_an_odd_ack_is_invalid_and_the_others_are_applied(
    client: Client, tokens: Tokens
) -> None:
    a, b, c, d = await pulled(client, tokens, 4)
    now = datetime.now(UTC)
    acks = [
        {"order_id": a, "status": "blocked", "at": now.isoformat()},
        {"order_id": b, "status": "rejected", "reason": "no\u0000such"},
        {"order_id": c, "status": "blocked", "operator_ref": "ref\u00001"},
        {"order_id": d, "status": "blocked", "at": "9999-12-31T23:59:59+00:00"},
        "not an ack",
        {"order_id": 2**70, "status": "blocked"},
    ]
    resp = await client.post("/v1/operator/acks", headers=tokens["jio"], json={"acks": acks})
    assert resp.status == 200, await resp.text()
    out = await resp.json()
    assert [r["result"] for r in out["results"]] == ["applied"] + ["invalid"] * 5
    assert out["applied"] == 1
    assert all(r["reason"] for r in out["results"][1:])


async def test_an_ack_time_outside_the_orders_window_is_invalid(
    client: Client, tokens: Tokens
) -> None:
    early, late, naive, fine = await pulled(client, tokens, 4)
    now = datetime.now(UTC)
    acks = [
        {"order_id": early, "status": "blocked", "at": (now - timedelta(days=1)).isoformat()},
        {"order_id": late, "status": "blocked", "at": "2099-01-01T00:00:00+00:00"},
        {"order_id": naive, "status": "blocked", "at": "2026-06-01T10:00:00"},
        {"order_id": fine, "status": "blocked", "at": (now - timedelta(minutes=2)).isoformat()},
    ]
    resp = await client.post("/v1/operator/acks", headers=tokens["jio"], json={"acks": acks})
    results = (await resp.json())["results"]
    assert [r["result"] for r in results] == ["invalid", "invalid", "invalid", "applied"]
    assert "first send" in results[0]["reason"] and "first send" in results[1]["reason"]


# --- CSV ----------------------------------------------------------------------------------


async def test_csv_cells_that_would_be_formulas_are_neutralised(
    client: Client, tokens: Tokens
) -> None:
    for ref in ('=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)"):
        doc = body(("imei", IMEI), case_ref=ref)
        resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
        assert resp.status == 201, await resp.text()
    text = await (await client.get("/v1/block-requests.csv", headers=tokens["supervisor"])).text()
    cells = [c.strip('"') for line in text.splitlines()[1:] for c in line.split(",")]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), text
    assert "'=HYPERLINK(" in text and "'+1" in text and "'@SUM(A1)" in text


# --- faults: database errors answer 503 --------------------------------------------------


async def test_readyz_keeps_driver_text_from_anonymous_callers(client: Client) -> None:
    client.app[STORE].pool.terminate()  # every connection gone, as after a crash
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json()) == {"status": "unavailable", "detail": "database unavailable"}


async def test_connections_killed_by_the_database_answer_503(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    for _ in range(3):  # warm the pool: several connections to kill
        await client.get("/v1/units", headers=tokens["investigator"])
    admin = await asyncpg.connect(db_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    statuses = []
    for _ in range(12):
        resp = await client.get("/v1/block-requests", headers=tokens["supervisor"])
        statuses.append(resp.status)
        if resp.status == 503:
            assert resp.headers["Retry-After"]
    assert set(statuses) <= {200, 401, 503} and 500 not in statuses, statuses
    assert statuses[-1] == 200


async def test_admin_shutdown_mid_query_is_unavailable(db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    store = Store(pool, {"sleep": "SELECT pg_sleep(10)"})
    try:
        slow = asyncio.create_task(store.fetchval("sleep"))
        admin = await asyncpg.connect(db_url)
        try:
            for _ in range(100):
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'"
                )
                if killed:
                    break
                await asyncio.sleep(0.02)
        finally:
            await admin.close()
        with pytest.raises(StoreUnavailable):
            await slow
    finally:
        await pool.close()


def test_dying_connection_errors_are_unavailable() -> None:
    for exc in (
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ):
        assert isinstance(store_module._translate(exc), StoreUnavailable)


# --- Idempotency-Keys are kept for a window ------------------------------------------------


async def test_idempotency_keys_are_purged_after_the_window(
    client: Client, tokens: Tokens, settings: Settings, store: Store, db_url: str
) -> None:
    for key in ("old", "new"):
        resp = await client.post(
            "/v1/block-requests",
            headers={**tokens["investigator"], "Idempotency-Key": key},
            json=body(("imei", IMEI), case_ref=f"FIR-{key}"),
        )
        assert resp.status == 201
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'"
        )
        await Dispatcher(store, settings, build_adapter).upkeep()
        left = await conn.fetch("SELECT key FROM idempotency_keys")
    finally:
        await conn.close()
    assert [r["key"] for r in left] == ["new"]


async def test_filings_while_the_database_kills_sessions_get_201_or_503(
    client: Client, tokens: Tokens, db_url: str
) -> None:
    """Sessions terminated (57P01, as in a fast restart) under concurrent filings: every answer
    is a 201 or a 503 with Retry-After, and every 201 is there afterwards."""
    stop = asyncio.Event()
    killed = [0]

    async def kill_sessions() -> None:
        admin = await asyncpg.connect(db_url)
        try:
            while not stop.is_set():
                killed[0] += await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND state IN ('active', 'idle in transaction')"
                )
                await asyncio.sleep(0.01)
        finally:
            await admin.close()

    async def one(i: int) -> tuple[int, int | None]:
        doc = body(("msisdn", f"70060{i:05d}"), ("imei", IMEI), case_ref=f"FIR-K{i}")
        resp = await client.post("/v1/block-requests", headers=tokens["investigator"], json=doc)
        if resp.status == 503:
            assert resp.headers["Retry-After"]
        return resp.status, (await resp.json()).get("id") if resp.status == 201 else None

    killer = asyncio.create_task(kill_sessions())
    answers: list[tuple[int, int | None]] = []
    try:
        for start in range(0, 1000, 20):
            answers += await asyncio.gather(*(one(i) for i in range(start, start + 20)))
            if start >= 100 and killed[0] >= 3:
                break
    finally:
        stop.set()
        await killer
    statuses = [s for s, _ in answers]
    assert set(statuses) <= {201, 503}, statuses
    assert killed[0] >= 3
    answers.append((201, None))
    for _ in range(20):  # once the sessions are left alone, filing works again
        status, rid = await one(5000)
        if status == 201:
            answers.append((status, rid))
            break
    assert answers[-1][1] is not None
    for _, rid in answers:
        if rid is None:
            continue
        for _ in range(20):  # the pool may still hold a killed connection or two
            resp = await client.get(f"/v1/block-requests/{rid}", headers=tokens["supervisor"])
            if resp.status != 503:
                break
        assert resp.status == 200, await resp.text()
    print(f"\n{statuses.count(201)} filed, {statuses.count(503)} answered 503, {killed[0]} killed")
