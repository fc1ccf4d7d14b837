"""The ``ivr`` command. Each area adds its sub-commands in its own module under ``engine/cli/``
and one line in ``_SUBCOMMANDS`` below; the commands call the same services the console calls."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from app.config import ConfigError, load_settings
from core.logs import setup_logging

app = typer.Typer(help="IVR Engine: SIP call control, IVR flows, speech and compliance.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

# module name under app.cli -> attribute holding a typer.Typer (added as a command group)
# or a function named `register(app)` that adds plain commands.
_SUBCOMMANDS: list[str] = [
    "app.cli.speaker_cli",
    "app.cli.doctor_cli",
    "app.cli.sip_cli",
    "app.cli.run_cli",
    "app.cli.asterisk_cli",
    "app.cli.compliance_cli",
    "app.cli.speech_cli",
    "app.cli.flow_cli",
    "app.cli.sms_cli",
    "app.cli.campaign_cli",
    "app.cli.console_cli",
    "app.cli.inspect_cli",
]

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")]


@app.callback()
def _main(
    ctx: typer.Context,
    config: ConfigOpt = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING")] = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="JSON log lines")] = False,
) -> None:
    try:
        settings = load_settings(config)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    fmt = "json" if log_json else settings.logging.format
    setup_logging(log_level or settings.logging.level, fmt)
    ctx.obj = settings


for _name in _SUBCOMMANDS:
    _mod = importlib.import_module(_name)
    _mod.register(app)


if __name__ == "__main__":
    app()
