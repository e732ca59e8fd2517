"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign and verify."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class SignatureError(Exception):
    """A webhook's headers or signature do not check out."""


def generate_secret(nbytes: int = 32) -> str:
    """Return a fresh random secret in the `whsec_<base64>` form."""
    if not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"secret size must be {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """Return the HMAC key inside a `whsec_` secret, or raise ValueError saying what is wrong."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"secret must start with {SECRET_PREFIX!r}")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"secret after {SECRET_PREFIX!r} must be valid base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"secret key must decode to {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes,"
            f" got {len(key)}"
        )
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value (`v1,<base64>`) for one message."""
    digest = _digest(secret_key(secret), msg_id, timestamp, body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_headers(
    secrets: str | Sequence[str],
    body: bytes,
    *,
    msg_id: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """Return the three Standard Webhooks headers for a body sent now; with several secrets
    (a rotation), one signature each, space-separated, so either secret verifies."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time() if now is None else now)
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(k, msg_id, timestamp, body) for k in keys),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> None:
    """Check a received message's headers and signature; raise SignatureError if they fail."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    raw_timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and raw_timestamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise SignatureError("webhook-timestamp is not a unix time in seconds")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance_s:
        raise SignatureError("webhook-timestamp is too old")
    if timestamp > current + tolerance_s:
        raise SignatureError("webhook-timestamp is in the future")
    try:
        key = secret_key(secret)
    except ValueError as exc:
        raise SignatureError(f"unusable secret: {exc}") from None
    expected = _digest(key, msg_id, timestamp, body)
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            received = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, received):
            return
    raise SignatureError("no matching v1 signature")
