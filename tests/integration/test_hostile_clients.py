"""Hostile and broken clients against the real server (the guarded runner `serve` uses):
trickling headers and bodies are cut off on time, connections past the cap are refused, a
client leaving mid-body is one clean log line, parser errors are problem+json."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from service.http import server
from service.settings import Settings
from tests.conftest import Tokens

TRICKLERS = 300


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[str, server.GuardedRunner]]:
    """The service on a free loopback port, with short deadlines."""
    tight = settings.model_copy(
        update={
            "port": 0,
            "header_read_timeout_s": 1.0,
            "body_read_timeout_s": 1.0,
            "keepalive_timeout_s": 2.0,
            "max_connections": 1_000,
        }
    )
    runner = await server.start(tight)
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", runner
    finally:
        await runner.cleanup()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def _trickle(port: int, closed_after: list[float], started: float) -> None:
    """Send a request's headers a byte at a time, until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for byte in b"GET /v1/units HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1024), 0.2) == b"":
                    break
            if reader.at_eof():
                break
    except (ConnectionError, OSError):
        pass
    finally:
        closed_after.append(time.monotonic() - started)
        writer.close()


async def test_trickling_connections_are_dropped_on_time_while_others_are_served(
    served: tuple[str, server.GuardedRunner], tokens: Tokens
) -> None:
    url, runner = served
    closed_after: list[float] = []
    started = time.monotonic()
    tricklers = [
        asyncio.create_task(_trickle(_port(url), closed_after, started)) for _ in range(TRICKLERS)
    ]
    await asyncio.sleep(0.3)
    served_ok = 0
    async with aiohttp.ClientSession() as session:
        while not all(t.done() for t in tricklers) and time.monotonic() - started < 10:
            async with session.get(f"{url}/v1/units", headers=tokens["investigator"]) as resp:
                assert resp.status == 200
                served_ok += 1
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*tricklers), 10)
    print(
        f"\n{TRICKLERS} trickling connections closed after "
        f"{min(closed_after):.2f}-{max(closed_after):.2f} s; {served_ok} normal requests served"
    )
    assert len(closed_after) == TRICKLERS
    assert max(closed_after) < 4.0  # header deadline 1 s, plus scheduling slack
    assert served_ok >= 5
    assert runner.guard.timed_out >= TRICKLERS
    assert runner.guard.open <= 2


async def test_a_trickling_body_gets_408(
    served: tuple[str, server.GuardedRunner], tokens: Tokens
) -> None:
    url, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
    auth = tokens["investigator"]["Authorization"].encode()
    writer.write(
        b"POST /v1/block-requests HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + auth
        + b"\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
    )
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(4096), 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in answer
    assert time.monotonic() - started < 3
    assert await asyncio.wait_for(reader.read(), 5) == b""  # then the connection is closed
    writer.close()


async def test_connections_past_the_cap_are_refused_and_the_server_recovers(
    settings: Settings, tokens: Tokens
) -> None:
    capped = settings.model_copy(update={"port": 0, "max_connections": 20})
    runner = await server.start(capped)
    port = runner.addresses[0][1]
    idle = []
    try:
        for _ in range(20):
            idle.append(await asyncio.open_connection("127.0.0.1", port))
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
        assert runner.guard.refused == 1
        for _, w in idle:
            w.close()
        idle.clear()
        await asyncio.sleep(0.2)
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}/v1/units", headers=tokens["investigator"]
            ) as resp,
        ):
            assert resp.status == 200
    finally:
        for _, w in idle:
            w.close()
        await runner.cleanup()


async def test_a_client_leaving_mid_body_is_logged_cleanly(
    served: tuple[str, server.GuardedRunner], tokens: Tokens
) -> None:
    url, _ = served
    auth = tokens["investigator"]["Authorization"].encode()
    head = (
        b"POST /v1/block-requests HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + auth
        + b"\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    )
    with capture_logs() as logs:
        _reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
        writer.write(head + b'{"case_ref": "FIR-1", ')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        for _ in range(100):
            if any(e["event"] == "http.client_disconnected" for e in logs):
                break
            await asyncio.sleep(0.05)
    events = [e["event"] for e in logs]
    assert "http.client_disconnected" in events
    assert "http.unhandled_error" not in events
    assert not any(e.get("exc_info") for e in logs)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v1/units HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"GET /v1/units HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        # a URL longer than the parser takes: 9,000 bytes of percent-encoded Devanagari
        b"GET /v1/cases?case_ref=" + b"%E0%A4%85" * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
async def test_parser_errors_are_problem_json_with_a_request_id(
    served: tuple[str, server.GuardedRunner], request_bytes: bytes
) -> None:
    url, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
    with capture_logs() as logs:
        writer.write(request_bytes)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    lower = head.decode("latin-1").lower()
    assert lower.startswith(("http/1.1 400", "http/1.0 400")), answer
    assert "content-type: application/problem+json" in lower
    assert "x-request-id: " in lower
    assert b'"status":400' in payload
    assert not any(e.get("exc_info") for e in logs)
    assert "http.bad_request" in [e["event"] for e in logs]


async def test_every_operation_documents_the_parsers_400(
    served: tuple[str, server.GuardedRunner],
) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as session, session.get(f"{url}/openapi.json") as resp:
        doc = await resp.json()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert "400" in operation["responses"], (method, path)
