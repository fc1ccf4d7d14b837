"""Nodes that wait for the caller: menu, collect_digits, listen, record.

Each keeps its own retry loop (re-prompt on no-input / no-match, FreeSWITCH ``max-failures``
style) so a menu needs no graph cycle for ordinary retries; when retries run out it takes the
``no_input`` / ``no_match`` / ``invalid`` port. Timeouts are the Call's (driven by the injected
clock on the simulator); a hang-up surfaces as ``CallHungUp`` and ends the run.

Speech follows VoiceXML's ``noinput``/``nomatch`` semantics: silence and speech the grammar does
not cover are counted apart; the nth no-match plays the nth of ``no_match_prompts`` (the last
one repeats: "Sorry?" -> "Please say billing or sales" -> "You can also press 1 or 2"), and
``max_no_match``/``max_no_input`` end the node on that port before ``max_retries`` when set.
A node ``language`` overrides the flow's; ``auto`` detects Mandarin or English on the caller's
turn and the flow continues in the detected language (prompts included).
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from core.call import CallHungUp, DigitSpec, ListenResult, ListenSpec, PlayResult
from flows.context import NodeError, RunContext
from flows.model import LANGUAGE_PATTERN, PORT_PATTERN, Strict
from flows.nodes.base import BargeMode, NodeType, Prompt, play_prompt, register
from flows.services import call_service

DTMF_KEYS = set("0123456789*#ABCD")
VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_PHRASES = 100  # keywords per option/intent: every caller turn matches against all of them
MAX_PHRASE_CHARS = 100
MAX_INTENTS = 50


def _check_phrases(where: str, phrases: list[str]) -> None:
    if len(phrases) > MAX_PHRASES:
        raise ValueError(f"{where}: at most {MAX_PHRASES} keywords, got {len(phrases)}")
    long = next((p for p in phrases if len(p) > MAX_PHRASE_CHARS), None)
    if long is not None:
        raise ValueError(f"{where}: keyword {long[:20]!r}... is longer than {MAX_PHRASE_CHARS}")


def _turn_latency(ctx: RunContext, result: ListenResult) -> None:
    t = result.timings
    if "speech_end" in t and "final" in t:
        ctx.turn_latency_ms = (t["final"] - t["speech_end"]) * 1000.0


async def _barge_digit(ctx: RunContext, res: PlayResult | None, timeout_s: float) -> str | None:
    """The key that interrupted the prompt. The Call keeps it buffered for the next collect
    (``PlayResult.digit`` is informational), so it is taken by collecting exactly one digit."""
    if res is None or res.interrupted_by != "dtmf":
        return None
    dr = await ctx.call.collect_digits(
        DigitSpec(min_digits=1, max_digits=1, terminator=None, first_digit_timeout_s=timeout_s)
    )
    _raise_if_gone(dr.reason)
    return dr.digits[:1] or None


async def match_intent(ctx: RunContext, text: str, intents: dict[str, list[str]]) -> str | None:
    """The matcher may segment Chinese (its dictionary loads in about a second on first use),
    so it runs in a worker thread, never on the event loop."""
    try:
        port = await call_service(ctx.services.intents.match, text, intents)
    except Exception as e:  # a broken matcher takes the error port like any service
        raise NodeError(f"intent matching failed: {type(e).__name__}: {e}") from e
    return None if port is None else str(port)


def _raise_if_gone(status: str) -> None:
    if status == "hangup":
        raise CallHungUp("normal", "caller")


DETECTED_LANGUAGE = {"zh": "zh-CN", "en": "en-US"}


def _listen_language(ctx: RunContext, node_language: str | None) -> str:
    return node_language or ctx.language


def _adopt_language(ctx: RunContext, node_id: str, lr: ListenResult) -> None:
    """After a turn listened with ``auto``: the call goes on in the language the caller spoke."""
    if ctx.language == "auto" and lr.language in DETECTED_LANGUAGE:
        ctx.language = DETECTED_LANGUAGE[lr.language]
        ctx.call.trace.add("flow.language", node_id=node_id, language=ctx.language)


class Reprompts:
    """Per-event counters and escalating prompts (VoiceXML ``count``)."""

    def __init__(self, first: dict[str, Prompt | None], more: dict[str, list[Prompt]],
                 limits: dict[str, int | None]) -> None:
        self.counts = {"no_input": 0, "no_match": 0}
        self.prompts = {k: [p for p in [first.get(k), *more.get(k, [])] if p is not None]
                        for k in self.counts}
        self.limits = limits

    def record(self, outcome: str) -> bool:
        """Count one event; True when its own limit is reached (take the port now)."""
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        limit = self.limits.get(outcome)
        return limit is not None and self.counts[outcome] >= limit

    def prompt(self, outcome: str) -> Prompt | None:
        options = self.prompts.get(outcome) or []
        if not options:
            return None
        return options[min(self.counts.get(outcome, 1), len(options)) - 1]


class MenuOption(Strict):
    port: str = Field(pattern=PORT_PATTERN)
    digits: list[str] = Field(default_factory=list, description="Keys that choose it.")
    keywords: list[str] = Field(default_factory=list, description="Spoken words/synonyms.")

    @model_validator(mode="after")
    def _has_trigger(self) -> MenuOption:
        if not self.digits and not self.keywords:
            raise ValueError(f"option {self.port!r} needs digits or keywords")
        bad = [d for d in self.digits if d not in DTMF_KEYS]
        if bad:
            raise ValueError(f"option {self.port!r}: {bad[0]!r} is not a DTMF key")
        _check_phrases(f"option {self.port!r}", self.keywords)
        return self


class MenuParams(Strict):
    prompt: Prompt
    options: list[MenuOption] = Field(min_length=1)
    no_input_prompt: Prompt | None = None
    no_match_prompt: Prompt | None = None
    no_input_prompts: list[Prompt] = Field(
        default_factory=list, description="Escalation after no_input_prompt (last repeats).")
    no_match_prompts: list[Prompt] = Field(
        default_factory=list, description="Escalation after no_match_prompt (last repeats).")
    max_retries: int = Field(default=2, ge=0, le=10)
    max_no_input: int | None = Field(default=None, ge=1, le=10)
    max_no_match: int | None = Field(default=None, ge=1, le=10)
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN,
                                 description="Overrides the flow's; 'auto' detects zh/en.")
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    speech: bool | None = Field(default=None, description="Listen for keywords (default: if any)")
    barge_in: BargeMode = "any"

    @field_validator("options")
    @classmethod
    def _unique(cls, v: list[MenuOption]) -> list[MenuOption]:
        ports = [o.port for o in v]
        keys = [d for o in v for d in o.digits]
        for label, items in (("ports", ports), ("digits", keys)):
            dupes = sorted({p for p in items if items.count(p) > 1})
            if dupes:
                raise ValueError(f"option {label} must be unique, repeated: {', '.join(dupes)}")
        return v


@register
class MenuNode(NodeType):
    """DTMF and spoken keywords in one node, with no-input/no-match re-prompts."""

    type_name = "menu"
    Params = MenuParams
    params: MenuParams
    fixed_ports = ("no_input", "no_match")
    takes_input = True

    def dynamic_ports(self) -> tuple[str, ...]:
        return tuple(o.port for o in self.params.options)

    async def _ask(self, ctx: RunContext) -> tuple[str | None, str | None]:
        """One turn: returns (digit, text); both None on no input; text "" on a nomatch."""
        p = self.params
        res = await play_prompt(ctx, p.prompt, p.barge_in)
        digit = await _barge_digit(ctx, res, p.timeout_s)
        if digit:
            return digit, None
        speech = p.speech if p.speech is not None else any(o.keywords for o in p.options)
        if speech:
            lr = await ctx.call.listen(
                ListenSpec(
                    mode="keywords",
                    keywords=tuple(k for o in p.options for k in o.keywords),
                    language=_listen_language(ctx, p.language),
                    no_input_timeout_s=p.timeout_s,
                    budget_ms=self.spec.budget_ms,
                )
            )
            _raise_if_gone(lr.status)
            _turn_latency(ctx, lr)
            _adopt_language(ctx, self.id, lr)
            if lr.status == "dtmf":
                return lr.digit, None
            if lr.status == "nomatch":
                ctx.call.trace.add("flow.no_match", node_id=self.id, heard=lr.heard,
                                   confidence=round(lr.confidence, 3))
                return None, ""
            if lr.status != "error":
                return None, (lr.text if lr.status == "ok" and lr.text.strip() else None)
            # No recogniser (or it failed): a menu still works by keypad, so degrade to DTMF.
            ctx.call.trace.add("flow.asr_unavailable", node_id=self.id, error=lr.error)
        dr = await ctx.call.collect_digits(
            DigitSpec(
                min_digits=1, max_digits=1, terminator=None, first_digit_timeout_s=p.timeout_s
            )
        )
        _raise_if_gone(dr.reason)
        return (dr.digits[:1] or None), None

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        outcome = "no_input"
        reprompts = Reprompts({"no_input": p.no_input_prompt, "no_match": p.no_match_prompt},
                              {"no_input": p.no_input_prompts, "no_match": p.no_match_prompts},
                              {"no_input": p.max_no_input, "no_match": p.max_no_match})
        for attempt in range(p.max_retries + 1):
            digit, text = await self._ask(ctx)
            if digit is not None:
                ctx.mark_input()
                port = next((o.port for o in p.options if digit in o.digits), None)
            elif text:
                ctx.mark_input()
                intents = {o.port: o.keywords for o in p.options if o.keywords}
                port = await match_intent(ctx, text, intents)
            else:
                if text is not None:
                    ctx.mark_input()
                port = None
            if port is not None:
                return port
            outcome = "no_input" if digit is None and text is None else "no_match"
            ctx.call.trace.add("flow.retry", node_id=self.id, outcome=outcome, attempt=attempt + 1)
            if reprompts.record(outcome):
                return outcome
            if attempt < p.max_retries:
                await play_prompt(ctx, reprompts.prompt(outcome), "none", f"{outcome}_prompt")
        return outcome


class CollectParams(Strict):
    prompt: Prompt | None = None
    variable: str = Field(pattern=VAR_PATTERN, description="Where the digits are stored.")
    min_digits: int = Field(default=1, ge=1, le=64)
    max_digits: int = Field(default=1, ge=1, le=64)
    terminator: str | None = "#"
    first_digit_timeout_s: float = Field(default=5.0, gt=0, le=120)
    inter_digit_timeout_s: float = Field(default=3.0, gt=0, le=60)
    sensitive: bool = Field(default=False, description="Mask the digits in traces and logs.")
    max_retries: int = Field(default=2, ge=0, le=10)
    no_input_prompt: Prompt | None = None
    invalid_prompt: Prompt | None = None

    @model_validator(mode="after")
    def _lengths(self) -> CollectParams:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) > max_digits ({self.max_digits})")
        if self.terminator is not None and self.terminator not in DTMF_KEYS:
            raise ValueError(f"terminator {self.terminator!r} is not a DTMF key")
        return self


@register
class CollectDigitsNode(NodeType):
    type_name = "collect_digits"
    Params = CollectParams
    params: CollectParams
    fixed_ports = ("ok", "no_input", "invalid")
    takes_input = True

    def assigns(self) -> list[str]:
        return [self.params.variable]

    def sensitive_vars(self) -> list[str]:
        return [self.params.variable] if self.params.sensitive else []

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        outcome = "no_input"
        for attempt in range(p.max_retries + 1):
            # a key pressed during the prompt stays buffered in the Call: collect picks it up
            await play_prompt(ctx, p.prompt, "dtmf")
            dr = await ctx.call.collect_digits(
                DigitSpec(
                    min_digits=p.min_digits,
                    max_digits=p.max_digits,
                    terminator=p.terminator,
                    first_digit_timeout_s=p.first_digit_timeout_s,
                    inter_digit_timeout_s=p.inter_digit_timeout_s,
                    sensitive=p.sensitive,
                )
            )
            _raise_if_gone(dr.reason)
            digits = dr.digits
            terminated = dr.reason == "terminator"
            if digits and len(digits) >= p.min_digits:
                ctx.mark_input()
                ctx.set(p.variable, digits, sensitive=p.sensitive)
                return "ok"
            outcome = "invalid" if digits or terminated else "no_input"
            if digits:
                ctx.mark_input()
            ctx.call.trace.add("flow.retry", node_id=self.id, outcome=outcome, attempt=attempt + 1)
            if attempt < p.max_retries:
                retry = p.no_input_prompt if outcome == "no_input" else p.invalid_prompt
                await play_prompt(ctx, retry, "none", f"{outcome}_prompt")
        return outcome


class ListenParams(Strict):
    prompt: Prompt | None = None
    mode: str = Field(default="keywords", pattern="^(free|keywords|grammar)$")
    intents: dict[str, list[str]] = Field(
        default_factory=dict, description="port -> keywords/synonyms that select it."
    )
    dtmf: dict[str, str] = Field(default_factory=dict, description="key -> port.")
    grammar: str | None = Field(default=None, description="JSGF grammar text (grammar mode).")
    variable: str | None = Field(default=None, pattern=VAR_PATTERN)
    no_input_timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_speech_s: float = Field(default=15.0, gt=0, le=120)
    engine: str | None = None
    max_retries: int = Field(default=1, ge=0, le=10)
    no_input_prompt: Prompt | None = None
    no_match_prompt: Prompt | None = None
    no_input_prompts: list[Prompt] = Field(
        default_factory=list, description="Escalation after no_input_prompt (last repeats).")
    no_match_prompts: list[Prompt] = Field(
        default_factory=list, description="Escalation after no_match_prompt (last repeats).")
    max_no_input: int | None = Field(default=None, ge=1, le=10)
    max_no_match: int | None = Field(default=None, ge=1, le=10)
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN,
                                 description="Overrides the flow's; 'auto' detects zh/en.")
    barge_in: BargeMode = "any"

    @model_validator(mode="after")
    def _mode(self) -> ListenParams:
        if self.mode == "keywords" and not self.intents:
            raise ValueError("keywords mode needs at least one intent")
        if self.mode == "grammar" and not self.grammar:
            raise ValueError("grammar mode needs 'grammar'")
        if len(self.intents) > MAX_INTENTS:
            raise ValueError(f"at most {MAX_INTENTS} intents, got {len(self.intents)}")
        for port, phrases in self.intents.items():
            _check_phrases(f"intent {port!r}", phrases)
        for port in [*self.intents, *self.dtmf.values()]:
            import re  # noqa: PLC0415 - validator-only

            if not re.match(PORT_PATTERN, port):
                raise ValueError(f"{port!r} is not a valid port name")
        bad = [k for k in self.dtmf if k not in DTMF_KEYS]
        if bad:
            raise ValueError(f"dtmf: {bad[0]!r} is not a DTMF key")
        return self


@register
class ListenNode(NodeType):
    """Speech recognition; outcomes per intent plus no_input, no_match and error."""

    type_name = "listen"
    Params = ListenParams
    params: ListenParams
    fixed_ports = ("no_input", "no_match")
    takes_input = True

    def dynamic_ports(self) -> tuple[str, ...]:
        ports = list(self.params.intents)
        ports += [p for p in self.params.dtmf.values() if p not in ports]
        if not self.params.intents:
            ports.append("ok")
        return tuple(ports)

    def assigns(self) -> list[str]:
        return [self.params.variable] if self.params.variable else []

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        outcome = "no_input"
        reprompts = Reprompts({"no_input": p.no_input_prompt, "no_match": p.no_match_prompt},
                              {"no_input": p.no_input_prompts, "no_match": p.no_match_prompts},
                              {"no_input": p.max_no_input, "no_match": p.max_no_match})
        for attempt in range(p.max_retries + 1):
            res = await play_prompt(ctx, p.prompt, p.barge_in)
            digit = await _barge_digit(ctx, res, p.no_input_timeout_s)
            text = ""
            nomatch = False
            if digit is None:
                lr = await ctx.call.listen(
                    ListenSpec(
                        mode=p.mode,  # type: ignore[arg-type]  # pattern-checked above
                        keywords=tuple(k for ks in p.intents.values() for k in ks),
                        grammar=p.grammar,
                        language=_listen_language(ctx, p.language),
                        no_input_timeout_s=p.no_input_timeout_s,
                        max_speech_s=p.max_speech_s,
                        allow_dtmf=bool(p.dtmf),
                        engine=p.engine,
                        budget_ms=self.spec.budget_ms,
                    )
                )
                _raise_if_gone(lr.status)
                _turn_latency(ctx, lr)
                _adopt_language(ctx, self.id, lr)
                if lr.status == "error":
                    ctx.call.trace.add("flow.listen_error", node_id=self.id, error=lr.error)
                    return "error"
                if lr.status == "dtmf":
                    digit = lr.digit
                elif lr.status == "ok":
                    text = lr.text.strip()
                elif lr.status == "nomatch":
                    nomatch = True
                    ctx.call.trace.add("flow.no_match", node_id=self.id, heard=lr.heard,
                                       confidence=round(lr.confidence, 3))
            if nomatch:
                ctx.mark_input()
                outcome = "no_match"
            elif digit is not None:
                ctx.mark_input()
                if digit in p.dtmf:
                    return p.dtmf[digit]
                outcome = "no_match"
            elif text:
                ctx.mark_input()
                if p.variable:
                    ctx.set(p.variable, text)
                if not p.intents:
                    return "ok"
                port = await match_intent(ctx, text, p.intents)
                if port is not None:
                    return port
                outcome = "no_match"
            else:
                outcome = "no_input"
            ctx.call.trace.add("flow.retry", node_id=self.id, outcome=outcome, attempt=attempt + 1)
            if reprompts.record(outcome):
                return outcome
            if attempt < p.max_retries:
                await play_prompt(ctx, reprompts.prompt(outcome), "none", f"{outcome}_prompt")
        return outcome


class RecordParams(Strict):
    prompt: Prompt | None = None
    max_seconds: float = Field(default=60.0, gt=0, le=3600)
    silence_stop_s: float | None = Field(default=3.0, gt=0)
    beep: bool = True
    variable: str | None = Field(default=None, pattern=VAR_PATTERN, description="Gets the path.")


@register
class RecordNode(NodeType):
    type_name = "record"
    Params = RecordParams
    params: RecordParams
    takes_input = True

    def assigns(self) -> list[str]:
        return [self.params.variable] if self.params.variable else []

    async def run(self, ctx: RunContext) -> str:
        p = self.params
        await play_prompt(ctx, p.prompt, "none")
        result = await ctx.call.record(p.max_seconds, silence_stop_s=p.silence_stop_s, beep=p.beep)
        if result.reason == "hangup" and result.duration_s <= 0:
            raise CallHungUp("normal", "caller")
        ctx.mark_input()
        if p.variable:
            ctx.set(p.variable, str(result.path) if result.path else "")
        return "next"
