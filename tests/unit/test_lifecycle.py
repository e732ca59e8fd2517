"""A target's state from its pairs' latest decisions."""

from __future__ import annotations

from service.lifecycle import OrderView, latest_action, operator_holds, target_state


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


def test_latest_action_is_the_newest_decision() -> None:
    views = [
        OrderView("jio", "block", "acked", "blocked", 1, 5),
        OrderView("vi", "unblock", "queued", None, 2, 9),
    ]
    assert latest_action(views, "block") == "unblock"
    assert latest_action([], "unblock") == "unblock"


def test_what_an_operator_holds() -> None:
    assert operator_holds(o("jio", "acked", "blocked")) == "blocked"
    assert operator_holds(o("jio", "sent")) == "pending_block"
    assert operator_holds(o("jio", "acked", "rejected", "unblock")) == "blocked"
    assert operator_holds(o("jio", "acked", "unblocked", "unblock")) == "not_blocked"
    assert operator_holds(o("jio", "dead")) == "unknown"
