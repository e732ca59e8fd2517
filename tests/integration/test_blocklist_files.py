"""file_drop operators get their expected blocklist as files: a full list once a day, then
delta files, each with its checksum, the same content as `GET /v1/operator/blocklist`."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from adapters.registry import build_adapter, validate_config
from service import operators
from service.dispatcher import Dispatcher
from service.settings import Settings
from service.store import Store
from tests.conftest import Tokens
from tests.integration.dispatch_kit import Client, lanes_of
from tests.integration.test_reconciliation import A, B, C, ack, file, get


def read_checked(outbox: Path, name: str) -> list[list[str]]:
    """A blocklist file's rows, once its checksum file vouches for it."""
    data = (outbox / name).read_bytes()
    checksum = (outbox / f"{name}.sha256").read_text()
    assert checksum == f"{hashlib.sha256(data).hexdigest()}  {name}\n"
    return list(csv.reader(io.StringIO(data.decode())))


def blocklist_files(outbox: Path) -> list[str]:
    return sorted(p.name for p in outbox.glob("blocklist-*.csv"))


async def deliver_and_ack(
    client: Client, tokens: Tokens, store: Store, settings: Settings, *values: str
) -> None:
    """Drop the pending orders as batch files, then ack those of `values` as jio."""
    await Dispatcher(store, settings, build_adapter, drain=True).run()
    rows = await store.pool.fetch(
        "SELECT id FROM orders WHERE operator_code = 'jio' AND status = 'sent'"
        " AND value = ANY($1::text[])",
        list(values),
    )
    await ack(client, tokens["jio"], *((r["id"], "blocked") for r in rows))


async def test_a_full_file_a_day_then_delta_files(
    client: Client, tokens: Tokens, store: Store, settings: Settings, tmp_path: Path
) -> None:
    outbox = tmp_path / "jio-outbox"
    outbox.mkdir()
    config: dict[str, Any] = {"outbox": str(outbox)}
    await operators.set_operator(store, "jio", "file_drop", config, validate_config)
    await file(client, tokens["investigator"], A, B)
    await deliver_and_ack(client, tokens, store, settings, A, B)
    full_api = await get(client, tokens["jio"], "/v1/operator/blocklist")

    dispatcher = Dispatcher(store, settings, build_adapter)
    async with lanes_of(dispatcher):
        await dispatcher.upkeep()
        [full] = blocklist_files(outbox)
        assert full.startswith("blocklist-full-") and full.endswith(
            f"-{full_api['cursor']:012d}.csv"
        )
        rows = read_checked(outbox, full)
        assert rows[0] == ["kind", "value"]
        assert rows[1:] == [[i["kind"], i["value"]] for i in full_api["items"]]
        assert [r[1] for r in rows[1:]] == [A, B]
        await dispatcher.upkeep()  # nothing changed: no file
        assert blocklist_files(outbox) == [full]

        # a new block lands: a delta file with just that change
        await file(client, tokens["investigator"], C, case_ref="FIR-62/2026")
        await deliver_and_ack(client, tokens, store, settings, C)
        since = full_api["cursor"]
        delta_api = await get(client, tokens["jio"], f"/v1/operator/blocklist?since={since}")
        with capture_logs() as logs:  # the outbox is away: nothing written, nothing lost
            shutil.move(outbox, tmp_path / "away")
            await dispatcher.upkeep()
            shutil.move(tmp_path / "away", outbox)
        assert any(e["event"] == "blocklist.file_failed" for e in logs)
        await dispatcher.upkeep()
        [delta] = [n for n in blocklist_files(outbox) if n.startswith("blocklist-delta-")]
        assert delta == f"blocklist-delta-{since:012d}-{delta_api['cursor']:012d}.csv"
        rows = read_checked(outbox, delta)
        assert rows[0] == ["seq", "kind", "value", "change", "at"]
        assert [r[:4] for r in rows[1:]] == [
            [str(c["seq"]), c["kind"], c["value"], c["change"]] for c in delta_api["changes"]
        ]
        assert [r[2:4] for r in rows[1:]] == [[C, "added"]]

        # the next day (in the report time zone): a full file again
        await store.pool.execute("UPDATE blocklist_drops SET full_on = full_on - 1")
        await dispatcher.upkeep()
        fulls = [n for n in blocklist_files(outbox) if n.startswith("blocklist-full-")]
        assert len(fulls) == 2
        assert [r[1] for r in read_checked(outbox, max(fulls))[1:]] == [A, B, C]


async def test_operators_that_do_not_collect_files_get_none(
    client: Client, tokens: Tokens, store: Store, settings: Settings
) -> None:
    dispatcher = Dispatcher(store, settings, build_adapter)
    async with lanes_of(dispatcher):
        await dispatcher.upkeep()
    assert await store.pool.fetchval("SELECT count(*) FROM blocklist_drops") == 0
