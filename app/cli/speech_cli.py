"""``ivr asr transcribe`` and ``ivr tts say``: the speech library from a shell, for ops.

``transcribe`` runs a WAV through the same path a call uses (8 kHz, 20 ms frames; the whole file is
one utterance) and prints the text with its status (``ok``, ``nomatch``: said but not in the
grammar, ``noinput``: the VAD found no speech in the file), load, decode and real-time-factor
figures, or with ``--json`` the result with alternatives and word timings, so an operator can
check a model, a grammar or a recording before a flow uses it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli.context import settings_of

asr_app = typer.Typer(help="Speech recognition tools.", no_args_is_help=True)
tts_app = typer.Typer(help="Prompt text-to-speech tools.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(asr_app, name="asr")
    app.add_typer(tts_app, name="tts")


NOINPUT_MIN_SPEECH_FRAMES = 5  # 100 ms of VAD speech: less than that in a file is "noinput"


def _engine_for(engine: str | None, language: str, grammar: bool, default: str) -> str:
    if engine:
        return engine
    lang = language.lower()
    if lang in ("zh", "auto", "cmn", "yue") or lang.startswith("zh"):
        return "whisper-base"
    if lang.startswith("ko"):
        return "vosk"
    return default if grammar else "whisper"


@asr_app.command("transcribe")
def transcribe(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="16-bit PCM WAV, any rate")],
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="whisper, whisper-base, pocketsphinx, vosk (default: by "
                     "language: zh/auto -> whisper-base, en -> whisper)"),
    ] = None,
    grammar: Annotated[
        Path | None,
        typer.Option("--grammar", help="JSGF file, JSON phrase list or one phrase per line"),
    ] = None,
    keywords: Annotated[
        str | None, typer.Option("--keywords", help="comma-separated phrases (spotted)")
    ] = None,
    language: Annotated[
        str, typer.Option("--language", help="en, zh, auto (detect zh/en), or a code")
    ] = "en",
    as_json: Annotated[
        bool, typer.Option("--json", help="print status/text/confidence/alternatives/words")
    ] = False,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="nomatch below this confidence")
    ] = None,
) -> None:
    """Recognise FILE as one caller turn (8 kHz, 20 ms frames, as on a call)."""
    import json  # noqa: PLC0415

    from asr.models import get_engine  # noqa: PLC0415
    from asr.recognizer import RecognizerError, RecognizerOptions  # noqa: PLC0415
    from asr.vad import VadError, make_vad  # noqa: PLC0415
    from audio.pcm import frames  # noqa: PLC0415 - keep `ivr --help` fast
    from audio.wavio import load_wav  # noqa: PLC0415

    cfg = settings_of(ctx).asr
    name = _engine_for(engine, language, bool(grammar or keywords), cfg.default_engine)
    paths = {
        "pocketsphinx": cfg.pocketsphinx_model_path,
        "whisper": cfg.whisper_model_path,
        "whisper-base": cfg.whisper_base_model_path,
        "vosk": cfg.vosk_model_path,
    }
    lang = {"en": "en-US", "zh": "zh-CN"}.get(language.lower(), language)
    common = {"language": lang, "words": True,
              "nomatch_threshold": threshold if threshold is not None else cfg.nomatch_threshold,
              "grammar_prompt": cfg.grammar_prompt}
    try:
        if grammar is not None:
            opts = RecognizerOptions(mode="grammar", grammar=grammar.read_text(encoding="utf-8"),
                                     **common)  # type: ignore[arg-type]
        elif keywords:
            opts = RecognizerOptions(
                mode="keywords",
                keywords=tuple(k.strip() for k in keywords.split(",") if k.strip()),
                **common,  # type: ignore[arg-type]
            )
        else:
            opts = RecognizerOptions(**common)  # type: ignore[arg-type]
        pcm = load_wav(file)
        chunks = frames(pcm)
        vad = make_vad(cfg.vad, cfg.vad_model_path)
        speech_frames = sum(vad.prob(f) >= 0.5 for f in chunks)
        t0 = time.perf_counter()
        eng = get_engine(name, paths.get(name), workers=cfg.pool_workers)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        stream = eng.open(opts)
        for f in chunks:
            stream.feed(f)
        result = stream.finish()
        wall_s = time.perf_counter() - t1
    except (OSError, ValueError, RecognizerError, VadError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    status = result.status
    if speech_frames < NOINPUT_MIN_SPEECH_FRAMES and not result.text:
        status = "noinput"  # the VAD heard no speech in the file at all
    t = result.timings
    if as_json:
        typer.echo(json.dumps({
            "status": status,
            "text": result.text,
            "confidence": round(result.confidence, 4),
            "alternatives": list(result.alternatives),
            "words": [{"w": w.w, "start": w.start, "end": w.end, "conf": w.conf}
                      for w in result.words],
            "heard": result.heard,
            "language": result.language,
            "engine": name,
            "audio_s": round(t["audio_s"], 3),
            "decode_s": round(wall_s, 3),
        }, ensure_ascii=False))
        return
    typer.echo(result.text)
    typer.echo(
        f"status={status} engine={name} confidence={result.confidence:.2f} "
        f"audio={t['audio_s']:.2f}s load={load_s:.2f}s decode={wall_s:.3f}s "
        f"final_after_last_frame={t['finish_s'] * 1000:.0f}ms "
        f"rtf={t['rtf']:.3f}" + (f" language={result.language}" if result.language else ""),
        err=True,
    )
    if result.heard and result.heard != result.text:
        typer.echo(f"heard: {result.heard}", err=True)
    for alt in result.alternatives:
        typer.echo(f"alt: {alt}", err=True)


@tts_app.command("say")
def say(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="prompt text")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output WAV (8 kHz mono s16)")],
    voice: Annotated[
        str | None,
        typer.Option("--voice", help="piper .onnx, piper:PATH, espeak:VOICE, cmn, kokoro:VOICE"),
    ] = None,
    language: Annotated[str | None, typer.Option("--language", help="e.g. en-US, cmn")] = None,
    speed: Annotated[float, typer.Option(help="1.0 normal, >1 faster")] = 1.0,
) -> None:
    """Render TEXT to an 8 kHz WAV, through the prompt cache."""
    from asr.tts import TtsError, TtsService  # noqa: PLC0415
    from audio.wavio import write_wav  # noqa: PLC0415 - keep `ivr --help` fast

    s = settings_of(ctx)
    svc = TtsService(
        s.storage.prompt_cache_dir,
        s.tts.piper_voice_path,
        s.tts.espeak_voice,
        mandarin_voice=s.tts.mandarin_voice,
        memory_items=s.tts.memory_prompts,
        kokoro_model_path=s.tts.kokoro_model_path,
        kokoro_threads=s.tts.kokoro_threads,
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
