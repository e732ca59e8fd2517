"""A target's state from its latest orders, and a request's from its counters."""

from __future__ import annotations

from service.lifecycle import OrderView, request_status, target_failed, target_state


def o(op: str, status: str, ack: str | None = None, action: str = "block") -> OrderView:
    return OrderView(op, action, status, ack)


def test_blocked_only_when_every_serving_operator_confirmed() -> None:
    assert (
        target_state("block", [o("jio", "acked", "blocked"), o("vi", "acked", "already_blocked")])
        == "blocked"
    )
    assert (
        target_state("block", [o("jio", "acked", "blocked"), o("vi", "acked", "rejected")])
        == "partially_blocked"
    )
    assert target_state("block", [o("jio", "acked", "blocked"), o("vi", "sent")]) == "pending"


def test_not_subscriber_answers_do_not_count_against_a_block() -> None:
    assert (
        target_state("block", [o("jio", "acked", "blocked"), o("vi", "acked", "not_subscriber")])
        == "blocked"
    )
    assert (
        target_state(
            "block", [o("jio", "acked", "not_subscriber"), o("vi", "acked", "not_subscriber")]
        )
        == "unroutable"
    )


def test_failures_without_any_confirmation() -> None:
    assert target_state("block", [o("jio", "acked", "rejected"), o("vi", "dead")]) == "rejected"
    assert target_state("block", [o("jio", "dead"), o("vi", "dead")]) == "dead"
    assert target_state("block", [o("jio", "cancelled")]) == "cancelled"


def test_unblock_follows_the_unblock_orders_only() -> None:
    orders = [o("jio", "acked", "blocked"), o("jio", "acked", "unblocked", "unblock")]
    assert target_state("unblock", orders[1:]) == "unblocked"
    assert target_state("unblock", [o("jio", "queued", action="unblock")]) == "pending"
    assert target_state("unblock", [o("jio", "dead", action="unblock")]) == "partially_blocked"


def test_failure_and_request_status() -> None:
    assert target_failed("block", "partially_blocked") and not target_failed("block", "blocked")
    assert target_failed("unblock", "partially_blocked")
    assert not target_failed("unblock", "unblocked")
    assert request_status(2, 0) == "dispatching"
    assert request_status(0, 0) == "completed"
    assert request_status(0, 1) == "partially_completed"
