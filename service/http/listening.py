"""Opening a listening port for an aiohttp runner, and saying why when it cannot."""

from __future__ import annotations

import errno
import os

from aiohttp import web

from service.errors import DomainError


async def listen(
    runner: web.BaseRunner,
    host: str,
    port: int,
    what: str,
    *,
    reuse_port: bool = False,
    if_taken: str = "",
) -> None:
    """Listen on host:port for a set-up runner. A port that is taken (or not ours) stops what
    set-up began and says so (`if_taken` added when it is in use), instead of leaving the
    process half started."""
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = if_taken if exc.errno == errno.EADDRINUSE else ""
        raise DomainError(f"cannot {what} on {host}:{port}: {reason}{hint}") from None
