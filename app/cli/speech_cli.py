"""``ivr asr transcribe`` and ``ivr tts say``: the speech library from a shell, for ops.

``transcribe`` runs a WAV through the same path a call uses (8 kHz, 20 ms frames, VAD-free: the
whole file is one utterance) and prints the text with load, decode and real-time-factor figures,
so an operator can check a model path or a grammar before a flow uses it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from app.config import Settings

asr_app = typer.Typer(help="Speech recognition tools.", no_args_is_help=True)
tts_app = typer.Typer(help="Prompt text-to-speech tools.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(asr_app, name="asr")
    app.add_typer(tts_app, name="tts")


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


@asr_app.command("transcribe")
def transcribe(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="16-bit PCM WAV, any rate")],
    engine: Annotated[
        str | None, typer.Option("--engine", help="pocketsphinx, whisper, vosk")
    ] = None,
    grammar: Annotated[
        Path | None, typer.Option("--grammar", help="JSGF file (or phrase list for vosk)")
    ] = None,
    keywords: Annotated[
        str | None, typer.Option("--keywords", help="comma-separated phrases")
    ] = None,
) -> None:
    """Print the text of FILE with timings."""
    from asr.models import get_engine  # noqa: PLC0415
    from asr.recognizer import RecognizerError, RecognizerOptions  # noqa: PLC0415
    from audio.pcm import frames  # noqa: PLC0415 - keep `ivr --help` fast
    from audio.wavio import load_wav  # noqa: PLC0415

    cfg = _settings(ctx).asr
    name = engine or ("pocketsphinx" if grammar or keywords else "whisper")
    if name == "pocketsphinx" and not (grammar or keywords) and engine is None:
        name = cfg.default_engine
    paths = {
        "pocketsphinx": cfg.pocketsphinx_model_path,
        "whisper": cfg.whisper_model_path,
        "vosk": cfg.vosk_model_path,
    }
    try:
        if grammar is not None:
            opts = RecognizerOptions(mode="grammar", grammar=grammar.read_text())
        elif keywords:
            opts = RecognizerOptions(
                mode="keywords", keywords=tuple(k.strip() for k in keywords.split(",") if k.strip())
            )
        else:
            opts = RecognizerOptions()
        pcm = load_wav(file)
        t0 = time.perf_counter()
        eng = get_engine(name, paths.get(name), workers=cfg.pool_workers)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        stream = eng.open(opts)
        for f in frames(pcm):
            stream.feed(f)
        result = stream.finish()
        wall_s = time.perf_counter() - t1
    except (OSError, ValueError, RecognizerError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(result.text)
    t = result.timings
    typer.echo(
        f"engine={name} confidence={result.confidence:.2f} audio={t['audio_s']:.2f}s "
        f"load={load_s:.2f}s decode={wall_s:.3f}s "
        f"final_after_last_frame={t['finish_s'] * 1000:.0f}ms "
        f"rtf={t['rtf']:.3f}",
        err=True,
    )
    for alt in result.alternatives:
        typer.echo(f"alt: {alt}", err=True)


@tts_app.command("say")
def say(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="prompt text")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output WAV (8 kHz mono s16)")],
    voice: Annotated[
        str | None, typer.Option("--voice", help="piper .onnx, piper:PATH, espeak:VOICE, cmn")
    ] = None,
    language: Annotated[str | None, typer.Option("--language", help="e.g. en-US, cmn")] = None,
    speed: Annotated[float, typer.Option(help="1.0 normal, >1 faster")] = 1.0,
) -> None:
    """Render TEXT to an 8 kHz WAV, through the prompt cache."""
    from asr.tts import TtsError, TtsService  # noqa: PLC0415
    from audio.wavio import write_wav  # noqa: PLC0415 - keep `ivr --help` fast

    s = _settings(ctx)
    svc = TtsService(
        s.storage.prompt_cache_dir,
        s.tts.piper_voice_path,
        s.tts.espeak_voice,
        mandarin_voice=s.tts.mandarin_voice,
        memory_items=s.tts.memory_prompts,
    )
    try:
        r = svc.render(text, voice=voice, language=language, speed=speed)
    except TtsError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    write_wav(out, r.pcm, 8000)
    typer.echo(
        f"{out}: {r.duration_s:.2f}s engine={r.engine} voice={Path(r.voice).name} "
        f"cache={'hit' if r.cache_hit else 'miss'} render={r.render_s * 1000:.0f}ms"
    )
