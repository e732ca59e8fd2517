"""Push batches as signed JSON over HTTP(S) and translate the operator's answer."""

from __future__ import annotations

import email.utils
import hashlib
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

import aiohttp
import orjson
import structlog
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from adapters import signing
from service.ports import (
    Accepted,
    Acknowledged,
    AckStatus,
    CredentialsRefused,
    DeliveryResult,
    OutboundOrder,
    PermanentFailure,
    TransientFailure,
)

log = structlog.get_logger()

RETRYABLE_STATUSES = frozenset({408, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 403})  # our secret or credentials are wrong, not the order
EXCERPT_CHARS = 200


class HttpJsonConfig(BaseModel):
    """Settings of an operator reached by signed JSON POSTs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: AnyHttpUrl
    secret: str
    timeout_s: float = Field(default=10, gt=0, le=300)
    max_batch: int = Field(default=100, ge=1, le=1000)
    # a 2xx whose body holds no `results`: every order accepted (acks follow), or an error
    accept_without_results: bool = True
    # secret rotation (service.operators keeps the replaced secret): until `rotation_ends_at`
    # every batch is signed with both secrets
    previous_secret: str | None = None
    rotation_ends_at: datetime | None = None
    rotation_grace_s: float | None = Field(default=None, ge=0, le=90 * 86400)

    @field_validator("secret", "previous_secret")
    @classmethod
    def _secret_is_usable(cls, value: str | None) -> str | None:
        if value is not None:
            signing.secret_key(value)
        return value

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a batch sent now is signed with: the previous one during its grace."""
        if self.previous_secret and self.rotation_ends_at and now < self.rotation_ends_at:
            return [self.previous_secret, self.secret]
        return [self.secret]


class _ItemBase(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: str | int


class _AcceptedItem(_ItemBase):
    status: Literal["accepted"]
    operator_ref: str | None = None


class _AckItem(_ItemBase):
    status: AckStatus
    reason: str | None = None
    operator_ref: str | None = None


class _ErrorItem(_ItemBase):
    status: Literal["error"]
    retryable: bool
    error: str


_Item = Annotated[_AcceptedItem | _AckItem | _ErrorItem, Field(discriminator="status")]
_ITEM: TypeAdapter[_AcceptedItem | _AckItem | _ErrorItem] = TypeAdapter(_Item)


def order_payload(order: OutboundOrder) -> dict[str, Any]:
    """Return one order as it appears on the wire."""
    return {
        "order_id": str(order.order_id),
        "action": order.action,
        "kind": order.kind,
        "value": order.value,
        "urgent": order.urgent,
        "attempt": order.attempt,
        "seq": order.seq,
        "instruction": order.told,
        "request_id": str(order.request_id),
        "unit": order.unit,
        "case_ref": order.case_ref,
        "category": order.category,
        "legal_basis": order.legal_basis,
        "officer": {"name": order.officer_name, "rank": order.officer_rank},
        "reason": order.reason,
    }


def batch_webhook_id(orders: Sequence[OutboundOrder]) -> str:
    """The `webhook-id` of a batch: the same for the same orders on every try, so an
    operator can drop a re-sent batch it already has (attempt numbers are left out)."""
    ids = ",".join(str(i) for i in sorted(o.order_id for o in orders))
    return "msg_" + hashlib.sha256(f"{orders[0].operator}:{ids}".encode()).hexdigest()[:32]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a `Retry-After` header asks for (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


def _item_result(
    order_id: int, item: _AcceptedItem | _AckItem | _ErrorItem, status: int
) -> DeliveryResult:
    if isinstance(item, _AcceptedItem):
        return Accepted(order_id, operator_ref=item.operator_ref, http_status=status)
    if isinstance(item, _AckItem):  # whether it may answer the order: service.acks decides
        return Acknowledged(
            order_id,
            item.status,
            reason=item.reason,
            operator_ref=item.operator_ref,
            http_status=status,
        )
    if item.retryable:
        return TransientFailure(order_id, f"operator error: {item.error}", http_status=status)
    return PermanentFailure(order_id, f"operator error: {item.error}", http_status=status)


def map_success(
    orders: Sequence[OutboundOrder], status: int, body: bytes, *, accept_without_results: bool
) -> list[DeliveryResult]:
    """Translate a 2xx answer into one result per order. A body with no `results` (empty, or
    a JSON object without the key) accepts every order when `accept_without_results`."""
    try:
        document: Any = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and "results" not in document:
        if accept_without_results:
            return [Accepted(o.order_id, http_status=status) for o in orders]
        error = f"no results in the response body: {_excerpt(body)}".rstrip(": ")
        return [TransientFailure(o.order_id, error, http_status=status) for o in orders]
    raw_items = document.get("results") if isinstance(document, dict) else None
    if not isinstance(raw_items, list):
        error = f"unparsable response body: {_excerpt(body)}"
        log.warning("http_json.unparsable_response", http_status=status, body=_excerpt(body))
        return [TransientFailure(o.order_id, error, http_status=status) for o in orders]
    items: dict[str, _AcceptedItem | _AckItem | _ErrorItem] = {}
    invalid: dict[str, str] = {}
    for raw in raw_items:
        try:
            item = _ITEM.validate_python(raw)
        except ValidationError as exc:
            if isinstance(raw, dict) and isinstance(raw.get("order_id"), str | int):
                invalid.setdefault(str(raw["order_id"]), exc.errors()[0]["msg"])
            continue
        items.setdefault(str(item.order_id), item)
    results: list[DeliveryResult] = []
    for order in orders:
        key = str(order.order_id)
        if key in items:
            results.append(_item_result(order.order_id, items[key], status))
        elif key in invalid:
            error = f"invalid result item: {invalid[key]}"
            results.append(TransientFailure(order.order_id, error, http_status=status))
        else:
            error = "order missing from the operator's results"
            results.append(TransientFailure(order.order_id, error, http_status=status))
    return results


def map_failure(
    orders: Sequence[OutboundOrder], status: int, body: bytes, headers: Mapping[str, str]
) -> list[DeliveryResult]:
    """Translate a non-2xx answer into the same failure for every order."""
    excerpt = _excerpt(body)
    error = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return [
            TransientFailure(o.order_id, error, retry_after=retry_after, http_status=status)
            for o in orders
        ]
    if status in CREDENTIAL_STATUSES:
        return [CredentialsRefused(o.order_id, error, http_status=status) for o in orders]
    return [PermanentFailure(o.order_id, error, http_status=status) for o in orders]


class HttpJsonAdapter:
    """Delivers each batch as one signed JSON POST to the operator's URL."""

    kind: ClassVar[str] = "http_json"

    def __init__(self, operator_code: str, config: HttpJsonConfig) -> None:
        self.operator_code = operator_code
        self.config = config
        self.max_batch = config.max_batch
        self.pushes = True
        self._url = str(config.url)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def send(self, orders: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        """POST the batch once; one result per order."""
        if len(orders) > self.max_batch:
            raise ValueError(f"batch of {len(orders)} exceeds max_batch {self.max_batch}")
        if not orders:
            return []
        body = orjson.dumps({"orders": [order_payload(o) for o in orders]})
        headers = signing.webhook_headers(
            self.config.signing_secrets(datetime.now(UTC)), body, msg_id=batch_webhook_id(orders)
        )
        headers["Content-Type"] = "application/json"
        try:
            async with self._client().post(
                self._url, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = await response.read()
                status = response.status
                response_headers = response.headers
        except TimeoutError:
            return self._transient(orders, f"timed out after {self.config.timeout_s:g}s")
        except aiohttp.ClientError as exc:
            return self._transient(orders, f"connection failed: {str(exc) or type(exc).__name__}")
        except OSError as exc:
            return self._transient(orders, f"network error: {exc.strerror or exc}")
        if 200 <= status < 300:
            return map_success(
                orders, status, answer, accept_without_results=self.config.accept_without_results
            )
        return map_failure(orders, status, answer, response_headers)

    def _transient(self, orders: Sequence[OutboundOrder], error: str) -> list[DeliveryResult]:
        log.info("http_json.delivery_failed", operator=self.operator_code, error=error)
        return [TransientFailure(o.order_id, error) for o in orders]

    async def close(self) -> None:
        """Close the shared HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
