"""`fraudblock worker` as a real process: killed mid-batch, and stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from adapters.registry import build_adapter
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import (
    Client,
    FakeOperator,
    attempts_by_order,
    eventually,
    fake_operator,
    file_request,
    running,
    scripted,
    statuses,
    use_http_json,
    vi_numbers,
)

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def worker_process(
    db_url: str, log_dir: Path, worker: str, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m service.cli worker` on the test database; killed if still alive on exit."""
    environ = {
        **os.environ,
        "DATABASE_URL": db_url,
        "FRAUDBLOCK_WORKER_ID": worker,
        "FRAUDBLOCK_POLL_INTERVAL_S": "0.1",
        "FRAUDBLOCK_LOG_FORMAT": "json",
        **env,
    }
    with (log_dir / f"{worker}.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "worker", cwd=ROOT, env=environ, stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def read_log(path: Path) -> str:
    """A worker's log, to show when it misbehaves."""
    return path.read_text()


async def batch_arrived(fake: FakeOperator, log: Path) -> None:
    async def arrived() -> bool:
        return len(fake.batches) == 1

    try:
        await eventually(arrived, "the worker's first batch", limit_s=20)
    except AssertionError:
        raise AssertionError(read_log(log)) from None


async def test_a_killed_workers_orders_come_back_when_its_lease_expires(
    client: Client, tokens: Tokens, store: Store, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi", timeout_s=30)
        _, held = fake.hold()
        fake.answers["vi"] = scripted(held)  # the first batch never gets an answer
        await file_request(client, tokens["investigator"], vi_numbers(5))
        async with worker_process(db_url, tmp_path, "doomed", FRAUDBLOCK_LEASE_S="2") as proc:
            await batch_arrived(fake, tmp_path / "doomed.log")
            leased = await store.pool.fetch("SELECT status, leased_by FROM orders")
            assert {(r["status"], r["leased_by"]) for r in leased} == {("in_flight", "doomed")}
            proc.kill()
            assert await proc.wait() == -signal.SIGKILL

        s = settings.model_copy(
            update={"lease_s": 2, "poll_interval_s": 0.1, "maintenance_interval_s": 0.1}
        )

        async def acked() -> bool:
            return await statuses(store, "vi") == {"acked": 5}

        async with running(Dispatcher(store, s, build_adapter, worker="rescuer")):
            await eventually(acked, "the rescued orders", limit_s=10)

    assert [b.attempts for b in fake.batches] == [[1] * 5, [2] * 5]
    for rows in (await attempts_by_order(store, "vi")).values():
        summary = [(a["attempt_no"], a["outcome"], a["worker"], a["error"]) for a in rows]
        assert summary == [
            (1, "released", "doomed", "lease expired: worker doomed stopped"),
            (2, "acknowledged", "rescuer", None),
        ]
        # the rescue started only after the lease had run out
        assert rows[1]["started_at"] >= rows[0]["started_at"]


@pytest.mark.parametrize("batch_finishes", [True, False], ids=["finishes", "released"])
async def test_sigterm_finishes_or_releases_the_batch_in_flight_and_exits_0(
    client: Client,
    tokens: Tokens,
    store: Store,
    db_url: str,
    tmp_path: Path,
    batch_finishes: bool,
) -> None:
    grace = 1.5
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi", timeout_s=30)
        gate, held = fake.hold()
        fake.answers["vi"] = scripted(held)
        await file_request(client, tokens["investigator"], vi_numbers(5))
        env = {"FRAUDBLOCK_SHUTDOWN_GRACE_S": str(grace), "FRAUDBLOCK_LEASE_S": "30"}
        async with worker_process(db_url, tmp_path, "term", **env) as proc:
            await batch_arrived(fake, tmp_path / "term.log")
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            if batch_finishes:
                await asyncio.sleep(0.3)
                gate.set()
            code = await asyncio.wait_for(proc.wait(), grace + 5)
            took = time.monotonic() - sent
        log = read_log(tmp_path / "term.log")
        assert code == 0, log
        assert '"worker.stopped"' in log

    assert "in_flight" not in await statuses(store)
    attempts = await attempts_by_order(store, "vi")
    if batch_finishes:
        assert took < grace, took
        assert await statuses(store, "vi") == {"acked": 5}
        expected = [(1, "acknowledged", "term", None)]
    else:
        assert grace <= took < grace + 1.0, took
        assert await statuses(store, "vi") == {"queued": 5}
        expected = [(1, "released", "term", "released unfinished at shutdown")]
    assert len(attempts) == 5
    for rows in attempts.values():
        assert [(a["attempt_no"], a["outcome"], a["worker"], a["error"]) for a in rows] == expected


async def test_a_worker_whose_metrics_port_is_taken_stops_with_a_reason(
    db_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with worker_process(
            db_url, tmp_path, "w-taken", FRAUDBLOCK_WORKER_METRICS_PORT=str(port)
        ) as proc:
            assert await asyncio.wait_for(proc.wait(), 30) == 2
    said = read_log(tmp_path / "w-taken.log")
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in said
    assert "Traceback" not in said
