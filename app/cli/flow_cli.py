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
    from flows.validator import FlowInvalid, load_flow_file  # noqa: PLC0415 - keep `ivr` fast

    try:
        return load_flow_file(path)
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
    """Flows next to ``path`` by id, so subflow nodes resolve in the simulator. A file that is
    not a readable flow is skipped with a note: it must not break the flow being run."""
    from flows.validator import FlowInvalid, load_flow_file  # noqa: PLC0415

    out: dict[str, dict[str, Any]] = {}
    for f in sorted(path.parent.glob("*.json")):
        if f.name.endswith(".cases.json") or f.resolve() == path.resolve():
            continue
        try:
            doc = load_flow_file(f)
        except FlowInvalid as e:
            typer.echo(f"note: skipped {f.name}: {e.problems[0]}", err=True)
            continue
        if isinstance(doc.get("id"), str) and "nodes" in doc:
            out[doc["id"]] = doc
    return out


def _json_option(text: str | bytes, what: str) -> Any:
    """A JSON command-line value or file content; a usage error (exit 2) naming it if bad."""
    from flows.jsondoc import JsonError, parse_json  # noqa: PLC0415

    try:
        return parse_json(text)
    except JsonError as e:
        typer.echo(f"error: {what}: {e}", err=True)
        raise typer.Exit(2) from e


@app.command("validate")
def validate_cmd(file: FileArg, as_json: JsonOpt = False) -> None:
    """Check a flow file; prints every problem (node, port, code, message); exit 1 if any."""
    from flows.validator import FlowInvalid, load_flow_file, validate  # noqa: PLC0415

    try:
        problems = validate(load_flow_file(file), known_flows=set(_sibling_flows(file)))
    except FlowInvalid as e:  # the file itself: not UTF-8, not JSON, too large...
        problems = e.problems
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
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="[FLOW] CASES",
            help="The flow file and the case file; leave the flow out when the case file "
            "names it ('flow').",
        ),
    ],
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("-v", help="Show transcripts.")] = False,
) -> None:
    """Run JSON test cases headless against a flow. Exit 1 if a case fails, 2 if the case file
    has invalid cases or unusable subflow files (the other cases still run)."""
    from flows.casefile import SuiteError, load_subflows, load_suite  # noqa: PLC0415
    from flows.testcases import run_suite  # noqa: PLC0415

    if len(files) > 2:
        typer.echo(
            "error: give FLOW CASES, or only CASES when the case file names its flow", err=True
        )
        raise typer.Exit(2)
    flow_arg, cases = (files[0], files[1]) if len(files) == 2 else (None, files[0])
    try:
        suite = load_suite(cases)
    except SuiteError as e:
        typer.echo(f"{cases}: bad test file: {e}", err=True)
        raise typer.Exit(2) from e
    named = suite.flow_path
    if flow_arg is None:
        if named is None or not named.is_file():
            what = f"names {suite.flow!r}, which does not exist" if named else "names no flow"
            typer.echo(f"{cases}: the case file {what}: pass FLOW CASES", err=True)
            raise typer.Exit(2)
        flow_arg = named
    elif named is not None and named.resolve() != flow_arg.resolve():
        typer.echo(
            f"{cases}: the cases are written for {suite.flow} ({named}), not for {flow_arg}",
            err=True,
        )
        raise typer.Exit(2)
    compiled = _compile(flow_arg)
    subflows, problems = load_subflows(suite)
    for problem in problems:
        typer.echo(f"{cases}: {problem}", err=True)
    results = asyncio.run(run_suite(compiled, suite, {**_sibling_flows(flow_arg), **subflows}))
    failed = [r for r in results if not r.passed]
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            typer.echo(f"{'PASS' if r.passed else 'INVALID' if r.invalid else 'FAIL'}  {r.name}")
            if r.error:
                typer.echo(f"      {r.error}")
            for s in r.steps:
                if not s.ok:
                    typer.echo(f"      step {s.index + 1} ({s.action}): {s.message}")
            if verbose or (not r.passed and not r.invalid):
                for line in r.transcript:
                    typer.echo(f"      | {line}")
        typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if problems or any(r.invalid for r in results):
        raise typer.Exit(2)
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
    from pydantic import ValidationError  # noqa: PLC0415

    from flows.jsondoc import JsonError, parse_json  # noqa: PLC0415
    from flows.testcases import Mocks  # noqa: PLC0415

    compiled = _compile(file)
    variables: dict[str, Any] = {}
    for item in var or []:
        name, _, raw = item.partition("=")
        try:
            variables[name] = parse_json(raw)
        except JsonError:
            variables[name] = raw
    camp = _json_option(campaign, "--campaign") if campaign else {}
    if not isinstance(camp, dict):
        typer.echo("error: --campaign: must be a JSON object", err=True)
        raise typer.Exit(2)
    mock_doc = None
    if mocks is not None:
        try:
            mock_doc = Mocks.model_validate(_json_option(mocks.read_bytes(), f"--mocks {mocks}"))
        except ValidationError as e:
            typer.echo(f"error: --mocks {mocks}: {e}", err=True)
            raise typer.Exit(2) from e
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
    mocks: Any,
) -> str:
    from core.clock import SystemClock  # noqa: PLC0415
    from core.tasks import TaskScope  # noqa: PLC0415
    from flows.interpreter import Interpreter  # noqa: PLC0415
    from flows.jsondoc import jsonable  # noqa: PLC0415
    from flows.services import AiohttpClient, FlowServices, MapFlowResolver  # noqa: PLC0415
    from flows.simulator import SimInput, SimOutput, SimulatedCall  # noqa: PLC0415
    from flows.testcases import services_for  # noqa: PLC0415

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
        services = services_for(mocks, flows)
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
                typer.echo(json.dumps(jsonable(interp.ctx.masked_variables()), ensure_ascii=False))
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
