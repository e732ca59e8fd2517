"""`fraudblock submit`: a list from a file, checked line by line, then filed in chunks that a
second run never files again."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook

from service.submit import submit
from tests.conftest import Tokens

Client = Any
GOOD = ["9811000001", "9811000002", "IMEI: 490154203237518", "+91 98110 00003", "9811000004"]


async def run(
    client: Client, tokens: Tokens, name: str, data: bytes, **extra: Any
) -> tuple[int, str]:
    out = io.StringIO()
    rc = await submit(
        url=str(client.make_url("")).rstrip("/"),
        token=tokens["investigator"]["Authorization"].removeprefix("Bearer "),
        name=name,
        data=data,
        case_ref="FIR-BULK/2026",
        category="investment",
        out=out,
        **extra,
    )
    return rc, out.getvalue()


async def requests_filed(client: Client, tokens: Tokens) -> list[int]:
    resp = await client.get("/v1/block-requests", headers=tokens["supervisor"])
    return [r["id"] for r in (await resp.json())["items"]]


async def test_bad_lines_are_all_reported_and_nothing_is_sent(
    client: Client, tokens: Tokens
) -> None:
    lines = [*GOOD[:2], "12345", GOOD[2], "IMEI: 490154203237519", *GOOD[3:]]
    rc, out = await run(client, tokens, "list.csv", "\n".join(lines).encode())
    assert rc == 2
    assert "line 3: '12345'" in out and "line 5: 'IMEI: 490154203237519'" in out
    assert "2 of 7 lines are not valid" in out
    assert await requests_filed(client, tokens) == []


async def test_a_list_goes_in_chunks_and_a_second_run_files_nothing_again(
    client: Client, tokens: Tokens
) -> None:
    data = "\n".join(GOOD).encode()
    rc, out = await run(client, tokens, "list.csv", data, chunk=2)
    assert rc == 0, out
    filed = await requests_filed(client, tokens)
    assert len(filed) == 3  # 5 targets in chunks of 2
    assert "queued: 5" in out
    rc, again = await run(client, tokens, "list.csv", data, chunk=2)  # say it was interrupted
    assert rc == 0 and "3 of them had been filed before" in again
    assert await requests_filed(client, tokens) == filed


async def test_an_excel_sheet_with_kind_and_value_columns(client: Client, tokens: Tokens) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["kind", "value"])
    sheet.append(["msisdn", "9811000009"])
    sheet.append(["imei", "35-209900-176148-1"])
    buf = io.BytesIO()
    book.save(buf)
    rc, out = await run(client, tokens, "list.xlsx", buf.getvalue())
    assert rc == 0, out
    [rid] = await requests_filed(client, tokens)
    doc = await (
        await client.get(f"/v1/block-requests/{rid}", headers=tokens["investigator"])
    ).json()
    assert {t["kind"] for t in doc["targets"]} == {"msisdn", "imei"}
