"""The JSON test-case language: models, strict loading and strict comparison.

A case file is ``{"flow": "...", "subflows": [...], "cases": [...]}``. Loading is strict but
local: a problem in the file itself (not UTF-8, not JSON, no ``cases``) is a :class:`SuiteError`;
a problem in one case (two actions in a step, a bad regular expression, a mock outcome that does
not exist, a misspelled end status) makes that case an :class:`InvalidCase`, reported as failed
with every error listed, while the other cases still run. The runner is :mod:`flows.testcases`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flows.document import load_flow_file
from flows.jsondoc import JsonError, parse_json
from flows.problems import FlowInvalid
from flows.services import SPEAKER_OUTCOMES

END_STATUSES = ("hangup", "transferred", "returned", "caller_hangup", "error", "loop_guard")
EndStatus = Literal["hangup", "transferred", "returned", "caller_hangup", "error", "loop_guard"]
SpeakerOutcome = Literal["match", "no_match", "not_enrolled", "insufficient_audio", "error"]
EnrollOutcome = Literal["enrolled", "insufficient_audio", "error"]
MAX_CASE_FILE_BYTES = 5_000_000
assert set(SpeakerOutcome.__args__) == set(SPEAKER_OUTCOMES)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariableExpectation(_Strict):
    """Exactly one check: ``equals`` (type-strict: 1 is not true, "1" is not 1), ``contains``
    (substring of the value's text) or ``exists``."""

    name: str
    equals: Any = None
    contains: str | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_check(self) -> VariableExpectation:
        given = [k for k in ("equals", "contains", "exists") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                f"expect_variable needs exactly one of equals, contains, exists; got "
                f"{given or 'none'}"
            )
        return self


def prompt_pattern(pattern: str) -> re.Pattern[str] | None:
    """``/regex/`` -> the compiled regex (case-insensitive); plain text -> None."""
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        return re.compile(pattern[1:-1], re.IGNORECASE)
    return None


class Step(_Strict):
    """Exactly one action per step."""

    send_dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]+$")
    say: str | None = Field(default=None, max_length=10_000)
    silence: bool | None = Field(default=None, description="Caller says nothing (no input).")
    wait: float | None = Field(default=None, ge=0, le=3600, description="Seconds of clock time.")
    hangup: bool | None = None
    expect_prompt: str | None = Field(default=None, description="Substring or /regex/.")
    expect_node: str | None = None
    expect_variable: VariableExpectation | None = None
    expect_sms: str | None = None
    expect_transfer: str | None = None
    expect_end: EndStatus | None = Field(default=None, description=", ".join(END_STATUSES))

    @model_validator(mode="after")
    def _one(self) -> Step:
        set_fields = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_fields) != 1:
            raise ValueError(f"a step needs exactly one action, got {set_fields or 'none'}")
        return self

    @field_validator("expect_prompt")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                prompt_pattern(v)
            except re.error as e:
                raise ValueError(f"bad regular expression {v!r}: {e}") from e
        return v

    @property
    def action(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def is_input(self) -> bool:
        return self.action in ("send_dtmf", "say", "silence", "hangup")


class HttpMock(_Strict):
    status: int = Field(default=200, ge=100, le=599)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    hang: bool = False
    error: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> HttpMock:
        if self.body is not None and "json_body" in self.model_fields_set:
            raise ValueError("a webhook mock has 'json' or 'body', not both")
        return self


class Mocks(_Strict):
    http: dict[str, HttpMock] = Field(
        default_factory=dict, description="URL prefix -> reply ('*' matches every URL)."
    )
    lists: dict[str, bool] = Field(default_factory=dict, description="number -> allowed")
    verify_speaker: SpeakerOutcome = "match"
    enroll_speaker: EnrollOutcome = "enrolled"
    failing_transfers: list[str] = Field(default_factory=list)
    failing_sms: list[str] = Field(default_factory=list)


class TestCase(_Strict):
    __test__ = False  # not a pytest class

    name: str = Field(min_length=1, max_length=200)
    caller: str = "+15550100"
    callee: str = "+15550199"
    variables: dict[str, Any] = Field(default_factory=dict)
    campaign: dict[str, Any] = Field(default_factory=dict)
    identity: dict[str, str] = Field(
        default_factory=dict,
        description="What the flow reads as identity (verstat, name, call_reason ...): the "
        "caller's verified branded caller ID.")
    mocks: Mocks = Field(default_factory=Mocks)
    steps: list[Step] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class InvalidCase:
    """A case that failed to load: reported as failed with its errors, never run."""

    name: str
    errors: tuple[str, ...]


class _SuiteShell(_Strict):
    flow: str | None = Field(default=None, description="Flow file, relative to the case file.")
    subflows: list[str] = Field(default_factory=list, description="Flow files for subflows.")
    cases: list[Any] = Field(min_length=1)


@dataclass(slots=True)
class TestSuite:
    __test__ = False  # not a pytest class

    cases: list[TestCase | InvalidCase]
    flow: str | None = None
    subflows: list[str] = field(default_factory=list)
    base: Path = Path()

    @property
    def flow_path(self) -> Path | None:
        return (self.base / self.flow) if self.flow else None


class SuiteError(ValueError):
    """The case file as a whole cannot be used (a usage error, not a failing case)."""


def _errors(e: ValidationError, prefix: str = "") -> tuple[str, ...]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        out.append(f"{prefix}{loc}: {err['msg'].removeprefix('Value error, ')}")
    return tuple(out)


def parse_suite(data: Any, base: Path = Path()) -> TestSuite:
    try:
        shell = _SuiteShell.model_validate(data)
    except ValidationError as e:
        raise SuiteError("; ".join(_errors(e))) from e
    cases: list[TestCase | InvalidCase] = []
    for i, raw in enumerate(shell.cases):
        try:
            cases.append(TestCase.model_validate(raw))
        except ValidationError as e:
            name = raw.get("name") if isinstance(raw, dict) else None
            cases.append(
                InvalidCase(name if isinstance(name, str) else f"case {i + 1}", _errors(e))
            )
    return TestSuite(cases, shell.flow, shell.subflows, base)


def load_suite(path: Path) -> TestSuite:
    """Read a case file; :class:`SuiteError` if the file itself is unusable."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CASE_FILE_BYTES + 1)
    except OSError as e:
        raise SuiteError(f"cannot read the case file: {e}") from e
    if len(raw) > MAX_CASE_FILE_BYTES:
        raise SuiteError(f"a case file is at most {MAX_CASE_FILE_BYTES} bytes")
    try:
        data = parse_json(raw)
    except JsonError as e:
        raise SuiteError(str(e)) from e
    return parse_suite(data, path.parent)


def load_subflows(suite: TestSuite) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The suite's subflow files by flow id, and a message per file that could not be used."""
    out: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for rel in suite.subflows:
        try:
            doc = load_flow_file(suite.base / rel)
        except FlowInvalid as e:
            problems.append(f"subflows: {rel}: {e.problems[0].message}")
            continue
        fid = doc.get("id")
        if not isinstance(fid, str):
            problems.append(f"subflows: {rel}: the flow has no id")
            continue
        out[fid] = doc
    return out, problems


_SCALARS: tuple[type, ...] = (bool, str, type(None))


def strict_equal(actual: Any, expected: Any) -> bool:
    """JSON equality without Python's coercions: true is not 1, "1" is not 1; 1 equals 1.0."""
    stack = [(actual, expected)]
    while stack:
        a, b = stack.pop()
        if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, _SCALARS):
            if type(a) is not type(b) or a != b:
                return False
        elif isinstance(a, int | float):
            if not isinstance(b, int | float) or a != b:
                return False
        elif isinstance(a, list | tuple):
            if not isinstance(b, list) or len(a) != len(b):
                return False
            stack.extend(zip(a, b, strict=True))
        elif isinstance(a, dict):
            if not isinstance(b, dict) or a.keys() != b.keys():
                return False
            stack.extend((a[k], b[k]) for k in a)
        elif a != b:
            return False
    return True
