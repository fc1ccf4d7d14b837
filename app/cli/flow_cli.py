"""``ivr flow ...``: validate, simulate, test, schema, publish, list, route.

The console calls the same library functions (validator, test runner, store); nothing here holds
logic of its own beyond argument parsing and printing.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="IVR flows: validate, simulate, test, publish and route.", no_args_is_help=True
)

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
TenantOpt = Annotated[str, typer.Option(help="Tenant id.")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: [storage].url).")]
DIGITS_RE = re.compile(r"^[0-9*#A-Da-d]+$")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="flow")


def _load(path: Path) -> dict[str, Any]:
    from flows.validator import FlowInvalid, load_json  # noqa: PLC0415 - keep `ivr` start fast

    try:
        return load_json(path.read_text())
    except FlowInvalid as e:
        for p in e.problems:
            typer.echo(f"{path}: {p}", err=True)
        raise typer.Exit(1) from e


def _compile(path: Path) -> Any:
    from flows.validator import FlowInvalid, compile_flow  # noqa: PLC0415

    try:
        return compile_flow(_load(path))
    except FlowInvalid as e:
        for p in e.problems:
            typer.echo(f"{path}: {p}", err=True)
        typer.echo(f"{path}: invalid ({len(e.problems)} problem(s))", err=True)
        raise typer.Exit(1) from e


def _sibling_flows(path: Path) -> dict[str, dict[str, Any]]:
    """Flows next to ``path`` by id, so subflow nodes resolve in the simulator."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(path.parent.glob("*.json")):
        if f.name.endswith(".cases.json"):
            continue
        try:
            doc = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("id"), str) and "nodes" in doc:
            out[doc["id"]] = doc
    return out


@app.command("validate")
def validate_cmd(file: FileArg, as_json: JsonOpt = False) -> None:
    """Check a flow file; prints every problem (node, port, code, message); exit 1 if any."""
    from flows.validator import validate  # noqa: PLC0415

    problems = validate(_load(file))
    if as_json:
        typer.echo(json.dumps([p.as_dict() for p in problems], indent=2))
    else:
        for p in problems:
            typer.echo(f"{file}: {p}")
        typer.echo(f"{file}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    if problems:
        raise typer.Exit(1)


@app.command("schema")
def schema_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="Write to a file.")] = None,
) -> None:
    """Print the flow JSON Schema (generated from the pydantic models)."""
    from flows.schemagen import schema_text  # noqa: PLC0415

    if out is None:
        typer.echo(schema_text(), nl=False)
    else:
        out.write_text(schema_text())


@app.command("test")
def test_cmd(
    flow: FileArg,
    cases: FileArg,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("-v", help="Show transcripts.")] = False,
) -> None:
    """Run JSON test cases headless against a flow; exit 1 if any case fails."""
    from pydantic import ValidationError  # noqa: PLC0415

    from flows.testcases import load_subflows, load_suite, run_suite  # noqa: PLC0415

    compiled = _compile(flow)
    try:
        suite = load_suite(cases)
    except ValidationError as e:
        typer.echo(f"{cases}: bad test file: {e}", err=True)
        raise typer.Exit(2) from e
    subflows = {**_sibling_flows(flow), **load_subflows(suite, cases.parent)}
    results = asyncio.run(run_suite(compiled, suite, subflows))
    failed = [r for r in results if not r.passed]
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2, default=str))
    else:
        for r in results:
            typer.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.name}")
            for s in r.steps:
                if not s.ok:
                    typer.echo(f"      step {s.index + 1} ({s.action}): {s.message}")
            if verbose or not r.passed:
                for line in r.transcript:
                    typer.echo(f"      | {line}")
        typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@app.command("simulate")
def simulate_cmd(
    file: FileArg,
    *,
    caller: Annotated[str, typer.Option(help="Calling number.")] = "+15550100",
    callee: Annotated[str, typer.Option(help="Dialled number.")] = "+15550199",
    var: Annotated[list[str] | None, typer.Option("--var", help="name=json-value")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign data as JSON.")] = None,
    mocks: Annotated[
        Path | None,
        typer.Option(help="JSON file with service mocks (the 'mocks' object of a test case)."),
    ] = None,
) -> None:
    """Talk to a flow in the terminal: type digits (e.g. 1234#) or words; a blank line is
    silence; /hangup hangs up; /vars shows variables. Works with piped input too."""
    compiled = _compile(file)
    variables: dict[str, Any] = {}
    for item in var or []:
        name, _, raw = item.partition("=")
        try:
            variables[name] = json.loads(raw)
        except json.JSONDecodeError:
            variables[name] = raw
    camp = json.loads(campaign) if campaign else {}
    mock_doc = json.loads(mocks.read_text()) if mocks else None
    result = asyncio.run(
        _simulate(
            compiled,
            caller=caller,
            callee=callee,
            variables=variables,
            campaign=camp,
            flows=_sibling_flows(file),
            mocks=mock_doc,
        )
    )
    raise typer.Exit(0 if result in ("hangup", "transferred", "returned", "caller_hangup") else 1)


async def _simulate(
    compiled: Any,
    *,
    caller: str,
    callee: str,
    variables: dict[str, Any],
    campaign: dict[str, Any],
    flows: dict[str, dict[str, Any]],
    mocks: dict[str, Any] | None,
) -> str:
    from core.clock import SystemClock  # noqa: PLC0415
    from core.tasks import TaskScope  # noqa: PLC0415
    from flows.interpreter import Interpreter  # noqa: PLC0415
    from flows.services import AiohttpClient, FlowServices, MapFlowResolver  # noqa: PLC0415
    from flows.simulator import SimInput, SimOutput, SimulatedCall  # noqa: PLC0415
    from flows.testcases import Mocks, services_for  # noqa: PLC0415

    def show(o: SimOutput) -> None:
        label = {
            "say": "IVR",
            "play": "IVR",
            "transfer": "TRANSFER",
            "hangup": "HANGUP",
            "record": "RECORDED",
        }[o.kind]
        typer.echo(f"{label}: {o.text}")

    if mocks is not None:
        services = services_for(Mocks.model_validate(mocks), flows)
    else:
        services = FlowServices(flows=MapFlowResolver(flows))
    sms = services.sms
    call = SimulatedCall(
        SystemClock(), caller=caller, callee=callee, interactive=True, on_output=show
    )
    interp = Interpreter(
        compiled,
        call,
        clock=SystemClock(),
        services=services,
        variables=variables,
        campaign=campaign,
    )
    scope = TaskScope("simulate")
    task = scope.spawn(interp.run(), "run")
    tty = sys.stdin.isatty()
    typer.echo(f"-- simulating {compiled.id} (caller {caller} -> {callee}); /help for commands")
    try:
        while True:
            idle = scope.spawn(call.idle.wait(), "idle")
            await asyncio.wait({task, idle}, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            if task.done():
                break
            want = call.waiting_for or "input"
            prompt = f"[{interp.current_node} waits for {want}] > "
            if tty:
                line = await asyncio.to_thread(input, prompt)  # readline editing
            else:
                typer.echo(prompt, nl=False)
                line = await asyncio.to_thread(sys.stdin.readline)
                if line == "":
                    typer.echo("<EOF: hanging up>")
                    call.feed(SimInput("hangup"))
                    continue
                typer.echo(line.rstrip("\n"))
            text = line.strip()
            if text in ("/hangup", "/quit"):
                call.feed(SimInput("hangup"))
            elif text == "/vars":
                typer.echo(json.dumps(interp.ctx.masked_variables(), default=str))
            elif text == "/help":
                typer.echo(
                    "digits: 0-9 * # A-D | words: an utterance | blank: silence | /vars | /hangup"
                )
            elif text == "":
                call.feed(SimInput("silence"))
            elif DIGITS_RE.match(text):
                call.feed_digits(text.upper())
            else:
                call.feed(SimInput("say", text.removeprefix("say ").strip()))
    except (EOFError, KeyboardInterrupt):
        call.feed(SimInput("hangup"))
        await asyncio.wait({task}, timeout=2)
    finally:
        await scope.close()
        await call.close()
        if isinstance(services.http, AiohttpClient):
            await services.http.close()
    if not task.done() or task.cancelled():
        return "cancelled"
    result = task.result()
    for to, text in getattr(sms, "sent", []):
        typer.echo(f"SMS to {to}: {text}")
    path = " -> ".join(t["node_id"] for t in result.trace)
    typer.echo(f"-- ended: {result.status}{' (' + result.reason + ')' if result.reason else ''}")
    typer.echo(f"-- path: {path}")
    return result.status


def _store(ctx: typer.Context, db: str | None) -> Any:
    from flows.store import FlowStore  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415

    url = db or ctx.obj.storage.url
    return FlowStore(open_database(url))


@app.command("publish")
def publish_cmd(
    ctx: typer.Context,
    file: FileArg,
    tenant: TenantOpt = "default",
    db: DbOpt = None,
    words: Annotated[Path | None, typer.Option(help="Blocked-words file, one per line.")] = None,
) -> None:
    """Validate, word-check and store a new immutable version (same content: same version)."""
    from app.cli.console_cli import cli_actor  # noqa: PLC0415
    from app.console_setup import flow_ops  # noqa: PLC0415
    from console.services.base import Invalid  # noqa: PLC0415
    from flows.services import ListWordChecker  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415

    checker: Any = None  # default: the operator's lists (global + tenant), as calls use them
    if words is None and ctx.obj.flows.words_file:
        words = Path(ctx.obj.flows.words_file)
    if words is not None:
        checker = ListWordChecker([w.strip() for w in words.read_text().splitlines()])
    ops = flow_ops(ctx.obj, open_database(db or ctx.obj.storage.url))
    try:
        pub = ops.publish_document(cli_actor(), tenant, _load(file), words=checker)
    except Invalid as e:
        for p in e.details or [{"message": str(e)}]:
            where = f"[{p['node_id']}{'.' + p['port'] if p.get('port') else ''}] " \
                if p.get("node_id") else ""
            typer.echo(f"{file}: {where}{p.get('code', e.code)}: {p['message']}", err=True)
        raise typer.Exit(1) from e
    state = "published" if pub.created else "unchanged"
    typer.echo(f"{pub.flow_id} version {pub.version} {state} (sha256 {pub.content_hash[:12]})")


@app.command("list")
def list_cmd(ctx: typer.Context, tenant: TenantOpt = "default", db: DbOpt = None) -> None:
    """Published flows and the numbers routed to them."""
    store = _store(ctx, db)
    rows = store.list_flows(tenant=tenant)
    routes = store.routes(tenant=tenant)
    for r in rows:
        nums = ", ".join(sorted(n for n, f in routes.items() if f == r["flow_id"])) or "-"
        typer.echo(
            f"{r['flow_id']:<28} v{r['latest_version']:<4} {r['versions']:>3} version(s)"
            f"  routes: {nums}  {r['name']}"
        )
    if not rows:
        typer.echo("no published flows")


@app.command("route")
def route_cmd(
    ctx: typer.Context, number: str, flow_id: str, tenant: TenantOpt = "default", db: DbOpt = None
) -> None:
    """Send new calls to NUMBER (dialled user part; '*' = fallback) to the published FLOW_ID."""
    from app.cli.console_cli import cli_actor  # noqa: PLC0415
    from app.console_setup import flow_ops  # noqa: PLC0415
    from console.services.base import Conflict, Invalid  # noqa: PLC0415
    from storage.db import open_database  # noqa: PLC0415

    ops = flow_ops(ctx.obj, open_database(db or ctx.obj.storage.url))
    try:
        ops.set_route(cli_actor(), tenant, number, flow_id)
    except (Invalid, Conflict) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"{number} -> {flow_id}")
