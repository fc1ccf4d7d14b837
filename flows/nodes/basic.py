"""Control nodes: start, play, set, condition, hangup, transfer."""

from __future__ import annotations

from pydantic import Field, field_validator

from flows.context import NodeError, RunContext
from flows.model import ID_PATTERN, PORT_PATTERN, Strict
from flows.nodes.base import BargeMode, NodeType, Prompt, play_prompt, register


class NoParams(Strict):
    pass


@register
class StartNode(NodeType):
    """Where every call enters the flow (exactly one per flow)."""

    type_name = "start"
    Params = NoParams

    async def run(self, ctx: RunContext) -> str:
        if ctx.depth == 0:  # a subflow runs on a call that is already answered
            await ctx.call.answer()
        return "next"


class PlayParams(Strict):
    prompt: Prompt
    barge_in: BargeMode = Field(
        default="dtmf", description="What may interrupt: none, dtmf, speech or any."
    )


@register
class PlayNode(NodeType):
    """Plays a file or speaks a template; a barge-in key is kept for the next input node."""

    type_name = "play"
    Params = PlayParams
    params: PlayParams

    async def run(self, ctx: RunContext) -> str:
        # A barge-in key stays buffered in the Call for the next input node (type-ahead).
        await play_prompt(ctx, self.params.prompt, self.params.barge_in)
        return "next"


class SetParams(Strict):
    assign: dict[str, str] = Field(
        min_length=1, description="variable -> expression, evaluated in order."
    )

    @field_validator("assign")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        import re  # noqa: PLC0415 - tiny, validator-only

        for name in v:
            if not re.match(ID_PATTERN, name) or "-" in name:
                raise ValueError(f"{name!r} is not a valid variable name")
        return v


@register
class SetNode(NodeType):
    type_name = "set"
    Params = SetParams
    params: SetParams

    def expressions(self) -> list[tuple[str, str]]:
        return [(f"assign.{k}", v) for k, v in self.params.assign.items()]

    def assigns(self) -> list[str]:
        return list(self.params.assign)

    async def run(self, ctx: RunContext) -> str:
        for name, expr in self.params.assign.items():
            ctx.set(name, ctx.eval(expr, f"assign.{name}"))
        return "next"


class Branch(Strict):
    when: str = Field(description="An expression; the first true branch wins.")
    port: str = Field(pattern=PORT_PATTERN)


class ConditionParams(Strict):
    branches: list[Branch] = Field(min_length=1)
    else_port: str = Field(default="else", pattern=PORT_PATTERN)

    @field_validator("branches")
    @classmethod
    def _unique(cls, v: list[Branch]) -> list[Branch]:
        ports = [b.port for b in v]
        dupes = sorted({p for p in ports if ports.count(p) > 1})
        if dupes:
            raise ValueError(f"branch ports must be unique, repeated: {', '.join(dupes)}")
        return v


@register
class ConditionNode(NodeType):
    """Ordered branches over variables (like Twilio's split-based-on)."""

    type_name = "condition"
    Params = ConditionParams
    params: ConditionParams
    fixed_ports = ()
    port_sources = ("branches[].port", "else_port")

    def dynamic_ports(self) -> tuple[str, ...]:
        ports = [b.port for b in self.params.branches]
        if self.params.else_port not in ports:
            ports.append(self.params.else_port)
        return tuple(ports)

    def expressions(self) -> list[tuple[str, str]]:
        return [(f"branches[{i}].when", b.when) for i, b in enumerate(self.params.branches)]

    async def run(self, ctx: RunContext) -> str:
        for i, branch in enumerate(self.params.branches):
            if ctx.eval(branch.when, f"branches[{i}].when"):
                return branch.port
        return self.params.else_port


class HangupParams(Strict):
    prompt: Prompt | None = None
    reason: str = "normal"


@register
class HangupNode(NodeType):
    type_name = "hangup"
    Params = HangupParams
    params: HangupParams
    fixed_ports = ()
    terminal_outcomes = ("hangup",)

    async def run(self, ctx: RunContext) -> str:
        await play_prompt(ctx, self.params.prompt, "none")
        await ctx.call.hangup(self.params.reason)
        return "hangup"


class TransferParams(Strict):
    target: str = Field(min_length=1, description="Number or SIP URI; may contain {{ var }}.")
    prompt: Prompt | None = None


@register
class TransferNode(NodeType):
    """Hands the call to a person; success ends the flow, failure takes 'failed'."""

    type_name = "transfer"
    Params = TransferParams
    params: TransferParams
    fixed_ports = ("failed",)
    terminal_outcomes = ("transferred",)

    def templates(self) -> list[tuple[str, str]]:
        return [*super().templates(), ("target", self.params.target)]

    async def run(self, ctx: RunContext) -> str:
        target = ctx.render(self.params.target, "target").strip()
        if not target:
            raise NodeError("transfer target rendered empty")
        await play_prompt(ctx, self.params.prompt, "none")
        result = await ctx.call.transfer(target)
        ctx.call.trace.add("flow.transfer", node_id=self.id, target=target, status=result.status)
        return "failed" if result.status == "failed" else "transferred"
