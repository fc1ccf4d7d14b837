"""``ivr tts say`` and ``ivr asr transcribe`` end to end: render a prompt, recognise it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from audio.wavio import read_wav

pytestmark = [pytest.mark.models]


def run(args: list[str], tmp_path: Path) -> tuple[int, str, str]:
    env = {"IVR_STORAGE__PROMPT_CACHE_DIR": str(tmp_path / "prompts")}
    r = CliRunner().invoke(app, args, env=env)
    return r.exit_code, r.stdout, r.stderr


def test_tts_say_then_transcribe_with_grammar(tmp_path: Path) -> None:
    wav = tmp_path / "p.wav"
    code, out, _ = run(["tts", "say", "technical support", "-o", str(wav)], tmp_path)
    assert code == 0 and "engine=piper" in out and "cache=miss" in out
    pcm, rate = read_wav(wav)
    assert rate == 8000 and len(pcm) > 4000
    code, out, _ = run(["tts", "say", "technical support", "-o", str(wav)], tmp_path)
    assert "cache=hit" in out
    gram = tmp_path / "menu.jsgf"
    gram.write_text("#JSGF V1.0;\ngrammar m;\npublic <m> = billing | sales | technical support ;\n")
    code, out, err = run(["asr", "transcribe", str(wav), "--grammar", str(gram)], tmp_path)
    assert code == 0, err
    assert out.strip() == "technical support"
    assert "engine=pocketsphinx" in err and "rtf=" in err


def test_tts_mandarin_and_whisper_transcribe(tmp_path: Path) -> None:
    wav = tmp_path / "zh.wav"
    code, out, _ = run(["tts", "say", "您好", "-o", str(wav), "--language", "cmn"], tmp_path)
    assert code == 0 and "engine=espeak" in out and "voice=cmn" in out
    en = tmp_path / "en.wav"
    run(["tts", "say", "I want to pay my bill", "-o", str(en)], tmp_path)
    code, out, err = run(["asr", "transcribe", str(en), "--engine", "whisper"], tmp_path)
    assert code == 0 and "pay my bill" in out.lower(), out + err


def test_transcribe_errors_are_precise(tmp_path: Path) -> None:
    code, _, err = run(["asr", "transcribe", str(tmp_path / "missing.wav")], tmp_path)
    assert code == 1 and "missing.wav" in err
    wav = tmp_path / "x.wav"
    run(["tts", "say", "yes", "-o", str(wav), "--voice", "espeak:en-us"], tmp_path)
    code, _, err = run(["asr", "transcribe", str(wav), "--keywords", "yes,qqqzx"], tmp_path)
    assert code == 1 and "'qqqzx' is not in the pronunciation dictionary" in err
    code, _, err = run(["asr", "transcribe", str(wav), "--engine", "nope"], tmp_path)
    assert code == 1 and "unknown engine" in err
