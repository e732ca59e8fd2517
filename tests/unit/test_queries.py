"""Every named query the code runs exists in queries.sql, and none is left unused."""

from __future__ import annotations

import re
from pathlib import Path

from service.store import load_queries

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(
    r"""\.(?:fetch|fetchrow|fetchval|execute|executemany)\(\s*["']([a-z0-9_]+)["']""", re.S
)
INDIRECT = re.compile(r"""["']((?:orders|audit)_[a-z0-9_]+_list)["']""")


def used_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "service").rglob("*.py"):
        text = path.read_text()
        names |= set(CALL.findall(text)) | set(INDIRECT.findall(text))
    return names


def test_every_query_the_code_names_exists() -> None:
    missing = used_names() - set(load_queries())
    assert not missing, f"queries used in code but not in queries.sql: {sorted(missing)}"


def test_no_query_is_left_unused() -> None:
    text = "\n".join(p.read_text() for p in (ROOT / "service").rglob("*.py"))
    unused = [name for name in load_queries() if f'"{name}"' not in text]
    assert not unused, f"queries nobody runs: {unused}"
