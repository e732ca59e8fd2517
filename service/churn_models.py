"""Pydantic models of number churn reported by operators."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.churn import ChurnEvent
from service.inputs import LINE, Instant


class ChurnEventIn(BaseModel):
    """A number re-allocated to a new subscriber, or permanently disconnected."""

    model_config = ConfigDict(extra="forbid")
    msisdn: Annotated[str, StringConstraints(min_length=1, max_length=64), LINE]
    event: ChurnEvent
    at: Instant = Field(description="When it happened, with its UTC offset.")


class ChurnIn(BaseModel):
    """A batch of 1-10,000 churn events."""

    model_config = ConfigDict(extra="forbid")
    events: list[ChurnEventIn] = Field(min_length=1, max_length=10_000)


class ChurnResultOut(BaseModel):
    """What became of one event: `retired`, `not_found` (no request named the number; its
    learned route is forgotten all the same), `duplicate` or `invalid`."""

    index: int
    result: Literal["retired", "not_found", "duplicate", "invalid"]
    value: str | None = None
    reason: str | None = None


class ChurnOut(BaseModel):
    """One result per event, in order."""

    results: list[ChurnResultOut]
    retired: int
