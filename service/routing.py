"""Which operators must act on a target (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def candidate_prefixes(msisdn: str) -> list[str]:
    """Every prefix of an E.164 number that a number-series row could hold, longest last."""
    return [msisdn[:n] for n in range(3, len(msisdn) + 1)]


def longest_prefix_operator(msisdn: str, series: Mapping[str, str]) -> str | None:
    """The operator of the longest number-series prefix matching the number."""
    for prefix in reversed(candidate_prefixes(msisdn)):
        if prefix in series:
            return series[prefix]
    return None


def route_target(
    kind: str,
    value: str,
    active: Sequence[str],
    series: Mapping[str, str],
    learned: Mapping[str, bool],
) -> list[str]:
    """Operators to send a block to; empty means no active operator can serve it.

    An IMEI goes to every active operator. An MSISDN goes to an operator that
    confirmed serving it, else to its number-series operator, else to every
    active operator that has not said it does not serve the number.
    """
    if kind == "imei":
        return list(active)
    confirmed = [op for op in active if learned.get(op) is True]
    if confirmed:
        return confirmed
    candidates = [op for op in active if learned.get(op) is not False]
    by_series = longest_prefix_operator(value, series)
    if by_series is not None and by_series in candidates:
        return [by_series]
    return candidates
