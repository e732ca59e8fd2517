"""`fraudblock serve` as a real process, stopped with SIGTERM while filings pour in."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from service import audit, auth
from service.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_sigterm_answers_or_refuses_every_filing_and_half_files_none(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    _, token = await auth.create_token(store, role="investigator", name="t", unit="jammu")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "FRAUDBLOCK_LOG_FORMAT": "json"}
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--no-dispatcher", cwd=ROOT, env=env, stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    created: list[int] = []
    enough = asyncio.Event()  # 30 answered: stop the service while the rest are in flight
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
            for _ in range(200):
                try:
                    async with s.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(log_path.read_text())

            async def file(n: int) -> Any:
                body = {
                    "case_ref": f"FIR-{n}",
                    "category": "other",
                    "targets": [{"kind": "msisdn", "value": f"+9198100{n:05d}"}],
                }
                try:
                    async with s.post(f"{base}/v1/block-requests", json=body, headers=headers) as r:
                        if r.status == 201:
                            created.append((await r.json())["id"])
                            if len(created) >= 30:
                                enough.set()
                        return r.status
                except (TimeoutError, aiohttp.ClientError) as exc:
                    return type(exc).__name__

            filings = [asyncio.create_task(file(n)) for n in range(300)]
            await asyncio.wait_for(enough.wait(), 20)
            proc.send_signal(signal.SIGTERM)
            outcomes = await asyncio.gather(*filings)
        code = await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log_text = log_path.read_text()
    assert code == 0, log_text
    assert '"service.stopped"' in log_text
    # a filing either got its 201 (and is stored), or an error; none got a 5xx
    assert not [o for o in outcomes if isinstance(o, int) and o != 201], outcomes
    rows = await store.fetch("audit_all", 0, 10_000)
    filed = sorted(int(r["entity_id"]) for r in rows if r["action"] == "request.filed.block")
    assert set(created) <= set(filed)
    for request_id in filed:  # every stored request is whole: head, link and order
        stored = await store.fetchrow("request_get", request_id)
        assert stored is not None and stored["status"] == "dispatching"
    assert (await audit.verify(store)).ok
