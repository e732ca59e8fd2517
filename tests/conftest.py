"""Shared fixtures: one real Postgres per session, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service import auth, db
from service.http.app import create_app
from service.settings import Settings
from service.store import Store

TEMPLATE = "fraudblock_test_template"
_counter = itertools.count()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """DATABASE_URL's server, or an embedded Postgres started once for the session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="fraudblock-test-") as tmp:
        yield db.start_embedded(Path(tmp))


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    """A database with every migration applied, cloned for each test."""
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    url = _with_database(server_url, TEMPLATE)
    conn = await asyncpg.connect(url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    yield url


@asynccontextmanager
async def migrated_database(server_url: str, name: str) -> AsyncIterator[str]:
    """A copy of the migrated template named `name`, dropped afterwards; its URL."""
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    finally:
        await admin.close()
    yield _with_database(server_url, name)
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def db_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with migrated_database(
        server_url, f"fraudblock_test_{os.getpid()}_{next(_counter)}"
    ) as url:
        yield url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database, dispatcher off unless a test turns it on."""
    return Settings(
        database_url=db_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        log_format="console",
        poll_interval_s=0.2,
    )


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A store on this test's database."""
    pool = await db.create_pool(db_url, 1, 5)
    try:
        yield Store(pool)
    finally:
        await pool.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """The service over real HTTP on loopback."""
    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def ids_in_pages(
    client: TestClient[Any, Any], path: str, headers: dict[str, str], **params: str
) -> list[int]:
    """The ids a list endpoint gives page by page (two a page), following `next_after`."""
    seen: list[int] = []
    after: int | None = None
    while True:
        query = {**params, "limit": "2", **({"after": str(after)} if after else {})}
        resp = await client.get(path, headers=headers, params=query)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        seen += [item["id"] for item in page["items"]]
        if (after := page["next_after"]) is None:
            return seen


def body(*targets: tuple[str, str], **extra: Any) -> dict[str, Any]:
    """A block request body with these (kind, value) targets."""
    doc: dict[str, Any] = {
        "case_ref": "FIR-12/2026",
        "category": "kyc_update",
        "targets": [{"kind": k, "value": v} for k, v in targets],
    }
    doc.update(extra)
    return doc


class Tokens:
    """One bearer header per role, created through the real token code."""

    def __init__(self) -> None:
        self.headers: dict[str, dict[str, str]] = {}

    def __getitem__(self, who: str) -> dict[str, str]:
        return self.headers[who]


@pytest.fixture
async def tokens(store: Store) -> Tokens:
    """Tokens: investigator (jammu), investigator_samba, supervisor, admin, jio, airtel."""
    t = Tokens()
    for who, role, unit, op in (
        ("investigator", "investigator", "jammu", None),
        ("investigator_samba", "investigator", "samba", None),
        ("supervisor", "supervisor", None, None),
        ("admin", "admin", None, None),
        ("jio", "operator", None, "jio"),
        ("airtel", "operator", None, "airtel"),
    ):
        _, token = await auth.create_token(store, role=role, name=who, unit=unit, operator=op)
        t.headers[who] = {"Authorization": f"Bearer {token}"}
    return t
