"""Pydantic models of cases, their money, fraud categories and the zone report."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.inputs import LINE, NONBLANK, TEXT, Day, Id, Instant, Integer
from service.models import BlockRequestSummary, Category, Code, HoldOut
from service.ports import TargetKind

MoneyKind = Literal["hold", "release", "refund"]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), LINE, NONBLANK]


class CategoryOut(BaseModel):
    """A fraud category."""

    code: str
    label: str
    created_at: datetime


class CategoryList(BaseModel):
    """Every fraud category."""

    items: list[CategoryOut]


class CategoryIn(BaseModel):
    """A new fraud category (admin)."""

    model_config = ConfigDict(extra="forbid")
    code: Category
    label: Annotated[str, StringConstraints(min_length=1, max_length=100), LINE, NONBLANK]


class FirIn(BaseModel):
    """A case's FIR details; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")
    police_station: Text | None = None
    fir_date: Day | None = None
    ncrp_ack: (
        Annotated[str, StringConstraints(min_length=1, max_length=64), LINE, NONBLANK] | None
    ) = Field(default=None, description="The NCRP (cybercrime.gov.in) acknowledgement number.")
    loss_paise: Integer | None = Field(
        default=None,
        ge=0,
        le=10**15,
        description="The complainant's loss, in paise (Rs 1 = 100 paise).",
    )


class MoneyIn(BaseModel):
    """A money entry: a hold (lien marked), release or refund, or the reversal of an entry."""

    model_config = ConfigDict(extra="forbid")
    kind: MoneyKind | None = Field(default=None, description="Not given for a reversal.")
    amount_paise: Integer | None = Field(
        default=None, gt=0, le=10**15, description="In paise (Rs 1 = 100 paise)."
    )
    bank: Text | None = None
    account_ref: (
        Annotated[str, StringConstraints(min_length=1, max_length=64), LINE, NONBLANK] | None
    ) = Field(default=None, description="Stored with every digit but the last four masked.")
    date: Day | None = Field(
        default=None, description="The day the bank acted (default: today, in the zone)."
    )
    note: Annotated[str, StringConstraints(max_length=2000), TEXT] | None = None
    reverses: Id | None = Field(
        default=None, gt=0, description="The entry this one takes back, whole."
    )

    @model_validator(mode="after")
    def _entry_or_reversal(self) -> MoneyIn:
        if self.reverses is None:
            missing = [f for f in ("kind", "amount_paise", "bank") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a money entry needs {', '.join(missing)}")
        elif self.kind or self.amount_paise or self.bank or self.account_ref:
            raise ValueError(
                "a reversal names only the entry it reverses (`reverses`), a date and a note"
            )
        return self


class MoneyEntryOut(BaseModel):
    """A stored money entry."""

    id: int
    kind: MoneyKind
    amount_paise: int
    amount: str = Field(description="The amount as the report writes it, e.g. 'Rs 68,34,619'.")
    bank: str
    account_ref: str | None
    date: dt.date
    note: str | None
    reverses: int | None
    reversed_by: int | None = None
    created_at: datetime


class MoneyTotals(BaseModel):
    """A case's money, net of reversals."""

    held_paise: int
    released_paise: int
    refunded_paise: int
    on_hold_paise: int = Field(description="Held and neither released nor refunded yet.")
    summary: str


class CaseTargetOut(BaseModel):
    """A target the case named, with its state now."""

    kind: TargetKind
    value: str
    state: str
    action: str
    state_changed_at: datetime
    held: bool = Field(description="This case still holds it blocked.")
    held_by: list[HoldOut] = Field(default_factory=list, description="Other cases holding it.")


class TimelineEvent(BaseModel):
    """One thing that happened to the case."""

    at: datetime
    event: str
    actor: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class CaseSummary(BaseModel):
    """A case in a list."""

    id: int
    unit: str
    case_ref: str
    category: str | None
    police_station: str | None
    fir_date: date | None
    ncrp_ack: str | None
    loss_paise: int | None
    requests: int | None = None
    money: MoneyTotals
    created_at: datetime
    updated_at: datetime


class CaseOut(CaseSummary):
    """A case: FIR details, its requests, targets, money and timeline."""

    block_requests: list[BlockRequestSummary]
    targets: list[CaseTargetOut]
    money_entries: list[MoneyEntryOut]
    timeline: list[TimelineEvent]


class CasePage(BaseModel):
    """A page of cases, newest first; pass `next_after` as `after`."""

    items: list[CaseSummary]
    next_after: int | None


class CaseQuery(BaseModel):
    """Filters for listing cases, which come newest first by the time they were opened (then
    by id)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    unit: Code | None = None
    category: Category | None = None
    case_ref: Annotated[str, StringConstraints(max_length=64), LINE] | None = Field(
        default=None, description="Case references starting so."
    )
    police_station: Annotated[str, StringConstraints(max_length=200), LINE] | None = Field(
        default=None, description="Part of the station's name."
    )
    created_from: Instant | None = Field(default=None, alias="from")
    created_to: Instant | None = Field(default=None, alias="to")
    on_hold: bool | None = Field(default=None, description="Only cases with money on hold.")
    limit: Integer = Field(default=50, ge=1, le=500)
    after: Id | None = Field(default=None, description="Cursor: the last id seen.")


class ZoneQuery(BaseModel):
    """The zone report's period: days in the zone's time zone, `to` exclusive."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: Day | None = Field(default=None, alias="from")
    end: Day | None = Field(default=None, alias="to")


class ZoneRow(BaseModel):
    """One unit's figures (or the districts' or the zone's)."""

    unit: str
    name: str
    kind: Literal["district", "zone", "districts", "total"]
    numbers_blocked: int
    phone_sets_blocked: int
    put_on_hold_paise: int
    released_paise: int
    refunded_paise: int
    still_on_hold_paise: int
    summary: str


class ZoneReport(BaseModel):
    """Per unit: numbers and phone sets blocked, money held and refunded; and totals."""

    model_config = ConfigDict(populate_by_name=True)
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    time_zone: str
    units: list[ZoneRow]
    districts: ZoneRow
    total: ZoneRow


SLA_GROUP_BY = r"^(operator|day|week|month)(,(operator|day|week|month))*$"


class SlaQuery(BaseModel):
    """The SLA report's period (days in the zone's time zone, `to` exclusive) and grouping."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: Day | None = Field(default=None, alias="from")
    end: Day | None = Field(default=None, alias="to")
    group_by: (
        Annotated[str, StringConstraints(pattern=r"^operator(,(day|week|month))?$")] | None
    ) = Field(default=None, description="operator (always), and one of day, week, month.")


class SlaRow(BaseModel):
    """One operator's acknowledgements against their deadlines (in one period)."""

    operator: str
    period: date | None = None
    due: int = Field(description="Orders answered, dead, or unanswered past their deadline.")
    acknowledged_in_time: int
    breached: int = Field(description="Answered late, dead, or still unanswered past due.")
    compliance_pct: float | None
    p50_ack_s: float | None
    p95_ack_s: float | None


class SlaReport(BaseModel):
    """Per operator: orders due, acknowledged within the deadline, breached, compliance."""

    model_config = ConfigDict(populate_by_name=True)
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    time_zone: str
    group_by: list[str]
    rows: list[SlaRow]
