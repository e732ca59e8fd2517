"""A model-based test of the block/unblock lifecycle: random sequences of filings, unblocks,
cancels, approvals and rejections, operator failures, late, duplicate and conflicting acks,
crashed workers; after each settling step, every simulated operator holds exactly what the
service says, and what the latest decisions ask for.

FRAUDBLOCK_MODEL_EXAMPLES sets how many examples each machine runs (200 by default in CI);
the `slow` mark runs a larger set."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from tests.integration.lifecycle_world import PULLING, PUSHED, World

TARGETS = {  # value -> kind; IMEIs go to every operator, the numbers to one
    "490154203237518": "imei",
    "+917006012345": "msisdn",  # SAMPLE Jio series: pushed
    "+919811000001": "msisdn",  # SAMPLE Vi series: pulled
}
CASES = (("jammu", "C1"), ("jammu", "C2"), ("samba", "C1"))


@dataclass
class Request:
    """What the model knows of one filed request."""

    action: str
    target: str
    case: tuple[str, str]
    status: str
    released: dict[tuple[str, str], set[int]] = field(default_factory=dict)


def machine(world: World, approval: bool) -> type[RuleBasedStateMachine]:
    """A state machine class bound to a running world."""

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.requests: dict[int, Request] = {}
            self.holds: dict[str, dict[tuple[str, str], set[int]]] = {t: {} for t in TARGETS}
            world.run(world.forget_targets())  # each example starts with targets never named

        # -- decisions -------------------------------------------------------------------

        @rule(value=st.sampled_from(sorted(TARGETS)), case=st.sampled_from(CASES))
        def file_block(self, value: str, case: tuple[str, str]) -> None:
            target = value
            status, doc = world.run(
                world.call("POST", "/v1/block-requests", case[0], _body(target, case))
            )
            assert status == 201, doc
            self.requests[doc["id"]] = Request("block", target, case, doc["status"])
            if doc["status"] != "pending_approval":
                self._hold(target, case, doc["id"])

        @rule(
            value=st.sampled_from(sorted(TARGETS)),
            case=st.sampled_from(CASES),
            force=st.booleans(),
        )
        def file_unblock(self, value: str, case: tuple[str, str], force: bool) -> None:
            target = value
            extra = {"action": "unblock", "reason": "court order"}
            who = case[0]
            if force:
                who, extra = "supervisor", {**extra, "force": True, "unit": case[0]}
            status, doc = world.run(
                world.call("POST", "/v1/block-requests", who, _body(target, case, **extra))
            )
            assert status == 201, doc
            req = Request("unblock", target, case, doc["status"])
            self.requests[doc["id"]] = req
            if doc["status"] != "pending_approval":
                self._release(req, force)

        @rule(data=st.data())
        @precondition(lambda self: bool(self.requests))
        def cancel(self, data: st.DataObject) -> None:
            rid = data.draw(st.sampled_from(sorted(self.requests)))
            req = self.requests[rid]
            status, doc = world.run(
                world.call("POST", f"/v1/block-requests/{rid}/cancel", "supervisor", {})
            )
            assert status in (200, 409), doc
            if status == 200:
                self._take_back(rid, req)
                req.status = "cancelled"

        @rule(data=st.data(), approve=st.booleans())
        @precondition(
            lambda self: (
                approval and any(r.status == "pending_approval" for r in self.requests.values())
            )
        )
        def decide(self, data: st.DataObject, approve: bool) -> None:
            waiting = sorted(i for i, r in self.requests.items() if r.status == "pending_approval")
            rid = data.draw(st.sampled_from(waiting))
            req = self.requests[rid]
            verb = "approve" if approve else "reject"
            body = None if approve else {"reason": "not enough evidence"}
            status, doc = world.run(
                world.call("POST", f"/v1/block-requests/{rid}/{verb}", "supervisor", body)
            )
            assert status == 200, doc
            req.status = doc["status"]
            if approve and req.action == "block":
                self._hold(req.target, req.case, rid)
            elif approve:
                self._release(req, False)

        # -- operators and workers -----------------------------------------------------------

        @rule(
            code=st.sampled_from(PUSHED),
            mode=st.sampled_from(["ok", "transient", "permanent", "unauthorized", "accepted"]),
        )
        def operator_mode(self, code: str, mode: Any) -> None:
            world.ops[code].mode = mode

        @rule()
        def dispatch(self) -> None:
            world.run(world.dispatch())

        @rule(
            code=st.sampled_from(PULLING),
            answer=st.sampled_from(["ok", "later", "not_subscriber", "reject"]),
        )
        def pull(self, code: str, answer: str) -> None:
            world.run(world.pull(code, answer))

        @rule(code=st.sampled_from(PUSHED + PULLING), twice=st.booleans())
        def late_acks(self, code: str, twice: bool) -> None:
            world.run(world.post_late_acks(code, twice))

        @rule(code=st.sampled_from(PUSHED))
        def crash_worker(self, code: str) -> None:
            world.run(world.crash_worker(code))

        @rule()
        def settle_and_check(self) -> None:
            world.run(world.settle())
            world.run(world.check(TARGETS, self._expected(), stuck=not approval))

        def teardown(self) -> None:
            world.run(world.settle())
            world.run(world.check(TARGETS, self._expected(), stuck=not approval))

        # -- the model's holds -----------------------------------------------------------------

        def _hold(self, target: str, case: tuple[str, str], rid: int) -> None:
            self.holds[target].setdefault(case, set()).add(rid)

        def _release(self, req: Request, force: bool) -> None:
            held = self.holds[req.target]
            cases = list(held) if force else [req.case]
            for case in cases:
                if held.get(case):
                    req.released[case] = held.pop(case)

        def _take_back(self, rid: int, req: Request) -> None:
            held = self.holds[req.target]
            if req.action == "block":
                for ids in held.values():
                    ids.discard(rid)
            else:
                for case, ids in req.released.items():
                    held.setdefault(case, set()).update(ids)

        def _expected(self) -> dict[str, bool | None]:
            return {t: any(ids for ids in h.values()) for t, h in self.holds.items()}

    return Lifecycle


def _body(target: str, case: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "case_ref": case[1],
        "category": "investment",
        "targets": [{"kind": TARGETS[target], "value": target}],
        **extra,
    }


def _examples() -> int:
    return int(os.environ.get("FRAUDBLOCK_MODEL_EXAMPLES", "200"))


@pytest.mark.parametrize("approval", [False, True], ids=["no_approval", "supervisor_approval"])
@pytest.mark.timeout(600)
def test_lifecycle_model(db_url: str, tmp_path: Path, approval: bool) -> None:
    world = World(db_url, str(tmp_path), "supervisor" if approval else "none")
    world.start()
    try:
        examples = _examples() if not approval else max(_examples() // 2, 10)
        run_state_machine_as_test(
            machine(world, approval),
            settings=settings(
                max_examples=examples,
                stateful_step_count=12,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            ),
        )
    finally:
        world.stop()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_lifecycle_model_long(db_url: str, tmp_path: Path) -> None:
    world = World(db_url, str(tmp_path))
    world.start()
    try:
        run_state_machine_as_test(
            machine(world, False),
            settings=settings(
                max_examples=2000,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            ),
        )
    finally:
        world.stop()
