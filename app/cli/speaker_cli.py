"""``ivr speaker enroll|verify|delete|calibrate|keygen|audit``: voiceprints from the command line.

The commands call the same ``SpeakerService`` the flow nodes and the console use, so an enrolment
here is what a call verifies against. Files are PCM WAVs at any rate (converted like call audio).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.context import settings_of

if TYPE_CHECKING:
    from audio.pcm import FloatAudio
    from speaker_id.service import SpeakerService

speaker_app = typer.Typer(help="Voiceprints: enrol, verify, delete, calibrate the threshold.",
                          no_args_is_help=True)

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant id (default: config)")]
ActorOpt = Annotated[str, typer.Option("--actor", help="who does this, for the audit log")]


def register(app: typer.Typer) -> None:
    app.add_typer(speaker_app, name="speaker")


def _service(ctx: typer.Context) -> SpeakerService:
    from app.speaker_setup import open_speaker_service  # noqa: PLC0415 - torch-heavy, lazy
    from speaker_id.store import EncryptionKeyError  # noqa: PLC0415

    try:
        return open_speaker_service(settings_of(ctx))
    except EncryptionKeyError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


def _read(path: Path) -> tuple[FloatAudio, int]:
    from audio.pcm import AudioFormatError  # noqa: PLC0415
    from audio.wavio import read_wav_float  # noqa: PLC0415

    try:
        return read_wav_float(path)
    except (AudioFormatError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e


@speaker_app.command("enroll")
def enroll(
    ctx: typer.Context,
    person_id: Annotated[str, typer.Argument(help="the person's id (e.g. account number)")],
    files: Annotated[list[Path], typer.Argument(help="one or more WAV utterances")],
    consent: Annotated[str, typer.Option(help="what the person agreed to (recorded)")] = (
        "person agreed to voiceprint enrolment (recorded by operator via CLI)"),
    passphrase: Annotated[str | None, typer.Option(help="text they must also say")] = None,
    tenant: TenantOpt = None,
    actor: ActorOpt = "cli",
) -> None:
    """Enrol (or re-enrol) PERSON_ID from FILE... (e.g. the phrase said three times)."""
    service = _service(ctx)
    clips = [_read(f) for f in files]
    rates = {r for _, r in clips}
    if len(rates) != 1:
        typer.echo("error: all files must have the same sample rate", err=True)
        raise typer.Exit(2)
    result = asyncio.run(service.enroll(person_id, [a for a, _ in clips],
                                        tenant_id=tenant, rate=rates.pop(),
                                        passphrase=passphrase, consent_method="cli",
                                        consent_text=consent, actor=actor))
    typer.echo(f"{result.outcome} utterances={result.utterances} "
               f"consistency={result.score:.3f}" + (f" reason={result.reason}"
                                                     if result.reason else ""))
    raise typer.Exit(0 if result.outcome == "enrolled" else 1)


@speaker_app.command("verify")
def verify(
    ctx: typer.Context,
    person_id: Annotated[str, typer.Argument()],
    file: Annotated[Path, typer.Argument(help="WAV utterance to check")],
    transcript: Annotated[str | None, typer.Option(help="what the recogniser heard")] = None,
    tenant: TenantOpt = None,
    actor: ActorOpt = "cli",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score FILE against PERSON_ID's voiceprint; prints score and decision (exit 0 on match)."""
    service = _service(ctx)
    audio, rate = _read(file)
    r = asyncio.run(service.verify(person_id, audio, tenant_id=tenant,
                                   rate=rate, transcript=transcript, actor=actor))
    if as_json:
        typer.echo(json.dumps({"outcome": r.outcome, "score": round(r.score, 4),
                               "threshold": r.threshold, "reason": r.reason,
                               "replay_suspected": r.replay_suspected,
                               "quality": asdict(r.quality) if r.quality else None}))
    else:
        typer.echo(f"{r.outcome} score={r.score:.3f} threshold={r.threshold:.3f}"
                   + (f" reason={r.reason}" if r.reason else "")
                   + (" REPLAY-SUSPECTED" if r.replay_suspected else ""))
    raise typer.Exit(0 if r.outcome == "match" else 1)


@speaker_app.command("delete")
def delete(ctx: typer.Context, person_id: Annotated[str, typer.Argument()],
           tenant: TenantOpt = None, actor: ActorOpt = "cli") -> None:
    """Erase PERSON_ID's voiceprint on request (consent marked withdrawn, audit kept)."""
    existed = asyncio.run(_service(ctx).delete(person_id, tenant_id=tenant, actor=actor))
    typer.echo("deleted" if existed else "not_enrolled")
    raise typer.Exit(0 if existed else 1)


@speaker_app.command("audit")
def audit(ctx: typer.Context, person_id: Annotated[str | None, typer.Argument()] = None,
          tenant: TenantOpt = None) -> None:
    """Show who accessed voiceprints: time, person, action, actor, outcome."""
    from datetime import UTC, datetime  # noqa: PLC0415

    service = _service(ctx)
    for e in service.store.audit_log(tenant or service.tenant_id, person_id):
        when = datetime.fromtimestamp(e.at, UTC).isoformat(timespec="seconds")
        typer.echo(f"{when}  {e.person_id}  {e.action}  {e.actor}  {e.outcome}")


@speaker_app.command("keygen")
def keygen() -> None:
    """Print a new encryption key for speaker.encryption_key / IVR_SPEAKER__ENCRYPTION_KEY."""
    from speaker_id.store import generate_key  # noqa: PLC0415

    typer.echo(generate_key())


@speaker_app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="FOLDER/<speaker>/*.wav, one folder per person")],
    telephone: Annotated[bool, typer.Option("--telephone/--wide",
                                            help="pass audio through 8 kHz G.711 (sox) first")]
    = True,
    threshold: Annotated[list[float] | None, typer.Option(
        "--threshold", "-t", help="report FAR/FRR here (repeatable)")] = None,
    target_far: Annotated[float, typer.Option(help="FAR the threshold must meet")] = 0.01,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """EER, FAR/FRR at thresholds and the threshold for a target FAR on labelled audio."""
    from speaker_id.backends import load_backend  # noqa: PLC0415
    from speaker_id.calibrate import calibrate_folder  # noqa: PLC0415
    from speaker_id.quality import QualityGate  # noqa: PLC0415

    sp = settings_of(ctx).speaker
    gate = QualityGate(min_speech_s=sp.min_speech_s, max_clipped_ratio=sp.max_clipped_ratio,
                       min_level_dbfs=sp.min_level_dbfs, min_snr_db=sp.min_snr_db)
    try:
        report = calibrate_folder(
            folder, load_backend(sp.backend, sp.model_path, sp.threads), telephone=telephone,
            thresholds=threshold or [0.70, 0.75, 0.80, 0.85, 0.90], target_far=target_far,
            gate=gate, progress=lambda m: typer.echo(m, err=True))
    except (FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if as_json:
        typer.echo(json.dumps({k: v for k, v in asdict(report).items()
                               if k not in ("targets", "nontargets")}))
    else:
        typer.echo(report.render())
