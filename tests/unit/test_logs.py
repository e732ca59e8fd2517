"""Production logs: one JSON object per line, whatever a log call is given."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from service.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def _log_everything() -> None:
    structlog.contextvars.bind_contextvars(request_id="req-1")
    log = structlog.get_logger()
    log.info(
        "dispatch.batch",
        counts={1: 2},
        opaque=object(),
        at=datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC),
        place="Jammu – ऊधमपुर",
    )
    log.debug("not.shown")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("http.unhandled_error")


def _check(lines: list[str]) -> None:
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "dispatch.batch" and first["level"] == "info"
    assert first["request_id"] == "req-1" and first["counts"] == {"1": 2}
    assert first["opaque"].startswith("<object object at ")
    assert first["at"] == "2026-12-08T01:02:03+00:00" and first["place"] == "Jammu – ऊधमपुर"
    assert first["timestamp"].endswith("Z")
    assert second["level"] == "error" and "ZeroDivisionError" in second["exception"]


def test_json_lines_on_a_binary_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    _log_everything()
    _check(capfd.readouterr().err.splitlines())


def test_json_lines_on_a_text_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    text = io.StringIO()
    monkeypatch.setattr("sys.stderr", text)
    configure_logging("json", "info")
    _log_everything()
    _check(text.getvalue().splitlines())
