"""MSISDN and IMEI normalisation: examples and properties."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, reject
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from service.identifiers import (
    InvalidTarget,
    luhn_check_digit,
    normalize_imei,
    normalize_msisdn,
    normalize_target,
    parsed_msisdn,
)

# No example database: the run leaves no files behind; phonenumbers' first parse is slow.
PROPERTY = hsettings(database=None, deadline=None, max_examples=150)
VALID_IMEI = "352099001761481"


def luhn_ok(digits: str) -> bool:
    return luhn_check_digit(digits[:-1]) == digits[-1]


# --- MSISDN -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "98765 43210",
        "+91-98765-43210",
        "09876543210",
        "919876543210",
        "+919876543210",
        "  +91 98765 43210  ",
        "0091 98765 43210",
        "(+91) 98765-43210",
    ],
)
def test_indian_mobile_in_usual_notations_becomes_e164(raw: str) -> None:
    assert normalize_msisdn(raw) == "+919876543210"


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("12345", "too short"),
        ("9876543210123456", "too long"),
        ("98765 4321O", "letters"),
        ("call 9876543210", "letters"),
        ("+999 123", "not a phone number"),
        ("091 98765 43210", "not a valid number"),
        ("9" * 41, "too long"),
    ],
)
def test_invalid_msisdn_is_refused_with_a_reason(raw: str, reason_part: str) -> None:
    with pytest.raises(InvalidTarget) as info:
        normalize_msisdn(raw)
    assert reason_part in info.value.reason
    assert str(info.value) == info.value.reason


# --- IMEI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "352099001761481",
        "35-209900-176148-1",
        "35 209900 176148 1",
        "35.209900.176148.1",
        "35/209900/176148/1",
        " 35209900 1761481 ",
    ],
)
def test_imei_separators_are_dropped(raw: str) -> None:
    assert normalize_imei(raw) == VALID_IMEI


def test_fourteen_digit_imei_gets_its_check_digit() -> None:
    assert normalize_imei("35209900176148") == VALID_IMEI
    assert normalize_imei("49015420323751") == "490154203237518"


def test_imeisv_drops_the_software_version_and_recomputes_the_check_digit() -> None:
    assert normalize_imei("3520990017614812") == VALID_IMEI
    assert normalize_imei("35-209900-176148-99") == VALID_IMEI


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("490154203237519", "check digit 9 is wrong (Luhn gives 8)"),
        ("00000000123456", "type allocation code"),
        ("000000001234566", "type allocation code"),
        ("0000000012345678", "type allocation code"),
        ("", "empty"),
        (" - ", "empty"),
        ("abc", "digits only"),
        ("3520990017614a1", "digits only"),
        ("３５２０９９００１７６１４８１", "digits only"),  # full-width digits
        ("1234567890123", "not 13"),
        ("12345678901234567", "not 17"),
        ("12345", "not 5"),
    ],
)
def test_invalid_imei_is_refused_with_a_reason(raw: str, reason_part: str) -> None:
    with pytest.raises(InvalidTarget) as info:
        normalize_imei(raw)
    assert reason_part in info.value.reason


def test_normalize_target_dispatches_on_kind() -> None:
    assert normalize_target("msisdn", "98765 43210") == "+919876543210"
    assert normalize_target("imei", "35209900176148") == VALID_IMEI
    with pytest.raises(InvalidTarget, match="unknown target kind 'email'"):
        normalize_target("email", "a@b.c")


# --- properties ---------------------------------------------------------------------------

digits14 = st.text(alphabet="0123456789", min_size=14, max_size=14).filter(
    lambda s: s[:8] != "00000000"
)


@PROPERTY
@given(body=digits14)
def test_every_fourteen_digit_body_becomes_fifteen_digits_that_pass_luhn(body: str) -> None:
    imei = normalize_imei(body)
    assert len(imei) == 15 and imei.isdigit()
    assert imei[:14] == body
    assert luhn_ok(imei)


@PROPERTY
@given(body=digits14, sv=st.text(alphabet="0123456789", min_size=2, max_size=2))
def test_imei_and_imeisv_of_one_handset_agree(body: str, sv: str) -> None:
    assert normalize_imei(body + sv) == normalize_imei(body)


@PROPERTY
@given(body=digits14)
def test_imei_normalisation_is_idempotent(body: str) -> None:
    once = normalize_imei(body)
    assert normalize_imei(once) == once


@PROPERTY
@given(
    body=digits14,
    position=st.integers(min_value=0, max_value=14),
    delta=st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_of_a_valid_imei_is_refused(
    body: str, position: int, delta: int
) -> None:
    valid = normalize_imei(body)
    changed = valid[:position] + str((int(valid[position]) + delta) % 10) + valid[position + 1 :]
    assert changed != valid
    with pytest.raises(InvalidTarget):
        normalize_imei(changed)


@PROPERTY
@given(raw=st.text(alphabet="0123456789 +-()", min_size=1, max_size=20))
def test_msisdn_normalisation_is_idempotent(raw: str) -> None:
    try:
        once = normalize_msisdn(raw)
    except InvalidTarget:
        return
    assert once.startswith("+")
    assert normalize_msisdn(once) == once


# An Indian mobile number: ten digits starting 6-9.
indian_mobile = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("6789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
)
separator = st.sampled_from(["", "", " ", "-", "  ", " - "])


@PROPERTY
@given(
    number=indian_mobile,
    prefix=st.sampled_from(["", "0", "+91", "91", "+91 ", "+91-", "0091", "91 ", "0 "]),
    data=st.data(),
)
def test_any_formatting_of_an_indian_mobile_gives_the_same_e164(
    number: str, prefix: str, data: st.DataObject
) -> None:
    try:
        expected = normalize_msisdn("+91" + number)
    except InvalidTarget:
        reject()  # a series phonenumbers does not know as valid
    assert expected == "+91" + number
    seps = data.draw(st.lists(separator, min_size=9, max_size=9))
    formatted = number[0] + "".join(s + d for s, d in zip(seps, number[1:], strict=True))
    lead = data.draw(st.sampled_from(["", " ", "  "]))
    assert normalize_msisdn(lead + prefix + formatted) == expected


def test_a_number_spaced_out_digit_by_digit_is_still_a_number() -> None:
    # 41 characters: longer than a phone number's usual writing, within a value's 64
    assert normalize_msisdn("+91 9 - 8 - 1 - 0 - 0 - 0 - 0 - 0 - 0 - 1") == "+919810000001"
    with pytest.raises(InvalidTarget, match="too long"):
        normalize_msisdn("9" + " - " * 22 + "8")


def test_an_extension_is_refused_not_silently_dropped() -> None:
    with pytest.raises(InvalidTarget, match="extension"):
        normalize_msisdn("9876543210#5")


def _outcome(normalise: Callable[[str], str], text: str) -> str:
    try:
        return normalise(text)
    except InvalidTarget as exc:
        return f"refused: {exc.reason}"


@hsettings(database=None, deadline=None, max_examples=1500)
@given(
    prefix=st.sampled_from(["", "+91", "+9", "91", "0", "+1", "+"]),
    digits=st.text(alphabet="0123456789", min_size=9, max_size=11),
    lead=st.sampled_from("0123456789"),
)
def test_the_short_way_for_indian_mobiles_agrees_with_parsing_in_full(
    prefix: str, digits: str, lead: str
) -> None:
    """Ten digits (after +91 or not) take a short way; whatever it returns, and whatever it
    refuses, is what parsing the number in full gives, error message included."""
    text = prefix + lead + digits
    assert _outcome(normalize_msisdn, text) == _outcome(parsed_msisdn, text)


@pytest.mark.parametrize(
    "text",
    ["7006000750", "+917006000750", "9999999999", "6000000000", "+916000000000", "9100000000",
     "9110000000", "5999999999", "+915999999999", "07006000750", "917006000750"],
)  # fmt: skip
def test_the_short_way_agrees_on_edges(text: str) -> None:
    assert _outcome(normalize_msisdn, text) == _outcome(parsed_msisdn, text)
