"""What a tenant asks for when it creates a campaign: the JSON document ``ivr campaign create``
and the console accept, validated field by field.

Every error names the field (``pacing.calls_per_s: must be > 0``) so an operator fixing a spec
finds the line at once. The spec is stored with the campaign as it was accepted; a running
campaign keeps the flow version it was created with (like a call keeps its flow version).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Dispositions a retry rule can name: the engine's (engine/dispositions.py) plus what a campaign
# learns about an answered call (machine) and how it failed (network_error), and attempts cut
# short by an engine that died (interrupted).
RETRY_DISPOSITIONS = ("busy", "no_answer", "failed", "rejected", "machine", "network_error",
                      "interrupted", "answered")
AMD_CLASSES = ("human", "machine", "fax", "silence", "unknown")


class SpecError(ValueError):
    """A campaign spec that cannot be accepted; the message names every bad field, and
    ``problems`` holds them one by one (``("pacing.calls_per_s", "must be > 0")``) so a form
    can put each next to its field."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlowRef(_Strict):
    """A published flow of the tenant (``id``, optionally a ``version``; default the latest at
    create time), or a flow file that ``create`` publishes for the tenant first."""

    id: str | None = None
    version: int | None = Field(default=None, ge=1)
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> FlowRef:
        if (self.id is None) == (self.file is None):
            raise ValueError("give exactly one of 'id' (a published flow) or 'file'")
        return self


class ScheduleSpec(_Strict):
    """When the campaign may call, in the callee's local time (compliance.windows)."""

    start_at: datetime | None = None  # no dialling before (aware ISO time)
    end_at: datetime | None = None  # nothing dialled after; the campaign finishes then
    window_start: str = "09:00"
    window_end: str = "20:00"
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6])
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)  # make-up working days (Monday's hours)

    @field_validator("window_start", "window_end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"{v!r} is not HH:MM")
        return v

    @field_validator("weekdays")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        bad = [d for d in v if not 0 <= d <= 6]
        if bad:
            raise ValueError(f"{bad} outside 0 (Monday) .. 6 (Sunday)")
        return v

    @field_validator("start_at", "end_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-12-01T09:00:00+08:00")
        return v

    @model_validator(mode="after")
    def _order(self) -> ScheduleSpec:
        if self.window_start >= self.window_end:
            raise ValueError(f"window_start {self.window_start} is not before window_end "
                             f"{self.window_end}")
        return self


class PacingLimit(_Strict):
    calls_per_s: float | None = Field(default=None, gt=0, le=1000)
    max_concurrent: int | None = Field(default=None, ge=1, le=100_000)


class PacingSpec(_Strict):
    calls_per_s: float = Field(default=5.0, gt=0, le=1000)
    max_concurrent: int = Field(default=30, ge=1, le=100_000)
    per_trunk: dict[str, PacingLimit] = Field(default_factory=dict)
    per_caller_id: PacingLimit = Field(default_factory=PacingLimit)


class RetryRule(_Strict):
    """Retry after ``delay_s``, multiplied by ``backoff`` for every earlier retry of the same
    disposition, capped at ``max_delay_s``. ``max_attempts`` caps this disposition's retries
    (the campaign's ``retry.max_attempts`` caps all attempts of a contact)."""

    delay_s: float = Field(default=600.0, ge=0)
    backoff: float = Field(default=1.0, ge=1.0, le=10.0)
    max_delay_s: float = Field(default=86_400.0, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=50)


class RetrySpec(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=50)
    on: dict[str, RetryRule] = Field(default_factory=lambda: {
        "busy": RetryRule(delay_s=300), "no_answer": RetryRule(delay_s=1800),
        "network_error": RetryRule(delay_s=120, backoff=2.0),
        "machine": RetryRule(delay_s=7200)})

    @field_validator("on")
    @classmethod
    def _known(cls, v: dict[str, RetryRule]) -> dict[str, RetryRule]:
        bad = sorted(set(v) - set(RETRY_DISPOSITIONS))
        if bad:
            raise ValueError(f"{bad} are not dispositions ({', '.join(RETRY_DISPOSITIONS)})")
        return v


class AmdSpec(_Strict):
    """Answering-machine detection on every answered call before the flow starts; the flow
    reads ``amd`` (human, machine, fax, silence, unknown). The ``detect_machine`` flow node
    does the same inside a flow, with a port per class."""

    enabled: bool = False
    wait_for_beep: bool = False  # on machine: start the flow after the beep (leave a message)
    max_s: float = Field(default=5.0, gt=0.5, le=30)
    beep_timeout_s: float = Field(default=20.0, gt=0, le=120)
    hangup_on: list[str] = Field(default_factory=list)  # classes not handed to the flow

    @field_validator("hangup_on")
    @classmethod
    def _classes(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in AMD_CLASSES]
        if bad:
            raise ValueError(f"{bad} are not AMD classes ({', '.join(AMD_CLASSES)})")
        return v


class CallerIdSpec(_Strict):
    """Which number (and name) the callee sees."""

    numbers: list[str] = Field(default_factory=list)  # the pool; empty: from_user below
    rotation: Literal["round_robin", "random", "least_used"] = "round_robin"
    local_presence: bool = False  # prefer a pool number from the callee's area
    daily_cap_per_number: int | None = Field(default=None, ge=1)
    display_name: str | None = Field(default=None, max_length=64)
    p_asserted_identity: bool = True  # send P-Asserted-Identity with the pool number
    privacy: Literal["none", "id", "user", "header"] = "none"  # RFC 3323/3325 Privacy
    from_user: str = "ivr"  # the From user part when the pool is empty


class BrandingSpec(_Strict):
    """Branded caller ID: a signed PASSporT with Rich Call Data (RFC 9795) in an Identity
    header and Call-Info (RFC 9796). Keys come from ``[campaigns.branding]``."""

    enabled: bool = False
    name: str | None = Field(default=None, max_length=64)  # rcd "nam" (default: display name)
    logo_url: str | None = None  # rcd "icn"
    logo_file: str | None = None  # the logo's bytes for the rcdi digest (default: none)
    call_reason: str | None = Field(default=None, max_length=64)  # rcd "crn"


class ContactsSpec(_Strict):
    """How the contact file's columns become flow variables: variable -> header spellings
    (the variable name itself always counts). The number column is found by the usual
    spellings (号码, 手机号, phone ...)."""

    variables: dict[str, list[str]] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)  # variables a row must have
    region: str | None = None  # numbers without +country (default: compliance.default_region)

    @field_validator("variables")
    @classmethod
    def _names(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in v:
            if not VARIABLE_NAME.match(name) or name in ("number", "priority"):
                raise ValueError(f"{name!r} is not a usable variable name")
        return v


class CampaignSpec(_Strict):
    id: str | None = None  # default: generated
    name: str = Field(min_length=1, max_length=128)
    tenant: str = Field(default="default", min_length=1, max_length=64)
    flow: FlowRef
    purpose: str = Field(default="notification", min_length=1, max_length=32)  # for caps
    priority: int = Field(default=0, ge=-100, le=100)
    test_mode: bool = False  # dial whitelisted numbers only
    trunk: str | None = None  # a [[campaigns.trunks]] name (default: the first one)
    ring_timeout_s: float = Field(default=30.0, gt=0, le=300)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    pacing: PacingSpec = Field(default_factory=PacingSpec)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    amd: AmdSpec = Field(default_factory=AmdSpec)
    caller_id: CallerIdSpec = Field(default_factory=CallerIdSpec)
    branding: BrandingSpec = Field(default_factory=BrandingSpec)
    contacts: ContactsSpec = Field(default_factory=ContactsSpec)
    texts: list[str] = Field(default_factory=list)  # extra TTS texts, screened before start
    sms_templates: list[str] = Field(default_factory=list)  # template ids, screened too
    variables: dict[str, Any] = Field(default_factory=dict)  # campaign-wide flow variables

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not CAMPAIGN_ID.match(v):
            raise ValueError("1-64 characters of A-Z a-z 0-9 _ . - (no ':')")
        return v

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        if ":" in v:
            raise ValueError("cannot contain ':'")
        return v


def parse_spec(data: Any) -> CampaignSpec:
    """``data`` (a parsed JSON object) as a spec, or :class:`SpecError` naming every field."""
    if not isinstance(data, dict):
        raise SpecError("the spec must be a JSON object")
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as e:
        problems = [(".".join(str(p) for p in err["loc"]), err["msg"]) for err in e.errors()]
        raise SpecError("; ".join(f"{loc or 'spec'}: {msg}" for loc, msg in problems),
                        problems) from e
