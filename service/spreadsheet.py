"""CSV for spreadsheets: a cell a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, Protocol

# a spreadsheet reads a cell starting with one of these as a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def neutral(value: Any) -> Any:
    """A text cell that would start a formula gets a leading apostrophe; other values as they
    are (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Writer:
    """A csv.writer whose every row is neutralised."""

    def __init__(self, out: _Writable) -> None:
        self._w = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row."""
        self._w.writerow([neutral(v) if isinstance(v, str) else v for v in row])  # most: numbers


def text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV text, neutralised like `Writer`'s (a chunk of a streamed export)."""
    out = io.StringIO()
    w = Writer(out)
    for row in rows:
        w.writerow(row)
    return out.getvalue()
