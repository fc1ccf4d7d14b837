"""One class per node type, in a registry; each validates its params and returns an outcome port.

A node class declares its params model (the schema generator publishes it), its ports, which of
them must be connected, what templates/expressions it reads (the validator checks them and the
word checker scans the prompt texts) and which variables it assigns. ``run`` does the work and
returns the port name; the interpreter owns edges, guards, budgets and tracing.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from core.call import BargeIn, PlayResult
from flows.context import RunContext
from flows.model import NodeSpec, Strict

REGISTRY: dict[str, type[NodeType]] = {}


def register(cls: type[NodeType]) -> type[NodeType]:
    REGISTRY[cls.type_name] = cls
    return cls


class Prompt(Strict):
    """Something to play: TTS text (a template) or an audio file."""

    text: str | None = Field(default=None, description="TTS text; may contain {{ var }}.")
    audio: str | None = Field(default=None, description="Path of a WAV file.")
    voice: str | None = None
    language: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Prompt:
        if (self.text is None) == (self.audio is None):
            raise ValueError("a prompt needs exactly one of 'text' or 'audio'")
        return self


BargeMode = Literal["none", "dtmf", "speech", "any"]
_BARGE = {
    "none": BargeIn.NONE,
    "dtmf": BargeIn.DTMF,
    "speech": BargeIn.SPEECH,
    "any": BargeIn.ANY,
}


async def play_prompt(
    ctx: RunContext, prompt: Prompt | None, barge: BargeMode = "none", what: str = "prompt"
) -> PlayResult | None:
    if prompt is None:
        return None
    if prompt.audio is not None:
        return await ctx.call.play(prompt.audio, barge_in=_BARGE[barge])
    text = ctx.render(prompt.text or "", what, prompt.language)
    return await ctx.call.say(
        text, voice=prompt.voice, language=prompt.language or ctx.language, barge_in=_BARGE[barge]
    )


class NodeType:
    type_name: ClassVar[str]
    Params: ClassVar[type[Strict]]
    fixed_ports: ClassVar[tuple[str, ...]] = ("next",)
    optional_ports: ClassVar[tuple[str, ...]] = ()
    terminal_outcomes: ClassVar[tuple[str, ...]] = ()  # outcomes that end the call
    takes_input: ClassVar[bool] = False  # waits for the caller (budget measured per turn)
    # Where dynamic_ports() reads its port names, for editors that draw them before a node is
    # valid (published in the schema as x-ports): "list[].field" (each item's field),
    # "field" (one string param), "dict{}" (a dict's keys), "dict{}=" (a dict's values).
    port_sources: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: NodeSpec, params: Any) -> None:
        self.spec = spec
        self.id = spec.id
        self.params = params

    @classmethod
    def parse(cls, spec: NodeSpec) -> NodeType:
        """Validate ``spec.params``; raises pydantic ``ValidationError``."""
        return cls(spec, cls.Params.model_validate(spec.params))

    def dynamic_ports(self) -> tuple[str, ...]:
        return ()

    def ports(self) -> tuple[str, ...]:
        return self.fixed_ports + self.dynamic_ports()

    def required_ports(self) -> tuple[str, ...]:
        return tuple(p for p in self.ports() if p not in self.optional_ports)

    @property
    def is_terminal(self) -> bool:
        return bool(self.terminal_outcomes)

    def prompts(self) -> list[tuple[str, Prompt]]:
        """(field name, prompt) pairs: their text is rendered, checked and word-scanned."""
        out: list[tuple[str, Prompt]] = []
        for name in type(self.params).model_fields:
            value = getattr(self.params, name)
            if isinstance(value, Prompt):
                out.append((name, value))
        return out

    def templates(self) -> list[tuple[str, str]]:
        """(field, template text) pairs besides prompts (SMS text, URLs...)."""
        return [(f"{name}.text", p.text) for name, p in self.prompts() if p.text is not None]

    def expressions(self) -> list[tuple[str, str]]:
        return []

    def assigns(self) -> list[str]:
        return []

    def sensitive_vars(self) -> list[str]:
        return []

    def calls_flow(self) -> str | None:
        """The id of the flow this node runs as a subflow, if any (the validator checks it)."""
        return None

    async def run(self, ctx: RunContext) -> str:
        raise NotImplementedError
