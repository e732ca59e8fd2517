"""Police ranks and the instruction an order carries (service.authority, pure)."""

from __future__ import annotations

import pytest

from service.authority import RANKS, instruction, parse_rank, rank_at_least
from service.settings import Settings


@pytest.mark.parametrize(
    ("raw", "rank"),
    [
        ("sp", "SP"),
        ("S.P.", "SP"),
        ("head constable", "Head Constable"),
        ("HEAD_CONSTABLE", "Head Constable"),
        (" igp ", "IGP"),
        ("inspector", "Inspector"),
    ],
)
def test_ranks_parse_in_any_usual_spelling(raw: str, rank: str) -> None:
    assert parse_rank(raw) == rank


def test_an_unknown_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rank 'Commissioner'"):
        parse_rank("Commissioner")


def test_the_rank_order_is_the_indian_police_hierarchy() -> None:
    assert RANKS == (
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
    )
    assert rank_at_least("SSP", "SP") and rank_at_least("SP", "SP")
    assert not rank_at_least("DSP", "SP")
    assert not rank_at_least(None, "Constable") and not rank_at_least("Chief", "Constable")


def test_instruction_follows_the_highest_officer_who_filed_or_approved() -> None:
    assert instruction("block", ["SI", None], "SP") == "reverify"
    assert instruction("block", ["SI", "DIG"], "SP") == "block"
    assert instruction("block", [None, None], None) == "block"  # no rule set: block
    assert instruction("unblock", ["Constable"], "DGP") == "unblock"


def test_the_setting_takes_any_spelling() -> None:
    assert Settings(direct_block_min_rank="ssp").direct_block_min_rank == "SSP"
    assert Settings(direct_block_min_rank="").direct_block_min_rank is None
    with pytest.raises(ValueError, match="unknown rank"):
        Settings(direct_block_min_rank="major")


async def test_the_in_process_simulator_ends_a_reverify_order_as_configured() -> None:
    from adapters.simulator import SimulatorAdapter, SimulatorConfig
    from service.ports import Acknowledged, OutboundOrder

    sim = SimulatorAdapter("jio", SimulatorConfig(reverify_outcome="retained"))
    orders = [
        OutboundOrder(
            1, "jio", "block", "msisdn", "+917006012345", False, 1, instruction="reverify"
        ),
        OutboundOrder(2, "jio", "block", "msisdn", "+917006012346", False, 1, instruction="block"),
        OutboundOrder(3, "jio", "unblock", "msisdn", "+917006012347", False, 1),
    ]
    results = await sim.send(orders)
    assert [r.status for r in results if isinstance(r, Acknowledged)] == [
        "retained",
        "blocked",
        "unblocked",
    ]
