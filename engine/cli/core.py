"""``ivr run`` and ``ivr doctor``."""

from __future__ import annotations

import shutil
import socket
import subprocess
from typing import Annotated

import typer

from engine.config import Settings


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
        ("espeak-ng", "espeak-ng: prompt TTS fallback, Mandarin"),
        ("sox", "sox: audio conversion"),
        ("kamailio", "Kamailio: SIP load balancer (optional)"),
    ]:
        path = shutil.which(binary)
        version = ""
        if path and binary in ("sipp",):
            out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False)
            version = (out.stdout or out.stderr).strip().splitlines()[0:1]
            version = version[0] if version else ""
        rows.append((what, bool(path), path or "not installed"))
    host, _, port = settings.sip.listen.rpartition(":")
    rows.append((f"SIP listen {settings.sip.listen}", _udp_port_free(host, int(port)),
                 "free" if _udp_port_free(host, int(port)) else "in use (engine running?)"))
    for module, what in [
        ("faster_whisper", "faster-whisper (free-text ASR)"),
        ("pocketsphinx", "pocketsphinx (grammar ASR)"),
        ("vosk", "vosk (streaming ASR)"),
        ("onnxruntime", "onnxruntime (silero VAD)"),
        ("piper", "piper TTS"),
        ("resemblyzer", "resemblyzer (voiceprint)"),
        ("ahocorasick", "pyahocorasick (sensitive words)"),
        ("redis", "redis client"),
    ]:
        try:
            __import__(module)
            rows.append((what, True, "importable"))
        except Exception as e:  # doctor reports any import failure, whatever it is
            rows.append((what, False, f"{type(e).__name__}: {e}"[:80]))
    width = max(len(r[0]) for r in rows)
    for what, ok, detail in rows:
        typer.echo(f"{'ok ' if ok else '-- '} {what.ljust(width)}  {detail}")


def _udp_port_free(host: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_ = Annotated  # re-exported for sub-modules' signatures
