"""What settling writes for what it reads (`service.settlement.settle`), against a fake
transaction that answers `settle_read` and keeps the writes deferred to the commit."""

from __future__ import annotations

from typing import Any

import orjson

from service import settlement
from service.dispatcher import outbound


class Read(tuple[Any, ...]):
    """A settle_read row: target_id, operator_code, action, status, ack_status, request_id,
    seq (a target's own row has no operator_code and its state in status)."""

    def values(self) -> tuple[Any, ...]:
        return tuple(self)


class FakeTx:
    def __init__(self, rows: list[Read]) -> None:
        self.rows = rows
        self.deferred: dict[str, Any] = {}

    async def fetch(self, name: str, *args: Any) -> list[Read]:
        assert name == "settle_read"
        return self.rows

    def defer(self, function: str, document: str) -> None:
        self.deferred[function] = orjson.loads(document)


def target(tid: int, action: str, state: str) -> Read:
    return Read((tid, None, action, state, None, None, None))


def pair(tid: int, op: str, action: str, status: str, ack: str | None = None) -> Read:
    return Read((tid, op, action, status, ack, 7, tid))


async def test_a_target_that_stays_pending_is_not_written_but_its_lanes_are_woken() -> None:
    tx = FakeTx(
        [
            target(1, "block", "pending"),  # one operator answered, one not yet
            target(2, "block", "pending"),  # both answered
            pair(1, "jio", "block", "acked", "blocked"),
            pair(1, "vi", "block", "queued"),
            pair(2, "jio", "block", "acked", "blocked"),
            pair(2, "vi", "block", "acked", "blocked"),
        ]
    )
    await settlement.settle(tx, [1, 2])  # type: ignore[arg-type]
    assert tx.deferred["targets_settle"] == {
        "changed": [{"id": 2, "action": "block", "state": "blocked"}],
        "settled": [{"target_id": 2, "state": "blocked"}],
    }
    assert tx.deferred["orders_notify"] == ["vi"]


async def test_a_pending_decision_of_another_action_does_not_keep_a_target_pending() -> None:
    tx = FakeTx(
        [
            target(1, "unblock", "pending"),
            pair(1, "jio", "unblock", "acked", "unblocked"),
            pair(1, "vi", "block", "queued"),  # an older block, superseded: not its action
        ]
    )
    await settlement.settle(tx, [1])  # type: ignore[arg-type]
    assert tx.deferred["targets_settle"]["changed"] == [
        {"id": 1, "action": "unblock", "state": "unblocked"}
    ]


async def test_a_decision_just_set_is_settled_though_the_stored_one_stays_pending() -> None:
    rows = [target(1, "block", "pending"), pair(1, "jio", "block", "queued")]
    tx = FakeTx(rows)
    await settlement.settle(tx, [1], decided={1: "unblock"})  # type: ignore[arg-type]
    assert tx.deferred["targets_settle"]["changed"] == [
        {"id": 1, "action": "unblock", "state": "unblocked"}
    ]
    tx = FakeTx(rows)
    await settlement.settle(tx, [1])  # type: ignore[arg-type]
    assert "targets_settle" not in tx.deferred


def claimed(oid: int, request_id: int, action: str, filer_rank: str) -> dict[str, Any]:
    return {
        "id": oid, "action": action, "kind": "msisdn", "value": f"+91981000000{oid}",
        "urgent": False, "attempts": 1, "seq": oid, "reason": None, "request_id": request_id,
        "request_unit": f"unit-{request_id}", "case_ref": f"FIR-{request_id}/2026",
        "request_category": "other", "legal_basis": None, "approved": False,
        "filer_name": f"officer {request_id}", "filer_rank": filer_rank,
        "approver_name": None, "approver_rank": None,
    }  # fmt: skip


def test_each_outbound_order_carries_its_own_requests_authority() -> None:
    rows = [
        claimed(1, 10, "block", "Inspector"),
        claimed(2, 20, "block", "SI"),
        claimed(3, 10, "block", "Inspector"),
        claimed(4, 20, "unblock", "SI"),
    ]
    orders = outbound(rows, "jio", "Inspector")
    assert [(o.order_id, o.request_id, o.case_ref, o.officer_name, o.told) for o in orders] == [
        (1, 10, "FIR-10/2026", "officer 10", "block"),
        (2, 20, "FIR-20/2026", "officer 20", "reverify"),  # filed below the minimum rank
        (3, 10, "FIR-10/2026", "officer 10", "block"),
        (4, 20, "FIR-20/2026", "officer 20", "unblock"),  # same request, another action
    ]
