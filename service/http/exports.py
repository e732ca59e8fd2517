"""CSV downloads: small reports as one body, long exports streamed chunk by chunk."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import structlog
from aiohttp import hdrs, web

from service import spreadsheet
from service.store import StoreError

log = structlog.get_logger()
CsvRows = Sequence[Sequence[Any]]


def _disposition(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def csv_text(text: str, filename: str) -> web.Response:
    """A report already built (bounded by its groups, not by history) as a download."""
    return web.Response(
        text=text, content_type="text/csv", charset="utf-8", headers=_disposition(filename)
    )


async def csv_stream(
    request: web.Request,
    filename: str,
    header: Sequence[str],
    chunks: AsyncGenerator[CsvRows, None],
) -> web.StreamResponse:
    """Write an export as its chunks of rows arrive, each as it comes, so the service holds one
    chunk at a time. The first chunk is read before the first byte is sent, so an error
    there (scope, a database down) is still a problem+json answer; a failure later can only
    cut the download short, which the client sees as a broken transfer, never a complete file."""
    async with contextlib.aclosing(chunks):
        try:
            first: CsvRows = await anext(chunks)
        except StopAsyncIteration:  # (not anext's default: CPython 3.11 mishandles it here)
            first = ()
        response = web.StreamResponse(headers=_disposition(filename))
        response.content_type = "text/csv"
        response.charset = "utf-8"
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id is not None:  # the middleware's echo comes after the headers are sent
            response.headers["X-Request-ID"] = request_id
        await response.prepare(request)
        if request.method == hdrs.METH_HEAD:  # headers only (a stream's writes would follow)
            await response.write_eof()
            return response
        await response.write(spreadsheet.text([header, *first]).encode())
        try:
            async for rows in chunks:
                await response.write(spreadsheet.text(rows).encode())
        except StoreError as exc:
            log.warning("export.interrupted", path=request.path, error=str(exc))
            if request.transport is not None:
                request.transport.abort()
            return response
    await response.write_eof()
    return response
