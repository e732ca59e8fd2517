"""Migrations: an edited one stops start-up; only serve, worker and migrate apply them."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from service import db
from tests.conftest import _with_database
from tests.integration.test_cli import run_cli

EDITED = "applied migration(s) changed since they ran: 0003_audit_chains.sql"
NOT_MIGRATED = "the database has no fraudblock schema yet: run `fraudblock migrate` first"


@pytest.fixture
async def empty_db_url(server_url: str) -> AsyncIterator[str]:
    """A database with nothing in it, as a new installation finds it."""
    name = f"fraudblock_empty_{os.getpid()}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield _with_database(server_url, name)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def sql(url: str, query: str) -> Any:
    """One statement on its own connection; its first value."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_an_edited_migration_stops_migrate_serve_worker_and_commands(db_url: str) -> None:
    await sql(db_url, "UPDATE schema_migrations SET checksum = 'x' WHERE version = '0003'")
    conn = await asyncpg.connect(db_url)
    try:
        with pytest.raises(db.MigrationChanged) as raised:
            await db.migrate(conn)
        assert raised.value.versions == ["0003"]
        assert "checksum x, the file now has" in str(raised.value)
        with pytest.raises(db.MigrationChanged):
            await db.require_current(conn)
        # the advisory lock was given back: another migrator is not stuck behind it
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await conn.close()
    commands = [
        ["migrate"],
        ["serve", "--port", str(free_port())],
        ["worker"],
        ["token", "list"],
        ["audit", "verify"],
    ]
    runs = await asyncio.gather(*(run_cli(db_url, *args) for args in commands))
    for args, run in zip(commands, runs, strict=True):
        assert run.rc == 2, (args, run)
        assert f"fraudblock: {EDITED}" in run.err, (args, run.err)
        assert "Traceback" not in run.err and run.out == "", (args, run)


async def test_commands_other_than_migrate_leave_a_fresh_database_untouched(
    empty_db_url: str,
) -> None:
    commands = [
        ["token", "list"],
        ["token", "create", "--role", "admin", "--name", "a"],
        ["audit", "verify"],
        ["operator", "list"],
    ]
    runs = await asyncio.gather(*(run_cli(empty_db_url, *args) for args in commands))
    for args, run in zip(commands, runs, strict=True):
        assert run.rc == 2, (args, run)
        assert run.err.strip().endswith(f"fraudblock: {NOT_MIGRATED}"), (args, run.err)
        assert run.out == "" and "Traceback" not in run.err
    tables = "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    assert await sql(empty_db_url, tables) == 0
    migrated = await run_cli(empty_db_url, "migrate")
    assert migrated.rc == 0, migrated.err
    assert migrated.out.startswith(f"applied {len(db.load_migrations())} migration(s): 0001, ")
    listing = await run_cli(empty_db_url, "token", "list")
    assert listing.rc == 0 and listing.out == "", listing.err


async def test_commands_name_the_pending_migrations(db_url: str) -> None:
    latest = db.load_migrations()[-1].version
    await sql(db_url, f"DELETE FROM schema_migrations WHERE version = '{latest}'")
    run = await run_cli(db_url, "token", "list")
    assert run.rc == 2, run
    assert (
        f"fraudblock: the database schema is not current (pending migration(s): {latest}): "
        "run `fraudblock migrate` first"
    ) in run.err
    remaining = "SELECT count(*) FROM schema_migrations"
    assert await sql(db_url, remaining) == len(db.load_migrations()) - 1
