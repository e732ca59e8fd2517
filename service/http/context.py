"""Application keys shared by the app factory and the resource modules."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from service.auth import Principal, TokenCache, authenticate
from service.dispatcher import Dispatcher
from service.escalation_ports import EscalationSender
from service.intake_batcher import IntakeBatcher
from service.settings import Settings
from service.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
# where read-only endpoints query: the replica's ReadStore with DATABASE_READ_URL, else STORE
READS = web.AppKey("reads", Store)
OPENAPI = web.AppKey("openapi", dict[str, Any])
DISPATCHER = web.AppKey("dispatcher", list[Dispatcher])
BULK_GATE = web.AppKey("bulk_gate", asyncio.Semaphore)
INTAKE = web.AppKey("intake", IntakeBatcher)
TOKENS = web.AppKey("tokens", TokenCache)
ESCALATION_SENDER = web.AppKey("escalation_sender", EscalationSender)


async def principal_of(request: web.Request) -> Principal:
    """The authenticated caller, or a 401 problem."""
    return await authenticate(
        request.app[STORE], request.headers.get("Authorization"), request.app[TOKENS]
    )
