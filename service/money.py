"""Money and counts in the zone's words: Indian digit grouping, masked accounts, the sentence."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_decimal

LOCALE = "en_IN"


def grouped(n: int) -> str:
    """An integer with Indian digit grouping: 6834619 → '68,34,619'."""
    return format_decimal(n, format="#,##,##0", locale=LOCALE)


def rupees(paise: int) -> str:
    """An amount as the press note writes it: 'Rs 68,34,619', or 'Rs 12.50' with paise."""
    sign = "-" if paise < 0 else ""
    whole, cents = divmod(abs(paise), 100)
    if cents == 0:
        return f"Rs {sign}{grouped(whole)}"
    value = Decimal(abs(paise)) / 100
    return f"Rs {sign}{format_decimal(value, format='#,##,##0.00', locale=LOCALE)}"


def plain_rupees(paise: int) -> str:
    """An amount in rupees for spreadsheets: '6834619.00'."""
    sign = "-" if paise < 0 else ""
    whole, cents = divmod(abs(paise), 100)
    return f"{sign}{whole}.{cents:02d}"


def _count(n: int, one: str, many: str) -> str:
    return f"{grouped(n)} {one if n == 1 else many}"


def summary(numbers: int, handsets: int, held_paise: int, refunded_paise: int) -> str:
    """'439 calling numbers and 411 phone sets blocked; Rs 68,34,619 put on hold or lien
    marked; Rs 21,85,702 refunded' (singular where a count is 1)."""
    return (
        f"{_count(numbers, 'calling number', 'calling numbers')} and "
        f"{_count(handsets, 'phone set', 'phone sets')} blocked; "
        f"{rupees(held_paise)} put on hold or lien marked; {rupees(refunded_paise)} refunded"
    )


def mask_account(ref: str) -> str:
    """Every digit but the last four replaced by 'X': '0012345678901' → 'XXXXXXXXX8901'."""
    digits = sum(c.isdigit() for c in ref)
    keep_from = digits - 4
    out = []
    seen = 0
    for c in ref:
        if c.isdigit():
            out.append(c if seen >= keep_from else "X")
            seen += 1
        else:
            out.append(c)
    return "".join(out)
