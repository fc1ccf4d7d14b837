"""Request and response models of the words, lists and voiceprints API
(:mod:`console.api.compliance`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from console.api.schemas import In, Out, TenantQuery


class WordScopeQuery(TenantQuery):
    global_: bool = Field(False, alias="global", description="the operator's global list")


class WordQuery(WordScopeQuery):
    q: str | None = Field(None, max_length=256)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


PinyinChoice = Literal["off", "auto", "spelled", "homophone"]


class WordOut(Out):
    id: int | None = None
    term: str
    category: str
    severity: int
    action: str
    tenant: str | None
    pinyin: PinyinChoice | None = Field(description="how pinyin spellings match; null: the "
                                        "category's mode")
    allow: bool
    initials: bool = False


class WordPageOut(Out):
    items: list[WordOut]
    next_cursor: str | None


WordCategory = Literal["politics", "porn", "violence", "fraud", "abuse", "competitor", "custom"]


class WordIn(In):
    term: str = Field(min_length=1, max_length=256)
    category: WordCategory = "custom"
    severity: int = Field(3, ge=1, le=5)
    action: Literal["block", "mask", "flag"] = "block"
    pinyin: PinyinChoice | None = Field(None, description="null: the category's mode")
    allow: bool = False
    initials: bool = Field(False, description="also match the first letters (sb for 傻逼)")
    global_: bool = Field(False, alias="global")


class WordRemoveQuery(WordScopeQuery):
    term: str = Field(min_length=1, max_length=256)


class TableQuery(In):
    encoding: str | None = Field(None, max_length=32, description="the file's encoding (else "
                                 "detected: BOM, UTF-8, GB18030, Big5, cp1252)")
    sheet: str | None = Field(None, max_length=128, description=".xlsx: the sheet to read")


class WordImportQuery(WordScopeQuery, TableQuery):
    format: Literal["auto", "csv", "txt"] = "auto"
    category: WordCategory = "custom"
    severity: int = Field(3, ge=1, le=5)
    action: Literal["block", "mask", "flag"] = "block"
    pinyin: PinyinChoice | None = None


class RowErrorOut(Out):
    line: int = Field(description="line in the file (0: not known)")
    column: str = Field("", description="the column as the file names it")
    value: str = ""
    message: str


class ImportOut(Out):
    imported: int
    rows: int = Field(0, description="data rows read")
    error_count: int = Field(0, description="every bad row (errors lists the first ones)")
    errors: list[RowErrorOut]


class WordTestIn(In):
    text: str = Field(min_length=1, max_length=10_000)


class HitOut(Out):
    start: int
    end: int
    term: str
    matched: str
    category: str
    severity: int
    action: str
    via_pinyin: bool


class WordTestOut(Out):
    blocked: bool
    masked_text: str
    hits: list[HitOut]


class ListScopeQuery(TenantQuery):
    global_: bool = Field(False, alias="global")
    campaign: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ListQueryIn(ListScopeQuery):
    kind: Literal["black", "white"] | None = None
    q: str | None = Field(None, max_length=32)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class ListEntryOut(Out):
    id: int | None = None
    kind: str
    number: str = Field(description="+E.164, or '+86168*' for a prefix")
    is_prefix: bool
    scope: str
    tenant: str | None
    campaign: str | None
    reason: str
    source: str
    expires: datetime | None


class ListPageOut(Out):
    items: list[ListEntryOut]
    next_cursor: str | None


class ListAddIn(In):
    number: str = Field(min_length=1, max_length=64,
                        description="a number, '+86168*' prefix or 'LOW..HIGH' range")
    kind: Literal["black", "white"] = "black"
    global_: bool = Field(False, alias="global")
    campaign: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    reason: Literal["complaint", "opt-out", "regulator", "test", "vip", "premium",
                    "other"] = "other"
    source: str = Field("console", max_length=128)
    expires: datetime | None = None


class ListEntriesOut(Out):
    items: list[ListEntryOut]


class ListRemoveQuery(ListScopeQuery):
    number: str = Field(min_length=1, max_length=64)
    kind: Literal["black", "white"] = "black"


class RemovedOut(Out):
    removed: int


class ListImportQuery(ListScopeQuery, TableQuery):
    kind: Literal["black", "white"] = "black"
    reason: Literal["complaint", "opt-out", "regulator", "test", "vip", "premium",
                    "other"] = "other"
    source: str = Field("console-import", max_length=128)


class CheckIn(In):
    number: str = Field(min_length=1, max_length=64)
    purpose: str = Field("marketing", min_length=1, max_length=32)
    campaign: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    at: datetime | None = Field(None, description="ISO time with offset; default now")


class ReasonOut(Out):
    code: str
    message: str


class DecisionOut(Out):
    allowed: bool
    number: str | None
    vip: bool
    retry_at: datetime | None
    reasons: list[ReasonOut]


class VoiceprintQuery(TenantQuery):
    q: str | None = Field(None, max_length=128)
    after: str = Field("", max_length=128, description="the last person_id of the last page")
    limit: int = Field(100, ge=1, le=500)


class VoiceprintOut(Out):
    person_id: str
    backend: str
    n_utterances: int
    speech_s: float
    created_at: float
    updated_at: float
    consent_given_at: float | None


class VoiceprintList(Out):
    items: list[VoiceprintOut]


class VoiceprintAccessOut(Out):
    person_id: str
    action: str
    actor: str
    outcome: str
    at: float


class VoiceprintAccessList(Out):
    items: list[VoiceprintAccessOut]
