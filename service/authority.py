"""The authority an order carries: police ranks, and whether an operator blocks at once (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from service.ports import Instruction

Rank = Literal[
    "Constable",
    "Head Constable",
    "ASI",
    "SI",
    "Inspector",
    "DSP",
    "SP",
    "SSP",
    "DIG",
    "IGP",
    "ADGP",
    "DGP",
]
RANKS: tuple[Rank, ...] = get_args(Rank)  # lowest first
_BY_KEY = {r.lower().replace(" ", ""): r for r in RANKS}


def parse_rank(raw: str) -> Rank:
    """A rank in any usual spelling (`sp`, `Head constable`, `head_constable`); ValueError else."""
    key = raw.strip().lower().replace(" ", "").replace("_", "").replace("-", "").replace(".", "")
    rank = _BY_KEY.get(key)
    if rank is None:
        raise ValueError(f"unknown rank {raw!r}; use one of {', '.join(RANKS)}")
    return rank


def rank_at_least(rank: str | None, minimum: Rank) -> bool:
    """Whether `rank` is `minimum` or above; an unknown or missing rank is not."""
    if rank not in _BY_KEY.values():
        return False
    return RANKS.index(rank) >= RANKS.index(minimum)


def instruction(action: str, ranks: Iterable[str | None], min_rank: Rank | None) -> Instruction:
    """What the operator is told to do: an unblock is an unblock; a block is `block` when an
    officer who filed or approved it holds `min_rank` or above (or no minimum is set), and
    `reverify` (the subscriber is asked to re-verify first) otherwise."""
    if action == "unblock":
        return "unblock"
    if min_rank is None or any(rank_at_least(r, min_rank) for r in ranks):
        return "block"
    return "reverify"


@dataclass(frozen=True, slots=True)
class Authority:
    """The request behind an order and the officer who authorised it."""

    request_id: int
    unit: str
    case_ref: str
    category: str
    legal_basis: str | None
    officer_name: str | None
    officer_rank: str | None
    instruction: Instruction


def from_row(row: Mapping[str, Any], min_rank: Rank | None) -> Authority:
    """The authority of a claimed or pulled order row (orders_claim, orders_pull).

    The authorising officer is the one who approved the request, else the one who filed it."""
    approved = bool(row["approved"])
    return Authority(
        request_id=row["request_id"],
        unit=row["request_unit"],
        case_ref=row["case_ref"],
        category=row["request_category"],
        legal_basis=row["legal_basis"],
        officer_name=row["approver_name"] if approved else row["filer_name"],
        officer_rank=row["approver_rank"] if approved else row["filer_rank"],
        instruction=instruction(row["action"], (row["filer_rank"], row["approver_rank"]), min_rank),
    )


def for_rows(rows: Sequence[Mapping[str, Any]], min_rank: Rank | None) -> list[Authority]:
    """The authority of each claimed or pulled order row, worked out once per request and
    action: a batch or a page comes from a few requests."""
    known: dict[tuple[int, str], Authority] = {}
    out: list[Authority] = []
    for r in rows:
        key = (r["request_id"], r["action"])
        a = known.get(key)
        if a is None:
            a = known[key] = from_row(r, min_rank)
        out.append(a)
    return out
