"""Blocklist files for operators that collect files: a full list once a day, then the changes
(the same content as `GET /v1/operator/blocklist`, full and since a cursor)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog

from service import reconciliation
from service.ports import BlocklistFile, BlocklistLine, BlocklistPublisher, OperatorAdapter
from service.reconciliation_models import BlocklistOut, BlocklistQuery
from service.settings import Settings
from service.store import Store

log = structlog.get_logger()
DELTA_LINES = 10_000  # changes per delta file; more follow in the next one


def as_file(out: BlocklistOut, since: int | None, day: str) -> BlocklistFile:
    """The API's answer as a file to hand over."""
    if out.full:
        lines = [BlocklistLine(i.kind, i.value) for i in out.items or []]
    else:
        lines = [BlocklistLine(c.kind, c.value, c.change, c.seq, c.at) for c in out.changes or []]
    return BlocklistFile(out.full, out.cursor, since, day, lines)


async def publish(
    store: Store, operator: str, publisher: BlocklistPublisher, today: datetime
) -> str | None:
    """Hand the operator its full list when none was handed today, else the changes since the
    last file, if any; the file's name. The progress is kept only once the file is written."""
    await store.fetch("blocklist_drop_init", operator)
    async with store.transaction() as tx:
        state = await tx.fetchrow("blocklist_drop_lock", operator)
        if state is None:
            return None  # another worker is writing this operator's file
        full = state["full_on"] is None or state["full_on"] < today.date()
        since = None if full else state["cursor"]
        query = BlocklistQuery(since=since, limit=DELTA_LINES)
        out = await reconciliation.blocklist(store, operator, query)
        if not (full or out.changes):
            return None
        name = await _hand_over(publisher, operator, as_file(out, since, today.strftime("%Y%m%d")))
        if name is None:
            return None
        await tx.execute(
            "blocklist_drop_done", operator, today.date() if full else None, out.cursor
        )
    log.info("blocklist.file_written", operator=operator, file=name, cursor=out.cursor)
    return name


async def _hand_over(
    publisher: BlocklistPublisher, operator: str, file: BlocklistFile
) -> str | None:
    """The written file's name, or None when the outbox is away (the same file is due at
    the next upkeep: the progress is not moved on)."""
    try:
        return await publisher.publish_blocklist(file)
    except OSError as exc:
        log.warning("blocklist.file_failed", operator=operator, error=exc.strerror or str(exc))
        return None


async def publish_due(
    store: Store, adapters: Mapping[str, OperatorAdapter], settings: Settings
) -> None:
    """Write the due blocklist files of every operator whose adapter hands over files."""
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.report_tz))
    for code, adapter in adapters.items():
        if not isinstance(adapter, BlocklistPublisher):
            continue
        await publish(store, code, adapter, today)
