"""CSV exports over real HTTP: streamed a chunk at a time, the same rows as the lists."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.http.app import create_app
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import eventually

Client = TestClient[Any, Any]
ROWS = 3000
CHUNK_ROWS = 100


@pytest.fixture
async def small_chunks(settings: Settings) -> AsyncIterator[Client]:
    """The service with exports sent `CHUNK_ROWS` rows at a time."""
    app = create_app(settings.model_copy(update={"export_chunk_rows": CHUNK_ROWS}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def _seed(store: Store, rows: int) -> None:
    """`rows` requests, every tenth of Samba's, every hundredth with a formula-like case."""
    async with store.pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO block_requests (unit_code, case_ref, category, action, priority, status,
                                        target_count, created_by)
            SELECT CASE WHEN i % 10 = 0 THEN 'samba' ELSE 'jammu' END,
                   CASE WHEN i % 100 = 0 THEN '=cmd|' || i ELSE 'FIR-' || i END,
                   'kyc_update', 'block', 'normal', 'completed', 1,
                   (SELECT min(id) FROM tokens)
            FROM generate_series(1, $1) AS i
            """,
            rows,
        )


async def _listed(client: Client, headers: dict[str, str], query: str = "") -> list[list[str]]:
    """Every page of GET /v1/block-requests, as the export's rows."""
    rows: list[list[str]] = []
    after = None
    while True:
        cursor = "" if after is None else f"&after={after}"
        resp = await client.get(f"/v1/block-requests?limit=500{query}{cursor}", headers=headers)
        page = await resp.json()
        for r in page["items"]:
            case_ref = "'" + r["case_ref"] if r["case_ref"].startswith("=") else r["case_ref"]
            rows.append(
                [
                    str(r["id"]),
                    r["unit"],
                    case_ref,
                    r["category"],
                    r["action"],
                    r["priority"],
                    r["status"],
                    str(r["target_count"]),
                ]
            )
        after = page["next_after"]
        if after is None:
            return rows


async def _export(client: Client, path: str, headers: dict[str, str]) -> tuple[list[Any], int]:
    """The export's CSV rows and the number of HTTP chunks they came in."""
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv" and resp.charset == "utf-8"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert "Content-Length" not in resp.headers and resp.headers["X-Request-ID"]
    data, chunks = b"", 0
    async for piece, end_of_chunk in resp.content.iter_chunks():
        data += piece
        chunks += end_of_chunk
    return list(csv.reader(io.StringIO(data.decode()))), chunks


async def test_the_request_export_streams_the_listed_rows_in_chunks(
    small_chunks: Client, tokens: Tokens, store: Store
) -> None:
    await _seed(store, ROWS)
    rows, chunks = await _export(small_chunks, "/v1/block-requests.csv", tokens["supervisor"])
    assert rows[0] == [
        "id",
        "unit",
        "case_ref",
        "category",
        "action",
        "priority",
        "status",
        "target_count",
        "created_at",
        "updated_at",
    ]
    assert [r[:8] for r in rows[1:]] == await _listed(small_chunks, tokens["supervisor"])
    assert len(rows) == ROWS + 1
    # one HTTP chunk per CHUNK_ROWS rows read: the service never held the whole export
    assert chunks >= ROWS // CHUNK_ROWS


async def test_the_export_keeps_the_callers_scope_and_filters(
    small_chunks: Client, tokens: Tokens, store: Store
) -> None:
    await _seed(store, 500)
    own, _ = await _export(small_chunks, "/v1/block-requests.csv", tokens["investigator_samba"])
    assert len(own) == 51 and {r[1] for r in own[1:]} == {"samba"}
    assert [r[:8] for r in own[1:]] == await _listed(small_chunks, tokens["investigator_samba"])
    other, _ = await _export(
        small_chunks, "/v1/block-requests.csv?unit=jammu", tokens["investigator_samba"]
    )
    assert len(other) == 1  # the header alone
    filtered, _ = await _export(
        small_chunks, "/v1/block-requests.csv?unit=jammu&after=200", tokens["supervisor"]
    )
    assert [r[:8] for r in filtered[1:]] == await _listed(
        small_chunks, tokens["supervisor"], "&unit=jammu&after=200"
    )


async def test_an_export_refused_before_its_first_byte_is_a_problem(
    small_chunks: Client, tokens: Tokens
) -> None:
    for headers, status in ((tokens["jio"], 403), ({}, 401)):
        resp = await small_chunks.get("/v1/block-requests.csv", headers=headers)
        assert resp.status == status
        assert resp.content_type == "application/problem+json"
    bad = await small_chunks.get("/v1/block-requests.csv?status=x", headers=tokens["supervisor"])
    assert bad.status == 422 and bad.content_type == "application/problem+json"


async def test_a_client_leaving_mid_export_frees_the_database_session(
    small_chunks: Client, tokens: Tokens, store: Store
) -> None:
    await _seed(store, ROWS)
    resp = await small_chunks.get("/v1/block-requests.csv", headers=tokens["supervisor"])
    assert resp.status == 200
    await resp.content.readany()
    resp.close()  # gone after the first bytes

    async def cursor_closed() -> bool:
        held = await store.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
        )
        return bool(held == 0)

    await eventually(cursor_closed, "the export's transaction ends")
    listed = await small_chunks.get("/v1/block-requests?limit=1", headers=tokens["supervisor"])
    assert listed.status == 200
