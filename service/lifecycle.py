"""How a target's state follows from its orders, and a request's from its targets (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PENDING_ORDER = frozenset({"held", "queued", "in_flight", "sent"})
CONFIRMED = frozenset({"blocked", "already_blocked"})
FAILED_FOR_BLOCK = frozenset({"partially_blocked", "rejected", "dead", "unroutable", "cancelled"})


@dataclass(frozen=True, slots=True)
class OrderView:
    """The latest order of a target at one operator."""

    operator: str
    action: str
    status: str
    ack_status: str | None


def target_state(action: str, latest: Iterable[OrderView]) -> str:
    """A target's overall state from the latest order per operator.

    Blocking: `blocked` when every operator that serves it confirmed, `partially_blocked`
    when some did, `rejected`/`dead` when none did, `unroutable` when no operator serves it.
    Unblocking: `unblocked` when every operator released it, else `partially_blocked`.
    """
    orders = [o for o in latest if o.action == action and o.status != "cancelled"]
    if any(o.status in PENDING_ORDER for o in orders):
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
    if any(o.ack_status == "rejected" for o in serving):
        return "rejected"
    return "dead"


def target_failed(action: str, state: str) -> bool:
    """Whether a settled target counts against its request (partially completed)."""
    if action == "unblock":
        return state != "unblocked"
    return state in FAILED_FOR_BLOCK


def request_status(open_targets: int, failed_targets: int) -> str:
    """A dispatching request's status from its counters."""
    if open_targets > 0:
        return "dispatching"
    return "partially_completed" if failed_targets else "completed"
