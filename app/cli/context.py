"""What every ``ivr`` subcommand reads from the click context: the settings ``main`` loaded
(``--config`` plus ``IVR_*`` overrides), or the defaults when a command runs on its own."""

from __future__ import annotations

import typer

from app.config import Settings


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()
