"""Every URL, directory and limit of the service, from environment and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.authority import Rank, parse_rank


def default_data_dir() -> Path:
    """Where the embedded Postgres keeps its data unless told otherwise."""
    return Path(platformdirs.user_data_dir("fraudblock"))


class Settings(BaseSettings):
    """Service configuration; environment variables are FRAUDBLOCK_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDBLOCK_", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "FRAUDBLOCK_DATABASE_URL"),
        description="Postgres URL; without it an embedded Postgres is started.",
    )
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_READ_URL", "FRAUDBLOCK_DATABASE_READ_URL"),
        description="A streaming replica for read-only endpoints (stats, reports, exports, "
        "audit, lists, target look-ups); the primary answers them while it is down or lagging.",
    )
    read_max_lag_s: float = Field(
        default=5.0, gt=0, description="A replica further behind than this is not read from."
    )
    read_check_interval_s: float = Field(
        default=2.0, gt=0, description="How often the replica's lag is checked."
    )
    data_dir: Path = Field(default_factory=default_data_dir, description="Embedded Postgres data.")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    reuse_port: bool = Field(
        default=False,
        description="Let several `serve` processes listen on one port (SO_REUSEPORT): the "
        "kernel spreads new connections among them, so the API uses more than one core.",
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    max_targets_per_request: int = Field(default=10_000, gt=0)
    bulk_request_targets: int = Field(
        default=1_000, gt=0, description="Requests this large are each filed alone."
    )
    concurrent_bulk_requests: int = Field(
        default=2, gt=0, description="Bulk requests filed at once (each holds tens of MB)."
    )
    intake_lanes: int = Field(
        default=2, gt=0, description="Intake transactions in flight; smaller requests share them."
    )
    intake_batch_targets: int = Field(
        default=1_000, gt=0, description="Targets filed together in one intake transaction."
    )
    default_region: str = "IN"
    approval_policy: Literal["none", "supervisor"] = "none"
    report_tz: str = Field(
        default="Asia/Kolkata",
        description="The zone's time zone (IANA name): counts and reports go by its days.",
    )
    console_session_s: float = Field(
        default=8 * 3600.0, gt=0, description="A console sign-in lasts this long."
    )
    console_secure_cookie: bool = Field(
        default=False, description="Mark the console's cookies Secure (serve over HTTPS)."
    )
    header_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A connection must send its first request's headers "
        "within this, or it is closed.",
    )
    body_read_timeout_s: float = Field(
        default=30.0, gt=0, description="A request's body must arrive within this (else 408)."
    )
    keepalive_timeout_s: float = Field(
        default=15.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        default=1_000, gt=0, description="Connections past this are closed at once."
    )
    ack_clock_skew_s: float = Field(
        default=300.0,
        ge=0,
        description="An ack's `at` may be this much earlier than the order's first send, or "
        "this much later than now.",
    )
    idempotency_window_s: float = Field(
        default=86_400.0, gt=0, description="Idempotency-Keys are kept (and replayed) this long."
    )
    direct_block_min_rank: Rank | None = Field(
        default=None,
        description="Orders of requests filed or approved by an officer of this rank or above "
        "say `instruction: block`; the others `reverify`. Unset: every block says `block`.",
    )
    linked_numbers_per_day: int = Field(
        default=20,
        gt=0,
        description="A handset seen with more distinct numbers than this in one day is flagged "
        "(a possible SIM box or cloned IMEI): blocking it needs a supervisor's approval.",
    )
    export_chunk_rows: int = Field(
        default=1000,
        gt=0,
        description="CSV exports read and send this many rows at a time (their memory bound).",
    )
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)

    grievance_deadline_s: float = Field(
        default=7 * 86_400.0, gt=0, description="Time the holding cases have to decide."
    )

    # dispatcher
    run_dispatcher: bool = True
    worker_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="`fraudblock worker` serves /metrics on this port (on `host`) when set.",
    )
    worker_id: str | None = None
    api_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="`fraudblock serve` also serves its own /metrics on this port (on `host`) "
        "when set: with several processes sharing the API's port, give each its own.",
    )
    poll_interval_s: float = Field(default=2.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)
    claim_batch: int = Field(default=500, gt=0)
    inline_retries: int = Field(default=3, ge=1)
    inline_retry_max_s: float = Field(default=5.0, gt=0)
    retry_base_s: float = Field(default=10.0, gt=0)
    retry_cap_s: float = Field(default=900.0, gt=0)
    urgent_retry_base_s: float = Field(
        default=2.0, gt=0, description="Backoff base of urgent orders (normal: retry_base_s)."
    )
    urgent_retry_cap_s: float = Field(
        default=120.0, gt=0, description="Longest backoff of urgent orders (normal: retry_cap_s)."
    )
    max_order_age_s: float = Field(
        default=259_200.0,
        gt=0,
        description="An order not final this long after its decision (or retry) is dead.",
    )
    shutdown_grace_s: float = Field(default=10.0, gt=0)
    escalation_max_attempts: int = Field(
        default=10, ge=1, description="An escalation not delivered after this many tries is dead."
    )
    escalation_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long an escalation endpoint may take to answer.",
    )
    escalation_batch: int = Field(
        default=20, gt=0, le=1000, description="Escalations a worker sends at once."
    )
    maintenance_interval_s: float = Field(default=5.0, gt=0)

    @field_validator("report_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

    @field_validator("direct_block_min_rank", mode="before")
    @classmethod
    def _rank_in_any_spelling(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_rank(value) if value.strip() else None
        return value
