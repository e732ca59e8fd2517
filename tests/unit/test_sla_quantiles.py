"""Service-level percentiles read from log buckets of acknowledgement times."""

from __future__ import annotations

import math
import random

import pytest

from service.sla import BUCKET_OF_ONE_SECOND, BUCKETS_PER_DECADE, quantile


def bucket(seconds: float) -> int:
    """The bucket sql/0018's ack_bucket gives (same formula)."""
    raw = math.floor(BUCKETS_PER_DECADE * math.log10(max(seconds, 0.001))) + BUCKET_OF_ONE_SECOND
    return max(0, min(239, raw))


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_quantiles_from_buckets_are_within_a_bucket_of_the_exact_value(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.5) for _ in range(5000)]  # seconds: ~20 s median
    hist: dict[int, int] = {}
    for v in values:
        hist[bucket(v)] = hist.get(bucket(v), 0) + 1
    got = quantile(hist, q)
    assert got is not None
    assert got == pytest.approx(exact(values, q), rel=10 ** (1 / BUCKETS_PER_DECADE) - 1)


def test_no_answers_have_no_quantile() -> None:
    assert quantile({}, 0.5) is None
    assert quantile({70: 0}, 0.5) is None


def test_one_answer_falls_inside_its_bucket() -> None:
    got = quantile({bucket(42.0): 1}, 0.5)
    assert got is not None and 10 ** ((bucket(42.0) - 60) / 20) <= got <= 10 ** (
        (bucket(42.0) - 59) / 20
    )
