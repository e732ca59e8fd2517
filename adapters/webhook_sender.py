"""Escalations to subscribed endpoints: one Standard-Webhooks-signed JSON POST per event."""

from __future__ import annotations

import aiohttp
import structlog

from adapters import signing
from adapters.http_json import RETRYABLE_STATUSES, parse_retry_after
from service.escalation_ports import Delivered, Refused, Retryable, SendResult

log = structlog.get_logger()
EXCERPT_CHARS = 200


class WebhookSender:
    """POSTs events with `webhook-id`, `webhook-timestamp` and `webhook-signature` headers and
    translates the answer: 2xx delivered; 408, 425, 429, 5xx, timeouts and connection errors
    retryable (with `Retry-After`); anything else refused."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def new_secret(self) -> str:
        """A fresh `whsec_` secret."""
        return signing.generate_secret()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def send(self, url: str, secret: str, msg_id: str, body: bytes) -> SendResult:
        """POST one signed event."""
        headers = signing.webhook_headers(secret, body, msg_id=msg_id)
        headers["Content-Type"] = "application/json"
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = await response.read()
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except TimeoutError:
            return Retryable(f"timed out after {self.timeout_s:g}s")
        except aiohttp.ClientError as exc:
            return Retryable(f"connection failed: {str(exc) or type(exc).__name__}")
        except OSError as exc:
            return Retryable(f"network error: {exc.strerror or exc}")
        if 200 <= status < 300:
            return Delivered(status)
        text = " ".join(answer.decode("utf-8", errors="replace").split())[:EXCERPT_CHARS]
        error = f"HTTP {status}: {text}" if text else f"HTTP {status}"
        if status in RETRYABLE_STATUSES or status >= 500:
            return Retryable(error, retry_after=retry_after, http_status=status)
        return Refused(error, http_status=status)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
