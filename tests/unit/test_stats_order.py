"""The order of a stats report's groups."""

from __future__ import annotations

from datetime import date
from typing import Any

from service.stats import in_key_order


def groups(*keys: tuple[Any, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {k: {"key": k} for k in keys}


def test_groups_run_by_unit_then_day() -> None:
    found = in_key_order(
        groups(
            ("srinagar", date(2026, 1, 2)),
            ("jammu", date(2026, 1, 10)),
            ("jammu", date(2026, 1, 9)),
            ("Kathua", date(2025, 12, 31)),
        )
    )
    assert [g["key"] for g in found] == [
        ("Kathua", date(2025, 12, 31)),  # text order: capitals first, as the CSV always had
        ("jammu", date(2026, 1, 9)),
        ("jammu", date(2026, 1, 10)),
        ("srinagar", date(2026, 1, 2)),
    ]


def test_a_missing_value_comes_first() -> None:
    found = in_key_order(
        groups(("jammu", date(2026, 1, 2)), (None, date(2026, 1, 3)), ("anantnag", None))
    )
    assert [g["key"] for g in found] == [
        (None, date(2026, 1, 3)),
        ("anantnag", None),
        ("jammu", date(2026, 1, 2)),
    ]
