"""Pydantic models of handset <-> SIM linkage: sightings, linked identifiers, alerts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.inputs import LINE, Id, Instant, Integer
from service.models import TargetState
from service.ports import TargetKind

AlertKind = Literal["sim_in_blocked_handset", "handset_flagged"]


class SightingIn(BaseModel):
    """A number seen in a handset on the operator's network."""

    model_config = ConfigDict(extra="forbid")
    imei: Annotated[str, StringConstraints(min_length=1, max_length=64), LINE]
    msisdn: Annotated[str, StringConstraints(min_length=1, max_length=64), LINE]
    seen_at: Instant = Field(description="When, with its UTC offset.")


class SightingsIn(BaseModel):
    """A batch of 1-1,000 sightings; each item is judged on its own."""

    model_config = ConfigDict(extra="forbid")
    sightings: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class SightingResultOut(BaseModel):
    """What became of one sighting."""

    index: int
    result: Literal["applied", "duplicate", "invalid"]
    reason: str | None = None
    alert_id: int | None = Field(
        default=None, description="The alert it raised: a new number in a blocked handset."
    )


class SightingsOut(BaseModel):
    """One result per submitted sighting, in order, and the handsets flagged by the batch."""

    results: list[SightingResultOut]
    applied: int
    flagged: list[str] = Field(
        description="Handsets now flagged as a possible SIM box or cloned IMEI."
    )


class LinkedOut(BaseModel):
    """An identifier seen with the one looked up, at one operator."""

    kind: TargetKind
    value: str
    operator: str
    first_seen: datetime
    last_seen: datetime
    sightings: int
    state: TargetState | None = Field(description="Its state, where a request named it.")
    flagged: bool = Field(default=False, description="A handset flagged as a possible SIM box.")


class FlagOut(BaseModel):
    """Why a handset is flagged: the day it was seen with too many numbers."""

    day: date
    numbers: int
    flagged_at: datetime


class LinkedList(BaseModel):
    """The numbers seen in a handset, or the handsets a number was used in."""

    kind: TargetKind
    value: str
    flagged: FlagOut | None = Field(
        default=None, description="For a handset: flagged as a possible SIM box or cloned IMEI."
    )
    linked: list[LinkedOut]


class AlertOut(BaseModel):
    """Something a supervisor should look at."""

    id: int
    kind: AlertKind
    imei: str
    msisdn: str | None
    operator: str | None
    seen_at: datetime | None
    details: dict[str, Any]
    created_at: datetime


class AlertPage(BaseModel):
    """Alerts, oldest first; pass `next_after` as `after` for the next page."""

    items: list[AlertOut]
    next_after: int | None


class AlertQuery(BaseModel):
    """Filters for listing alerts."""

    model_config = ConfigDict(extra="forbid")
    kind: AlertKind | None = None
    after: Id | None = Field(default=None, description="Cursor: the last id seen.")
    limit: Integer = Field(default=100, ge=1, le=1000)
