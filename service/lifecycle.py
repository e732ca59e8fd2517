"""How a target's state follows from its pairs' latest decisions (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

PENDING_ORDER = frozenset({"held", "queued", "in_flight", "sent"})
CONFIRMED = frozenset({"blocked", "already_blocked", "disconnected"})


class OrderView(NamedTuple):
    """The latest decision for a target at one operator (sql/0006_pair_ordering.sql); a
    tuple, made for every pair a settled batch touches, three times cheaper than a frozen
    dataclass."""

    operator: str
    action: str
    status: str
    ack_status: str | None
    request_id: int = 0
    seq: int = 0


def pending_under(action: str, latest: Iterable[tuple[Any, ...]]) -> bool:
    """Whether a target under `action` is pending: one of its pairs' latest decisions is of
    that action and not final yet. `latest`: OrderViews, or tuples in their field order (the
    rule `target_state` begins with, and settling skips a target by)."""
    return any(o[1] == action and o[2] in PENDING_ORDER for o in latest)


def latest_action(latest: Iterable[OrderView], default: str) -> str:
    """The action of the target's most recent decision, or `default` when it has none."""
    newest = max(latest, key=lambda o: o.seq, default=None)
    return default if newest is None else newest.action


def target_state(action: str, latest: Iterable[OrderView]) -> str:
    """A target's overall state from its pairs' latest decisions, under its current action.

    Blocking: `blocked` when every operator that serves it confirmed (a disconnection
    confirms), `partially_blocked` when some did, `retained` when none did because the
    subscriber re-verified, `rejected`/`dead` when none did for another reason, `unroutable`
    when no operator serves it.
    Unblocking: `unblocked` when every operator released it, else `partially_blocked`.
    """
    orders = [o for o in latest if o.action == action and o.status != "cancelled"]
    if pending_under(action, orders):
        return "pending"
    if action == "unblock":
        if not orders:
            return "unblocked"
        failed = [o for o in orders if o.status == "dead" or o.ack_status == "rejected"]
        return "partially_blocked" if failed else "unblocked"
    serving = [o for o in orders if o.ack_status != "not_subscriber"]
    if not serving:
        return "unroutable" if orders else "cancelled"
    confirmed = sum(1 for o in serving if o.ack_status in CONFIRMED)
    if confirmed == len(serving):
        return "blocked"
    if confirmed:
        return "partially_blocked"
    if any(o.ack_status == "retained" for o in serving):
        return "retained"
    if any(o.ack_status == "rejected" for o in serving):
        return "rejected"
    return "dead"


def operator_holds(latest: OrderView) -> str:
    """What one operator holds for a target, as far as its answers tell."""
    if latest.status in PENDING_ORDER:
        return f"pending_{latest.action}"
    if latest.status == "dead":
        return "unknown"
    if latest.action == "block":
        if latest.ack_status in CONFIRMED:
            return "blocked"
        if latest.ack_status in ("not_subscriber", "retained"):
            return latest.ack_status
        return "not_blocked"
    return "blocked" if latest.ack_status == "rejected" else "not_blocked"
