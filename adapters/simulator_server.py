"""A standalone fake operator that receives signed http_json batches and answers them."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import aiohttp
import orjson
import structlog
from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, model_validator
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from adapters import signing
from service.ports import STAGES

log = structlog.get_logger()

Item = dict[str, str]


class SimulatorSettings(BaseModel):
    """How the fake operator answers; `mode` defaults to "async" when an `ack_url` is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: str
    mode: Literal["sync", "async"] = "sync"
    latency_ms: float = Field(default=0, ge=0, le=60_000)
    failure_rate: float = Field(default=0, ge=0, le=1)
    ack_url: AnyHttpUrl | None = None
    token: str | None = None
    ack_batch_size: int = Field(default=100, ge=1, le=10_000)
    ack_flush_ms: float = Field(default=50, ge=0, le=60_000)
    ack_retry_base_ms: float = Field(default=100, gt=0, le=60_000)
    ack_max_attempts: int = Field(default=8, ge=1, le=100)
    signature_tolerance_s: float = Field(default=300, gt=0)
    dedup_capacity: int = Field(default=1_000_000, ge=1)
    reverify_outcome: Literal["disconnected", "retained"] = Field(
        default="disconnected",
        description="How an order with `instruction: reverify` ends; in async mode its stages "
        "(outgoing barred, incoming barred, re-verification pending) are acknowledged first.",
    )
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") is None:
            data = {key: value for key, value in data.items() if key != "mode"}
            if data.get("ack_url"):
                data["mode"] = "async"
        return data

    @model_validator(mode="after")
    def _async_needs_ack_target(self) -> Self:
        signing.secret_key(self.secret)
        if self.mode == "async" and not (self.ack_url and self.token):
            raise ValueError("async mode needs ack_url and token")
        return self


class _WireOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: str
    action: Literal["block", "unblock"]
    kind: Literal["msisdn", "imei"]
    value: str
    urgent: bool = False
    attempt: int = 1
    seq: int = 0
    instruction: Literal["block", "reverify", "unblock"] | None = None
    request_id: str | None = None
    unit: str | None = None
    case_ref: str | None = None
    category: str | None = None
    legal_basis: str | None = None
    officer: dict[str, str | None] | None = None
    reason: str | None = None


class _Batch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    orders: list[_WireOrder]


@dataclass(slots=True)
class _Entry:
    answer: Item
    ack: Item | None
    order: _WireOrder | None = None  # as received the first time, authority and all


@dataclass
class SimulatorState:
    """What the fake operator has seen and owes; tests read its counters."""

    settings: SimulatorSettings
    answers: dict[str, _Entry] = field(default_factory=dict)
    pending_acks: set[str] = field(default_factory=set)
    ack_queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    rng: random.Random = field(default_factory=random.Random)
    batches: int = 0
    orders: int = 0
    duplicates: int = 0
    failures: int = 0
    bad_signatures: int = 0
    acks_sent: int = 0
    acks_dropped: int = 0

    def answer(self, order: _WireOrder) -> Item:
        """Answer one order, giving a re-sent order the answer it had the first time."""
        entry = self.answers.get(order.order_id)
        if entry is not None:
            self.duplicates += 1
            if entry.ack is not None and order.order_id not in self.pending_acks:
                self._queue_ack(entry.ack)
            return entry.answer
        final = "blocked" if order.action == "block" else "unblocked"
        reverify = order.action == "block" and order.instruction == "reverify"
        if reverify:
            final = self.settings.reverify_outcome
        ref = f"sim-{uuid.uuid4().hex[:12]}"
        ack: Item | None = None
        if self.settings.mode == "sync":
            answer = {"order_id": order.order_id, "status": final, "operator_ref": ref}
        else:
            answer = {"order_id": order.order_id, "status": "accepted", "operator_ref": ref}
            ack = {"order_id": order.order_id, "status": final, "operator_ref": ref}
            for stage in STAGES if reverify else ():
                self._queue_ack({"order_id": order.order_id, "status": stage})
            self._queue_ack(ack)
        self.answers[order.order_id] = _Entry(answer, ack, order)
        if len(self.answers) > self.settings.dedup_capacity:
            del self.answers[next(iter(self.answers))]
        return answer

    def _queue_ack(self, ack: Item) -> None:
        self.pending_acks.add(ack["order_id"])
        self.ack_queue.put_nowait(ack)


SIMULATOR_STATE = web.AppKey("simulator_state", SimulatorState)


class _AckRetryable(Exception):
    """The ack receiver may take the batch if asked again."""


class _AckRefused(Exception):
    """The ack receiver refused the batch for good."""


async def receive_batch(request: web.Request) -> web.Response:
    """Verify, parse and answer one http_json batch."""
    state = request.app[SIMULATOR_STATE]
    settings = state.settings
    body = await request.read()
    try:
        signing.verify(
            settings.secret, request.headers, body, tolerance_s=settings.signature_tolerance_s
        )
    except signing.SignatureError as exc:
        state.bad_signatures += 1
        log.warning("simulator.signature_rejected", error=str(exc))
        return web.json_response({"error": f"bad signature: {exc}"}, status=401)
    try:
        batch = _Batch.model_validate_json(body)
    except ValidationError as exc:
        log.warning("simulator.batch_invalid", errors=exc.error_count())
        return web.json_response({"error": f"invalid batch: {exc.errors()[0]['msg']}"}, status=400)
    if settings.latency_ms:
        await asyncio.sleep(settings.latency_ms / 1000)
    if settings.failure_rate and state.rng.random() < settings.failure_rate:
        state.failures += 1
        log.info("simulator.failure_simulated", orders=len(batch.orders))
        return web.json_response({"error": "simulated failure"}, status=503)
    duplicates_before = state.duplicates
    results = [state.answer(order) for order in batch.orders]
    state.batches += 1
    state.orders += len(batch.orders)
    log.info(
        "simulator.batch_received",
        orders=len(batch.orders),
        duplicates=state.duplicates - duplicates_before,
        mode=settings.mode,
    )
    return web.Response(body=orjson.dumps({"results": results}), content_type="application/json")


async def health(request: web.Request) -> web.Response:
    """Report the counters."""
    state = request.app[SIMULATOR_STATE]
    counters = {
        name: getattr(state, name)
        for name in ("batches", "orders", "duplicates", "failures", "acks_sent", "acks_dropped")
    }
    return web.json_response({"status": "ok", "mode": state.settings.mode, **counters})


async def _post_acks(
    session: aiohttp.ClientSession, settings: SimulatorSettings, acks: list[Item]
) -> None:
    headers = {"Authorization": f"Bearer {settings.token}", "Content-Type": "application/json"}
    try:
        async with session.post(
            str(settings.ack_url), data=orjson.dumps({"acks": acks}), headers=headers
        ) as response:
            status = response.status
            text = await response.text(errors="replace")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _AckRetryable(f"{type(exc).__name__}: {exc}") from exc
    if status in (408, 429) or status >= 500:
        raise _AckRetryable(f"HTTP {status}")
    if not 200 <= status < 300:
        raise _AckRefused(f"HTTP {status}: {text[:200]}")


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else None
    log.warning(
        "simulator.ack_retry_scheduled",
        attempt=state.attempt_number,
        delay_s=delay,
        error=str(error),
    )


async def deliver_acks(
    state: SimulatorState, session: aiohttp.ClientSession, acks: list[Item]
) -> None:
    """POST one batch of acks, retrying transient failures with random exponential backoff."""
    settings = state.settings
    base = settings.ack_retry_base_ms / 1000
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_AckRetryable),
        wait=wait_random_exponential(multiplier=base, max=base * 100),
        stop=stop_after_attempt(settings.ack_max_attempts),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                await _post_acks(session, settings, acks)
    except (_AckRetryable, _AckRefused) as exc:
        state.acks_dropped += len(acks)
        log.error("simulator.acks_dropped", acks=len(acks), error=str(exc))
    else:
        state.acks_sent += len(acks)
        log.info("simulator.acks_sent", acks=len(acks))
    finally:
        state.pending_acks.difference_update(ack["order_id"] for ack in acks)


async def send_acks_forever(state: SimulatorState, session: aiohttp.ClientSession) -> None:
    """Gather queued acks into batches and deliver them, one batch at a time."""
    queue = state.ack_queue
    size = state.settings.ack_batch_size
    while True:
        batch = [await queue.get()]
        if state.settings.ack_flush_ms and queue.qsize() < size - 1:
            await asyncio.sleep(state.settings.ack_flush_ms / 1000)
        while len(batch) < size and not queue.empty():
            batch.append(queue.get_nowait())
        await deliver_acks(state, session, batch)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator.ack_sender_crashed", error=repr(task.exception()))


async def _ack_sender(app: web.Application) -> AsyncIterator[None]:
    state = app[SIMULATOR_STATE]
    if state.settings.mode != "async":
        yield
        return
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        task = asyncio.create_task(send_acks_forever(state, session))
        task.add_done_callback(_report_crash)
        yield
        task.cancel()
        await asyncio.wait([task])
        if state.pending_acks:
            log.warning("simulator.acks_abandoned", acks=len(state.pending_acks))


def create_simulator_app(settings: SimulatorSettings) -> web.Application:
    """Build the fake operator's app: POST any path to deliver a batch, GET /healthz."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app[SIMULATOR_STATE] = SimulatorState(settings, rng=random.Random(settings.seed))
    app.router.add_get("/healthz", health)
    app.router.add_post("/{tail:.*}", receive_batch)
    app.cleanup_ctx.append(_ack_sender)
    return app


async def run_simulated_operator(
    host: str, port: int, settings: SimulatorSettings, *, stop: asyncio.Event | None = None
) -> None:
    """Serve the fake operator on host:port until `stop` is set (or the task is cancelled)."""
    runner = web.AppRunner(create_simulator_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        urls = [f"http://{address[0]}:{address[1]}" for address in runner.addresses]
        log.info("simulator.listening", urls=urls, mode=settings.mode)
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
        log.info("simulator.stopped")
