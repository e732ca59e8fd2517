"""The escalation sender interface (a Protocol) and the results it returns (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Delivered:
    """The endpoint answered 2xx."""

    http_status: int


@dataclass(frozen=True, slots=True)
class Retryable:
    """Worth trying again: 408, 429, 5xx, a timeout, a connection error."""

    error: str
    retry_after: float | None = None
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """The endpoint refused the event in a way retrying cannot fix (another 4xx, a redirect)."""

    error: str
    http_status: int | None = None


SendResult = Delivered | Retryable | Refused


class EscalationSender(Protocol):
    """Posts signed events to subscribed endpoints; never raises for delivery problems."""

    def new_secret(self) -> str:
        """A fresh signing secret for a new endpoint."""
        ...

    async def send(self, url: str, secret: str, msg_id: str, body: bytes) -> SendResult:
        """POST one event, signed with `secret` under the id `msg_id`."""
        ...

    async def close(self) -> None:
        """Release sockets."""
        ...
