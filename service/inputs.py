"""What a value from outside may hold: text without hidden characters, times with an offset in
a sane range, ids within 64 bits. Pure: used by the API models."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

MAX_ID = 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# bidi embeddings, overrides and isolates reorder what a reader sees (U+202A-202E, 2066-2069)
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_HINT = "an ISO 8601 date-time with its UTC offset, e.g. 2026-01-31T10:00:00+05:30"


def hidden_character(text: str, *, allow_newlines: bool) -> str | None:
    """A description of the first control or bidi character in `text`, or None."""
    for i, ch in enumerate(text):
        if allow_newlines and ch in "\n\t":
            continue
        if ch in _BIDI:
            return f"bidirectional override U+{ord(ch):04X} at position {i}"
        category = unicodedata.category(ch)
        if category == "Cc":
            name = "NUL byte" if ch == "\x00" else "control character"
            return f"{name} U+{ord(ch):04X} at position {i}"
        if category == "Cs":  # a byte that was not UTF-8, smuggled through as a surrogate
            return f"character that is not valid UTF-8 at position {i}"
    return None


def _line(value: str) -> str:
    found = hidden_character(value, allow_newlines=False)
    if found:
        raise ValueError(f"must not contain a {found}")
    return value


def _text(value: str) -> str:
    found = hidden_character(value, allow_newlines=True)
    if found:
        raise ValueError(f"must not contain a {found} (only newlines and tabs are allowed)")
    return value


def _stripped(value: str) -> str:
    return value.strip()


def _nonblank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


LINE = AfterValidator(_line)
TEXT = AfterValidator(_text)
# Surrounding whitespace is dropped after the length is checked, so a value the schema's
# maxLength refuses is refused here too, whatever spaces it starts with.
STRIPPED = AfterValidator(_stripped)
NONBLANK = AfterValidator(_nonblank)
Line = Annotated[str, LINE]
"""One line of text: no control characters, no bidi overrides."""
Text = Annotated[str, TEXT]
"""Free text: newlines and tabs allowed, other control characters and bidi overrides not."""


def _integer(value: Any) -> Any:
    # a query parameter is text: only plain digits are an integer ("0.0", "1e3" are not)
    if isinstance(value, str) and not re.fullmatch(r"[+-]?[0-9]+", value):
        raise ValueError("expected an integer")
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
"""An integer; as text, plain ASCII digits only."""
Id = Annotated[int, BeforeValidator(_integer), Field(ge=0, le=MAX_ID)]
"""A cursor or id: fits Postgres' bigint."""


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATETIME.match(value):
        raise ValueError(f"expected {DATETIME_HINT}")
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return value


def _iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 date, e.g. 2026-01-31")
    return value


def _date_in_range(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_datetime), AfterValidator(_in_range)]
"""A point in time as ISO 8601 with an offset, between 1970 and 2200."""
Day = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_date_in_range)]
"""A calendar day as ISO 8601 (YYYY-MM-DD), between 1970 and 2200."""
