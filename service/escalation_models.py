"""Pydantic models of escalations: the endpoints an admin subscribes and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from service.inputs import LINE, STRIPPED, Id, Integer, hidden_character

EventType = Literal[
    "order.overdue",
    "order.dead",
    "alert.sim_in_blocked_handset",
    "reconciliation.mismatch",
    "grievance.overdue",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
DeliveryStatus = Literal["queued", "in_flight", "delivered", "dead", "cancelled"]
REDACTED_SECRET = "whsec_<redacted>"


class EndpointIn(BaseModel):
    """Subscribe a URL to some event types."""

    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl = Field(description="Where events are POSTed (http or https).")
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: Annotated[str, StringConstraints(max_length=500), LINE, STRIPPED] = ""

    @field_validator("url", mode="before")
    @classmethod
    def _plain_url(cls, value: object) -> object:
        if isinstance(value, str):
            if len(value) > 2000:
                raise ValueError("must be at most 2000 characters")
            found = hidden_character(value, allow_newlines=False)
            if found:
                raise ValueError(f"must not contain a {found}")
        return value

    @field_validator("url")
    @classmethod
    def _short_enough(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if len(str(value)) > 2000:  # international names and escapes lengthen it
            raise ValueError("must be at most 2000 characters once encoded")
        return value

    @field_validator("event_types")
    @classmethod
    def _distinct(cls, value: list[EventType]) -> list[EventType]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat an event type")
        return value


class EndpointOut(BaseModel):
    """An endpoint; its secret is shown only in the answer that created it."""

    id: int
    url: str
    event_types: list[EventType]
    description: str
    active: bool
    secret: str = Field(
        default=REDACTED_SECRET,
        description="The `whsec_` signing secret: shown once, when the endpoint is created.",
    )
    created_at: datetime
    disabled_at: datetime | None = None
    pending: int = Field(default=0, description="Deliveries queued or being sent.")
    delivered: int = 0
    dead: int = Field(default=0, description="Deliveries given up after the last attempt.")
    last_error: str | None = Field(default=None, description="The latest delivery error.")


class EndpointList(BaseModel):
    """Every endpoint, newest first."""

    items: list[EndpointOut]


class DeliveryQuery(BaseModel):
    """Filters for an endpoint's deliveries."""

    model_config = ConfigDict(extra="forbid")
    status: DeliveryStatus | None = None
    before: Id | None = Field(default=None, description="Deliveries older than this id.")
    limit: Integer = Field(default=100, ge=1, le=1000)


class DeliveryOut(BaseModel):
    """One event's delivery to one endpoint."""

    id: int
    webhook_id: str = Field(description="The `webhook-id` it is sent with, on every attempt.")
    event_id: int
    type: EventType
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(
        default=None, description="When it is tried again (queued ones)."
    )
    last_error: str | None = None
    last_http_status: int | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    dead_at: datetime | None = None


class DeliveryPage(BaseModel):
    """An endpoint's deliveries, newest first; pass `next_before` as `before`."""

    items: list[DeliveryOut]
    next_before: int | None = None
