"""Drop each batch as a CSV file plus a `sha256sum` checksum into an operator's outbox."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.ports import (
    Accepted,
    BlocklistFile,
    DeliveryResult,
    OutboundOrder,
    TransientFailure,
)

log = structlog.get_logger()

CSV_HEADER = (
    "order_id",
    "action",
    "kind",
    "value",
    "urgent",
    "attempt",
    "operator",
    "created_at",
    "seq",
    "instruction",
    "request_id",
    "unit",
    "case_ref",
    "category",
    "legal_basis",
    "officer_name",
    "officer_rank",
    "reason",
)

BLOCKLIST_FULL_HEADER = ("kind", "value")
BLOCKLIST_DELTA_HEADER = ("seq", "kind", "value", "change", "at")
CURSOR_DIGITS = 12  # cursors zero-padded in file names, so the names sort in cursor order


class FileDropConfig(BaseModel):
    """Settings of an operator that collects files from a directory (often a mounted share)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outbox: Path
    max_batch: int = Field(default=500, ge=1, le=100_000)
    group_readable: bool = Field(
        default=False,
        description="Files 0640 and the outbox 0750 (for a collector in the group); "
        "otherwise files 0600 and the outbox 0700.",
    )

    @property
    def file_mode(self) -> int:
        """The mode of every file written: lists of numbers and handsets, owner only."""
        return 0o640 if self.group_readable else 0o600

    @property
    def dir_mode(self) -> int:
        """The most the outbox may grant: nobody outside the owner (and group, if asked)."""
        return 0o750 if self.group_readable else 0o700

    @field_validator("outbox")
    @classmethod
    def _outbox_is_absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("outbox must be an absolute directory path")
        return value


def render_csv(orders: Sequence[OutboundOrder], created_at: datetime) -> bytes:
    """Return the batch as CSV bytes (RFC 4180, UTF-8, header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    stamp = created_at.isoformat()
    writer.writerows(
        (
            o.order_id,
            o.action,
            o.kind,
            o.value,
            "true" if o.urgent else "false",
            o.attempt,
            o.operator,
            stamp,
            o.seq,
            o.told,
            o.request_id,
            o.unit,
            o.case_ref,
            o.category,
            o.legal_basis or "",
            o.officer_name or "",
            o.officer_rank or "",
            o.reason or "",
        )
        for o in orders
    )
    return buffer.getvalue().encode("utf-8")


def batch_file_name(first_order_id: int, created_at: datetime) -> str:
    """Return a unique, sortable file name for a batch."""
    stamp = created_at.strftime("%Y%m%dT%H%M%S%fZ")
    return f"orders-{stamp}-{first_order_id}-{uuid.uuid4().hex[:8]}.csv"


def render_blocklist(file: BlocklistFile) -> bytes:
    """Return a blocklist file as CSV bytes: `kind,value` rows for a full list, one row per
    change (`seq,kind,value,change,at`) for a delta."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if file.full:
        writer.writerow(BLOCKLIST_FULL_HEADER)
        writer.writerows((line.kind, line.value) for line in file.lines)
    else:
        writer.writerow(BLOCKLIST_DELTA_HEADER)
        writer.writerows(
            (line.seq, line.kind, line.value, line.change, line.at.isoformat() if line.at else "")
            for line in file.lines
        )
    return buffer.getvalue().encode("utf-8")


def blocklist_file_name(file: BlocklistFile) -> str:
    """`blocklist-full-<day>-<cursor>.csv` or `blocklist-delta-<since>-<cursor>.csv`."""
    cursor = f"{file.cursor:0{CURSOR_DIGITS}d}"
    if file.full:
        return f"blocklist-full-{file.day}-{cursor}.csv"
    return f"blocklist-delta-{file.since or 0:0{CURSOR_DIGITS}d}-{cursor}.csv"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(directory: Path, name: str, data: bytes, mode: int = 0o600) -> None:
    """Write `name` so readers see either nothing or the whole file, and make it durable."""
    temporary = directory / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _fsync_directory(directory)


def restrict_directory(directory: Path, most: int) -> None:
    """Take away what the outbox grants beyond `most` (0700 or 0750): it holds lists of
    suspects' numbers and handsets. A directory we may not change is reported, not fatal."""
    mode = directory.stat().st_mode & 0o777
    if mode & ~most:
        try:
            directory.chmod(mode & most)
        except PermissionError:
            log.warning("file_drop.outbox_too_open", outbox=str(directory), mode=oct(mode))


def drop_batch(
    directory: Path, name: str, data: bytes, file_mode: int = 0o600, dir_mode: int = 0o700
) -> None:
    """Write the CSV, then its checksum file; the checksum's arrival marks the CSV complete."""
    if not directory.is_dir():
        raise FileNotFoundError(2, "outbox directory is missing (share not mounted?)", directory)
    restrict_directory(directory, dir_mode)
    write_atomically(directory, name, data, file_mode)
    checksum = f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()
    try:
        write_atomically(directory, f"{name}.sha256", checksum, file_mode)
    except BaseException:
        # Without its checksum the CSV would never be collected; remove it so a retry is clean.
        with contextlib.suppress(OSError):
            (directory / name).unlink()
        raise


class FileDropAdapter:
    """Delivers each batch as one CSV file in the operator's outbox directory."""

    kind: ClassVar[str] = "file_drop"

    def __init__(self, operator_code: str, config: FileDropConfig) -> None:
        self.operator_code = operator_code
        self.config = config
        self.max_batch = config.max_batch
        self.pushes = True

    async def send(self, orders: Sequence[OutboundOrder]) -> list[DeliveryResult]:
        """Write the batch once; one result per order."""
        if len(orders) > self.max_batch:
            raise ValueError(f"batch of {len(orders)} exceeds max_batch {self.max_batch}")
        if not orders:
            return []
        created_at = datetime.now(UTC)
        name = batch_file_name(orders[0].order_id, created_at)
        data = render_csv(orders, created_at)
        try:
            c = self.config
            await asyncio.to_thread(drop_batch, c.outbox, name, data, c.file_mode, c.dir_mode)
        except OSError as exc:
            error = f"cannot write to outbox {self.config.outbox}: {exc.strerror or exc}"
            log.warning("file_drop.write_failed", operator=self.operator_code, error=error)
            return [TransientFailure(o.order_id, error) for o in orders]
        return [Accepted(o.order_id, operator_ref=name) for o in orders]

    async def publish_blocklist(self, file: BlocklistFile) -> str:
        """Write a full or delta blocklist file with its checksum, like a batch; its name.
        OSError (the outbox is missing or full) reaches the caller, which tries again later."""
        name = blocklist_file_name(file)
        c = self.config
        await asyncio.to_thread(
            drop_batch, c.outbox, name, render_blocklist(file), c.file_mode, c.dir_mode
        )
        return name

    async def close(self) -> None:
        """Nothing to release: files are closed after every batch."""
