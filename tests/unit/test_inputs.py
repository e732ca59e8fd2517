"""The pure rules for values from outside: hidden characters, times, integers, CSV cells."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from service import spreadsheet
from service.inputs import Day, Id, Instant, Line, Text, hidden_character


@pytest.mark.parametrize(
    ("text", "newlines", "found"),
    [
        ("FIR-12/2026", False, None),
        ("a\nb\tc", True, None),
        ("a\nb", False, "control character U+000A at position 1"),
        ("a\x00b", True, "NUL byte U+0000 at position 1"),
        ("a\u202eb", True, "bidirectional override U+202E at position 1"),
        ("\u2067x", False, "bidirectional override U+2067 at position 0"),
        ("x\udcff", True, "character that is not valid UTF-8 at position 1"),
        ("x\x85", True, "control character U+0085 at position 1"),
        ("हिंदी ਪੰਜਾਬੀ", False, None),
    ],
)
def test_hidden_characters(text: str, newlines: bool, found: str | None) -> None:
    assert hidden_character(text, allow_newlines=newlines) == found


def test_line_and_text_types() -> None:
    assert TypeAdapter(Text).validate_python("a\nb") == "a\nb"
    with pytest.raises(ValidationError, match="must not contain a control character"):
        TypeAdapter(Line).validate_python("a\nb")


@pytest.mark.parametrize(
    "value",
    [
        "0.5",
        "274055",
        "2026-01-01T00:00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2200-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        274055,
    ],
)
def test_instants_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Instant).validate_python(value)


def test_instants_accepted() -> None:
    got = TypeAdapter(Instant).validate_python("2026-01-31T10:00:00+05:30")
    assert got == datetime.fromisoformat("2026-01-31T04:30:00+00:00")


@pytest.mark.parametrize("value", ["0.5", "274055", "0001-01-01", "2026-01-01T00:00:00Z"])
def test_days_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Day).validate_python(value)
    assert TypeAdapter(Day).validate_python("2026-01-31") == date(2026, 1, 31)


@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "0.0", "1e3", "١٢"])
def test_ids_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Id).validate_python(value)
    assert TypeAdapter(Id).validate_python("9223372036854775807") == 2**63 - 1


def test_csv_cells_that_start_a_formula_are_text() -> None:
    out = io.StringIO()
    w = spreadsheet.Writer(out)
    w.writerow(["=1+1", "+1", "-1", "@A1", "\tx", "\rx", "ok", 5, -5, None])
    assert out.getvalue() == "'=1+1,'+1,'-1,'@A1,'\tx,\"'\rx\",ok,5,-5,\r\n"
