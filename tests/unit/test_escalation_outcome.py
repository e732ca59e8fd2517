"""What one escalation attempt leads to: delivered, again later (with backoff and the
endpoint's Retry-After), or dead after the last attempt or a final refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from service.escalation_delivery import outcome
from service.escalation_ports import Delivered, Refused, Retryable
from service.settings import Settings

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SETTINGS = Settings(
    database_url="postgresql://unused/x",
    retry_base_s=10,
    retry_cap_s=60,
    escalation_max_attempts=3,
)


def claimed(attempts: int) -> dict[str, Any]:
    return {"id": 7, "attempts": attempts, "created_at": NOW - timedelta(minutes=5)}


def test_a_2xx_is_delivered() -> None:
    got = outcome(claimed(0), Delivered(202), SETTINGS, NOW)
    assert (got["status"], got["error"], got["http_status"]) == ("delivered", None, 202)


def test_a_retryable_failure_waits_with_backoff_and_honours_retry_after() -> None:
    soon = outcome(claimed(0), Retryable("HTTP 503", http_status=503), SETTINGS, NOW)
    assert soon["status"] == "queued"
    assert NOW + timedelta(seconds=5) <= soon["next_attempt_at"] <= NOW + timedelta(seconds=10)
    later = outcome(claimed(1), Retryable("HTTP 429", retry_after=600), SETTINGS, NOW)
    assert later["next_attempt_at"] == NOW + timedelta(seconds=600)  # beyond our own cap


def test_the_last_attempt_and_a_refusal_are_final() -> None:
    last = outcome(claimed(2), Retryable("timed out after 10s"), SETTINGS, NOW)
    assert last["status"] == "dead"
    assert last["error"] == "gave up after 3 attempts: timed out after 10s"
    refused = outcome(claimed(0), Refused("HTTP 404: no such hook", 404), SETTINGS, NOW)
    assert (refused["status"], refused["http_status"]) == ("dead", 404)
