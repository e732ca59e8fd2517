"""Several `fraudblock serve --reuse-port` processes on one port: the kernel spreads the
connections among them, each files what it gets and counts it on its own metrics port, and the
others go on when one stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp.test_utils import unused_port

from service import auth
from service.store import Store
from tests.integration.test_metrics import samples
from tests.integration.test_service_shutdown import ROOT


@asynccontextmanager
async def serving(
    db_url: str, port: int, log_path: Path, *flags: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`fraudblock serve` (no dispatcher) on the test database; killed if alive on exit."""
    env = {**os.environ, "DATABASE_URL": db_url, "FRAUDBLOCK_LOG_FORMAT": "json"}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--no-dispatcher", *flags, cwd=ROOT, env=env, stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _until_listening(proc: asyncio.subprocess.Process, log_path: Path) -> None:
    for _ in range(300):
        if b"service.listening" in await asyncio.to_thread(log_path.read_bytes):
            return
        assert proc.returncode is None, "exited before listening"
        await asyncio.sleep(0.05)
    raise AssertionError("not listening after 15 s")


def _filings_served(log_path: Path) -> int:
    return sum(
        1
        for line in log_path.read_text().splitlines()
        if '"http.request"' in line and '"/v1/block-requests"' in line
    )


async def _filings_counted(metrics_port: int) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{metrics_port}/metrics") as r,
    ):
        got = samples(await r.text())
    labels = (("method", "POST"), ("route", "/v1/block-requests"), ("status", "201"))
    return int(got.get(("fraudblock_http_requests_total", labels), 0))


async def _file(base: str, token: str, numbers: range) -> list[int]:
    """One filing per number, each on a connection of its own."""
    statuses = []
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as s:
        for n in numbers:
            body = {
                "case_ref": f"FIR-{n}",
                "category": "other",
                "targets": [{"kind": "msisdn", "value": f"+9198100{n:05d}"}],
            }
            headers = {"Authorization": f"Bearer {token}"}
            async with s.post(f"{base}/v1/block-requests", json=body, headers=headers) as r:
                statuses.append(r.status)
    return statuses


async def test_processes_sharing_a_port_each_serve_and_one_goes_on_alone(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    _, token = await auth.create_token(store, role="investigator", name="t", unit="jammu")
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    own = [unused_port(), unused_port()]  # each process's own /metrics
    async with (
        serving(db_url, port, logs[0], "--reuse-port", "--metrics-port", str(own[0])) as first,
        serving(db_url, port, logs[1], "--reuse-port", "--metrics-port", str(own[1])) as second,
    ):
        await _until_listening(first, logs[0])
        await _until_listening(second, logs[1])
        assert await _file(base, token, range(60)) == [201] * 60
        served = [_filings_served(p) for p in logs]
        assert sum(served) == 60 and min(served) > 0, served  # both took connections
        # each process counts what it served, on its own port
        assert [await _filings_counted(p) for p in own] == served
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 20) == 0
        assert await _file(base, token, range(60, 80)) == [201] * 20
        assert _filings_served(logs[1]) == served[1] + 20
    assert await store.pool.fetchval("SELECT count(*) FROM block_requests") == 80


async def test_without_the_flag_a_second_process_cannot_take_the_port(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    port = unused_port()
    async with serving(db_url, port, tmp_path / "first.log") as first:
        await _until_listening(first, tmp_path / "first.log")
        async with serving(db_url, port, tmp_path / "second.log") as second:
            assert await asyncio.wait_for(second.wait(), 30) == 2
        said = (tmp_path / "second.log").read_text()
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in said
        assert "--reuse-port" in said and "Traceback" not in said
        assert first.returncode is None


async def test_a_metrics_port_that_is_taken_stops_the_process_with_a_reason(
    db_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        log_path = tmp_path / "serve.log"
        async with serving(
            db_url, unused_port(), log_path, "--metrics-port", str(metrics_port)
        ) as proc:
            assert await asyncio.wait_for(proc.wait(), 30) == 2
    said = log_path.read_text()
    assert f"cannot serve metrics on 127.0.0.1:{metrics_port}: Address already in use" in said
    assert "Traceback" not in said
