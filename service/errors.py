"""Domain errors; the HTTP layer turns them into problem+json."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of errors a caller can act on."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        # every listed error says what is wrong: the detail, unless it has its own message
        self.errors = [e if "message" in e else {**e, "message": detail} for e in errors or []]


class Unauthorized(DomainError):
    """No valid token."""

    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    """The token's role or scope does not allow this."""

    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    """No such thing visible to the caller."""

    status = 404
    title = "Not found"


class Conflict(DomainError):
    """The thing is in a state that does not allow this."""

    status = 409
    title = "Conflict"


class Invalid(DomainError):
    """Well-formed input that breaks a rule; `errors` names each field."""

    status = 422
    title = "Unprocessable content"
