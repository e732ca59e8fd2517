"""Pasted and uploaded target lists: kinds guessed, every line checked, line numbers kept."""

from __future__ import annotations

import pytest

from service.target_lines import check, from_csv, from_rows, guess_kind, pasted


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("98765 43210", "msisdn"),
        ("+91 98765-43210", "msisdn"),
        ("0091 98765 43210", "msisdn"),  # 14 digits, but a number: it starts with 00
        ("490154203237518", "imei"),
        ("49015420323751", "imei"),
        ("3569 8510 2434 7901", "imei"),  # IMEISV
        ("IMEI: 9876543210", "imei"),  # a label decides
        ("Mobile no. 490154203237518", "msisdn"),
    ],
)
def test_kind_is_guessed_from_label_or_shape(text: str, kind: str) -> None:
    assert guess_kind(text)[0] == kind


def test_every_bad_line_keeps_its_line_number_and_reason() -> None:
    lines = check(pasted("98765 43210\n\n12345\nIMEI 49015420323751X\n490154203237518\n"))
    assert [(line.line, line.ok) for line in lines] == [
        (1, True),
        (3, False),
        (4, False),
        (5, True),
    ]
    assert lines[1].reason == "too short for a phone number"
    assert lines[2].reason == "an IMEI contains digits only"
    assert lines[0].value == "+919876543210" and lines[3].value == "490154203237518"


def test_csv_with_a_header_reads_kind_and_value_with_row_numbers() -> None:
    entries = from_csv("case,kind,value\nA,imei,490154203237518\nB,,\nC,msisdn,9876543210\n")
    assert [(e.line, e.text) for e in entries] == [
        (2, "imei: 490154203237518"),
        (4, "msisdn: 9876543210"),
    ]


def test_rows_without_a_header_take_their_first_filled_cell() -> None:
    entries = from_rows([["", "9876543210"], [], ["490154203237518", "x"]])
    assert [(e.line, e.text) for e in entries] == [(1, "9876543210"), (3, "490154203237518")]
