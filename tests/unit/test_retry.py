"""The retry policy for rescheduled orders (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from service.retry import backoff_delay, next_attempt

PROPERTY = hsettings(database=None, deadline=None)
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = {"base_s": 10.0, "cap_s": 900.0, "max_age_s": 86_400.0}


def test_backoff_doubles_per_attempt_with_jitter_between_half_and_full() -> None:
    assert backoff_delay(1, 10, 900, rand=0.0) == 5.0
    assert backoff_delay(1, 10, 900, rand=1.0) == 10.0
    assert backoff_delay(2, 10, 900, rand=1.0) == 20.0
    assert backoff_delay(4, 10, 900, rand=1.0) == 80.0
    assert backoff_delay(4, 10, 900, rand=0.5) == 60.0


def test_backoff_is_capped() -> None:
    assert backoff_delay(7, 10, 900, rand=1.0) == 640.0
    assert backoff_delay(8, 10, 900, rand=1.0) == 900.0
    assert backoff_delay(30, 10, 900, rand=1.0) == 900.0
    assert backoff_delay(30, 10, 900, rand=0.0) == 450.0


def test_attempt_zero_or_less_waits_the_base() -> None:
    assert backoff_delay(0, 10, 900, rand=1.0) == 10.0
    assert backoff_delay(-3, 10, 900, rand=1.0) == 10.0


@PROPERTY
@given(
    attempts=st.integers(min_value=1, max_value=1000),
    base=st.floats(min_value=0.001, max_value=100),
    cap=st.floats(min_value=0.001, max_value=100_000),
    rand=st.floats(min_value=0, max_value=1),
)
def test_backoff_stays_within_half_and_full_of_the_capped_ceiling(
    attempts: int, base: float, cap: float, rand: float
) -> None:
    ceiling = min(cap, base * 2 ** (attempts - 1))
    delay = backoff_delay(attempts, base, cap, rand)
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9
    assert delay <= cap + 1e-9


def test_backoff_of_a_very_large_attempt_count_is_the_cap() -> None:
    assert backoff_delay(1100, 10, 900, rand=1.0) == 900.0


@PROPERTY
@given(attempts=st.integers(min_value=1, max_value=60), rand=st.floats(min_value=0, max_value=1))
def test_next_attempt_is_in_the_future_and_no_later_than_the_cap(
    attempts: int, rand: float
) -> None:
    when = next_attempt(now=NOW, created_at=NOW, attempts=attempts, rand=rand, **POLICY)
    assert when is not None
    assert NOW < when <= NOW + timedelta(seconds=POLICY["cap_s"])


def test_an_order_past_its_maximum_age_gets_no_next_attempt() -> None:
    created = NOW - timedelta(seconds=86_400 - 100)
    assert next_attempt(now=NOW, created_at=created, attempts=1, rand=1.0, **POLICY) is not None
    assert next_attempt(now=NOW, created_at=created, attempts=5, rand=1.0, **POLICY) is None
    old = NOW - timedelta(days=2)
    assert next_attempt(now=NOW, created_at=old, attempts=1, rand=0.0, **POLICY) is None


def test_retry_after_longer_than_the_backoff_is_respected() -> None:
    when = next_attempt(now=NOW, created_at=NOW, attempts=1, rand=1.0, retry_after_s=120, **POLICY)
    assert when == NOW + timedelta(seconds=120)


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    when = next_attempt(now=NOW, created_at=NOW, attempts=5, rand=1.0, retry_after_s=1, **POLICY)
    assert when == NOW + timedelta(seconds=160)


def test_retry_after_is_honoured_beyond_our_own_cap() -> None:
    when = next_attempt(
        now=NOW, created_at=NOW, attempts=1, rand=1.0, retry_after_s=10_000, **POLICY
    )
    assert when == NOW + timedelta(seconds=10_000)


def test_retry_after_beyond_the_maximum_age_kills_the_order() -> None:
    created = NOW - timedelta(seconds=86_400 - 60)
    when = next_attempt(
        now=NOW, created_at=created, attempts=1, rand=0.0, retry_after_s=120, **POLICY
    )
    assert when is None
