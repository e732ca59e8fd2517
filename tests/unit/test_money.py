"""Money in the zone's words: Indian grouping, the press-note sentence, masked accounts."""

from __future__ import annotations

from service.money import grouped, mask_account, plain_rupees, rupees, summary


def test_indian_digit_grouping() -> None:
    assert grouped(6834619) == "68,34,619"
    assert grouped(12857776) == "1,28,57,776"
    assert grouped(439) == "439"
    assert grouped(100000) == "1,00,000"


def test_rupees_from_paise() -> None:
    assert rupees(683461900) == "Rs 68,34,619"
    assert rupees(1285777650) == "Rs 1,28,57,776.50"
    assert rupees(5) == "Rs 0.05"
    assert rupees(0) == "Rs 0"
    assert rupees(-150000) == "Rs -1,500"
    assert plain_rupees(683461905) == "6834619.05"


def test_the_press_note_sentence_and_its_singulars() -> None:
    assert summary(439, 411, 683461900, 218570200) == (
        "439 calling numbers and 411 phone sets blocked; Rs 68,34,619 put on hold or lien "
        "marked; Rs 21,85,702 refunded"
    )
    assert summary(1, 1, 100, 0) == (
        "1 calling number and 1 phone set blocked; Rs 1 put on hold or lien marked; Rs 0 refunded"
    )


def test_account_references_keep_only_their_last_four_digits() -> None:
    assert mask_account("001234567890") == "XXXXXXXX7890"
    assert mask_account("SBIN-0012-3456") == "SBIN-XXXX-3456"
    assert mask_account("123") == "123"
