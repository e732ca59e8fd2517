"""What intake decides for each target: who must act, and with what outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from service.routing import route_target
from service.store import Row


@dataclass
class NormalTarget:
    """A submitted target after normalisation; duplicates merged into the first index."""

    index: int
    kind: str
    submitted: str
    value: str


@dataclass
class TargetPlan:
    """What intake decided for one target."""

    target: NormalTarget
    target_id: int
    outcome: str
    state: str
    operators: list[str] = field(default_factory=list)
    held_by: list[dict[str, str | None]] = field(default_factory=list)  # {unit, case_ref}
    releases: list[dict[str, str | None]] = field(default_factory=list)  # an unblock's holds
    restate: bool = False


@dataclass(frozen=True)
class RoutingContext:
    """Active operators, number-series matches and what operators told us, for one request."""

    active: list[str]
    series: dict[str, str]
    learned: dict[str, dict[str, bool]]

    @classmethod
    def from_row(cls, row: Row) -> RoutingContext:
        """Build from the arrays the intake's first statement returns."""
        series = dict(zip(row["prefixes"] or [], row["prefix_ops"] or [], strict=True))
        learned: dict[str, dict[str, bool]] = {}
        for m, op, serves in zip(
            row["msisdns"] or [], row["route_ops"] or [], row["serves"] or [], strict=True
        ):
            learned.setdefault(m, {})[op] = serves
        return cls(list(row["active"]), series, learned)


def plan_block(
    targets: list[NormalTarget],
    by_key: Mapping[tuple[str, str], Row],
    ctx: RoutingContext,
    *,
    decided_now: bool = True,
) -> list[TargetPlan]:
    """A target already blocked, or on its way, is linked; the others are routed. A request
    that waits for approval gets orders of its own even for a target on its way: that may be
    only another request awaiting approval."""
    plans = []
    for t in targets:
        row = by_key[(t.kind, t.value)]
        if not row["inserted"] and row["action"] == "block":
            if row["state"] == "pending" and decided_now:
                plans.append(TargetPlan(t, row["id"], "in_progress", "pending"))
                continue
            if row["state"] in ("blocked", "partially_blocked"):
                plans.append(TargetPlan(t, row["id"], "already_blocked", row["state"]))
                continue
        ops = route_target(t.kind, t.value, ctx.active, ctx.series, ctx.learned.get(t.value, {}))
        if not ops:
            plans.append(TargetPlan(t, row["id"], "unroutable", "unroutable"))
        else:
            plans.append(TargetPlan(t, row["id"], "queued", "pending", ops))
    return plans
