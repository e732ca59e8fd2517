"""Lists of targets as people paste or upload them: one per line, kind guessed, each checked."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from service.identifiers import InvalidTarget, normalize_target

_LABEL = re.compile(
    r"^\s*(?P<label>imei|msisdn|mobile|mob|phone|ph|number|no)\b\.?\s*(no\b\.?|number\b)?"
    r"\s*[:=#\-]?\s*",
    re.IGNORECASE,
)
_IMEI_LABELS = frozenset({"imei"})
MAX_LINE = 200


@dataclass(frozen=True)
class Entry:
    """One line as given: its 1-based line number and the text of its target."""

    line: int
    text: str


@dataclass(frozen=True)
class CheckedLine:
    """A line after checking: its kind and normalised value, or why it was refused."""

    line: int
    text: str
    kind: str | None
    value: str | None
    reason: str | None

    @property
    def ok(self) -> bool:
        """True when the line names a valid target."""
        return self.reason is None


def pasted(text: str) -> list[Entry]:
    """The non-blank lines of a pasted list; a line may carry a label ('IMEI: ...')."""
    return [Entry(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def from_csv(text: str) -> list[Entry]:
    """The targets of a CSV file (see `from_rows`)."""
    return from_rows(list(csv.reader(io.StringIO(text))))


def from_rows(rows: list[list[str]]) -> list[Entry]:
    """The first non-empty cell of each row (a CSV's or a sheet's), or its 'value' column (with
    'kind' beside it) when the first row names one; entries keep their row numbers."""
    header = [c.strip().lower() for c in rows[0]] if rows else []
    entries: list[Entry] = []
    if "value" in header:
        vi = header.index("value")
        ki = header.index("kind") if "kind" in header else None
        for n, row in enumerate(rows[1:], 2):
            value = row[vi].strip() if vi < len(row) else ""
            kind = row[ki].strip() if ki is not None and ki < len(row) else ""
            if value or kind:
                entries.append(Entry(n, f"{kind}: {value}" if kind else value))
        return entries
    for n, row in enumerate(rows, 1):
        cell = next((c.strip() for c in row if c.strip()), "")
        if cell:
            entries.append(Entry(n, cell))
    return entries


def guess_kind(text: str) -> tuple[str, str]:
    """(kind, value) of a line: a label decides; else '+' or '00' is a number, 14-16 digits an
    IMEI, anything else a number."""
    label = _LABEL.match(text)
    if label is not None and label.group("label"):
        value = text[label.end() :].strip()
        return ("imei" if label.group("label").lower() in _IMEI_LABELS else "msisdn"), value
    digits = re.sub(r"\D", "", text)
    if text.lstrip().startswith("+") or digits.startswith("00"):
        return "msisdn", text
    return ("imei" if len(digits) in (14, 15, 16) else "msisdn"), text


def check(entries: list[Entry], region: str = "IN") -> list[CheckedLine]:
    """Every entry checked with the service's own normalisation; bad ones keep their reason."""
    out: list[CheckedLine] = []
    for e in entries:
        if len(e.text) > MAX_LINE:
            out.append(CheckedLine(e.line, e.text[:MAX_LINE], None, None, "line is too long"))
            continue
        kind, raw = guess_kind(e.text)
        try:
            out.append(CheckedLine(e.line, e.text, kind, normalize_target(kind, raw, region), None))
        except InvalidTarget as exc:
            out.append(CheckedLine(e.line, e.text, kind, None, exc.reason))
    return out
