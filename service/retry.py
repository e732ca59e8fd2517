"""The retry policy for orders rescheduled in Postgres (pure)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def backoff_delay(attempts: int, base_s: float, cap_s: float, rand: float | None = None) -> float:
    """Seconds before the next attempt: capped exponential with jitter in [half, full]."""
    r: float = random.random() if rand is None else rand
    exponent = min(max(0, attempts - 1), 64)  # 2**64 is past any cap; bigger overflows
    ceiling = min(cap_s, base_s * 2.0**exponent)
    return float(ceiling * (0.5 + 0.5 * r))


def next_attempt(
    *,
    now: datetime,
    created_at: datetime,
    attempts: int,
    base_s: float,
    cap_s: float,
    max_age_s: float,
    retry_after_s: float | None = None,
    rand: float | None = None,
) -> datetime | None:
    """When to try again, or None when the order is past its maximum age (dead)."""
    delay = backoff_delay(attempts, base_s, cap_s, rand)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)  # the operator's word beats our own cap
    when = now + timedelta(seconds=delay)
    if when - created_at > timedelta(seconds=max_age_s):
        return None
    return when
