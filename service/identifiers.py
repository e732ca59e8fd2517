"""MSISDN and IMEI normalisation: a value of these types that exists is valid."""

from __future__ import annotations

import re
from typing import NewType

import phonenumbers

Msisdn = NewType("Msisdn", str)
Imei = NewType("Imei", str)

_IMEI_SEPARATORS = re.compile(r"[\s\-/.]+")
# The shape nearly every filing uses: an Indian mobile number's ten digits, perhaps after +91.
# Parsing one gives exactly that number (no prefix to strip, no extension), so only its
# validity needs asking; that is a quarter of what parsing costs, on every target.
_INDIAN_MOBILE = re.compile(r"(?:\+91)?([6-9][0-9]{9})")
_POSSIBLE_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short for a phone number",
    phonenumbers.ValidationResult.TOO_LONG: "too long for a phone number",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for a phone number",
}


class InvalidTarget(ValueError):
    """A target value that cannot be normalised; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_msisdn(raw: str, region: str = "IN") -> Msisdn:
    """Parse a phone number (default region India) and return it as E.164."""
    text = raw.strip()
    if not text:
        raise InvalidTarget("empty phone number")
    if len(text) > 64:  # a target's value may be 64 characters (models.TargetIn)
        raise InvalidTarget("too long for a phone number")
    if re.search(r"[A-Za-z]", text):
        raise InvalidTarget("phone numbers contain digits only (letters found)")
    if region == "IN" and (mobile := _INDIAN_MOBILE.fullmatch(text)):
        digits = mobile.group(1)
        if phonenumbers.is_valid_number(phonenumbers.PhoneNumber(91, int(digits))):
            return Msisdn("+91" + digits)  # else parsed, to say why it is not valid
    return parsed_msisdn(text, region)


def parsed_msisdn(text: str, region: str = "IN") -> Msisdn:
    """A phone number parsed in full (phonenumbers): normalize_msisdn's long way."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidTarget(f"not a phone number: {exc.args[0] if exc.args else exc}") from None
    if number.extension:
        raise InvalidTarget(f"extensions are not allowed (found extension {number.extension})")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible in _POSSIBLE_REASONS:
        raise InvalidTarget(_POSSIBLE_REASONS[possible])
    if not phonenumbers.is_valid_number(number):
        raise InvalidTarget("not a valid number in any numbering plan")
    return Msisdn(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def luhn_check_digit(body: str) -> str:
    """The Luhn check digit for a string of digits (the IMEI's first 14)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def normalize_imei(raw: str) -> Imei:
    """Return the 15-digit IMEI with a valid check digit, or raise InvalidTarget."""
    digits = _IMEI_SEPARATORS.sub("", raw.strip())
    if not digits:
        raise InvalidTarget("empty IMEI")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidTarget("an IMEI contains digits only")
    if len(digits) == 14:
        body = digits
    elif len(digits) == 15:
        body = digits[:14]
        if luhn_check_digit(body) != digits[14]:
            raise InvalidTarget(
                f"check digit {digits[14]} is wrong (Luhn gives {luhn_check_digit(body)})"
            )
    elif len(digits) == 16:
        body = digits[:14]  # IMEISV: the last two digits are the software version
    else:
        raise InvalidTarget(f"an IMEI has 14, 15 or 16 digits, not {len(digits)}")
    if body[:8] == "00000000":
        raise InvalidTarget("type allocation code 00000000 is not a real handset")
    return Imei(body + luhn_check_digit(body))


def normalize_target(kind: str, raw: str, region: str = "IN") -> str:
    """Normalise a target value of the given kind ('msisdn' or 'imei')."""
    if kind == "msisdn":
        return normalize_msisdn(raw, region)
    if kind == "imei":
        return normalize_imei(raw)
    raise InvalidTarget(f"unknown target kind {kind!r}")
