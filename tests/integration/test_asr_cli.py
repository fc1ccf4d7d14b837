"""``ivr tts say`` and ``ivr asr transcribe`` end to end: render a prompt, recognise it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from audio.wavio import read_wav, write_wav

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
    assert "status=ok" in err and "engine=whisper" in err and "rtf=" in err
    code, out, err = run(["asr", "transcribe", str(wav), "--grammar", str(gram),
                          "--engine", "pocketsphinx"], tmp_path)
    assert code == 0 and out.strip() == "technical support", err


def test_tts_mandarin_and_whisper_transcribe(tmp_path: Path) -> None:
    wav = tmp_path / "zh.wav"
    code, out, _ = run(["tts", "say", "您好，欢迎致电。", "-o", str(wav), "--language", "cmn"],
                       tmp_path)
    assert code == 0 and "engine=kokoro" in out and "voice=zf_xiaobei" in out, out
    code, out, err = run(["asr", "transcribe", str(wav), "--language", "zh"], tmp_path)
    assert code == 0 and "欢迎" in out, out + err
    en = tmp_path / "en.wav"
    run(["tts", "say", "I want to pay my bill", "-o", str(en)], tmp_path)
    code, out, err = run(["asr", "transcribe", str(en), "--engine", "whisper"], tmp_path)
    assert code == 0 and "pay my bill" in out.lower(), out + err


def test_transcribe_errors_are_precise(tmp_path: Path) -> None:
    code, _, err = run(["asr", "transcribe", str(tmp_path / "missing.wav")], tmp_path)
    assert code == 1 and "missing.wav" in err
    wav = tmp_path / "x.wav"
    run(["tts", "say", "yes", "-o", str(wav), "--voice", "espeak:en-us"], tmp_path)
    code, _, err = run(["asr", "transcribe", str(wav), "--keywords", "yes,qqqzx",
                        "--engine", "pocketsphinx"], tmp_path)
    assert code == 1 and "'qqqzx' is not in the pronunciation dictionary" in err
    bad = tmp_path / "bad.jsgf"
    bad.write_text("#JSGF V1.0;\ngrammar b;\npublic <a> = ( yes | no ;\n")
    code, _, err = run(["asr", "transcribe", str(wav), "--grammar", str(bad)], tmp_path)
    assert code == 1 and "grammar: missing ')'" in err, err
    undefined = tmp_path / "undef.jsgf"
    undefined.write_text("#JSGF V1.0;\ngrammar b;\npublic <a> = yes | <nope>;\n")
    code, _, err = run(["asr", "transcribe", str(wav), "--grammar", str(undefined)], tmp_path)
    assert code == 1 and "rule <nope> is used but not defined" in err, err
    code, _, err = run(["asr", "transcribe", str(wav), "--engine", "nope"], tmp_path)
    assert code == 1 and "unknown engine" in err


def test_transcribe_json_on_real_speech_nomatch_and_noinput(tmp_path: Path) -> None:
    """A real recording ("go forward ten meters") against a grammar that has it, one that does
    not, and a silent file: ok with words and timings, nomatch with what was heard, noinput."""
    import json

    from tests.speech_data import REAL_DIR

    wav = REAL_DIR / "ps_goforward.wav"
    gram = tmp_path / "moves.jsgf"
    gram.write_text("#JSGF V1.0;\ngrammar m;\npublic <m> = go ( forward | backward ) "
                    "( one | two | five | ten ) meters ;\n")
    code, out, err = run(["asr", "transcribe", str(wav), "--grammar", str(gram), "--json"],
                         tmp_path)
    assert code == 0, err
    r = json.loads(out)
    assert r["status"] == "ok" and r["text"] == "go forward ten meters", r
    assert 0.5 <= r["confidence"] <= 1.0
    words = r["words"]
    assert [w["w"].lower() for w in words][:2] == ["go", "forward"]
    assert all(0 <= w["start"] <= w["end"] <= 3.0 for w in words)
    menu = tmp_path / "menu.txt"
    menu.write_text("billing\ntechnical support\nopening hours\n")
    code, out, _ = run(["asr", "transcribe", str(wav), "--grammar", str(menu), "--json"],
                       tmp_path)
    r = json.loads(out)
    assert r["status"] == "nomatch" and r["text"] == "" and "forward" in r["heard"].lower(), r
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, np.zeros(16000, np.int16))
    code, out, _ = run(["asr", "transcribe", str(quiet), "--grammar", str(menu), "--json"],
                       tmp_path)
    assert json.loads(out)["status"] == "noinput"


def test_transcribe_mandarin_and_auto_language(tmp_path: Path) -> None:
    import json

    from tests.speech_data import REAL_DIR

    wav = REAL_DIR / "zh_shenyi.wav"
    code, out, err = run(["asr", "transcribe", str(wav), "--language", "auto", "--json"],
                         tmp_path)
    assert code == 0, err
    r = json.loads(out)
    assert r["language"] == "zh" and r["engine"] == "whisper-base"
    assert "人生的路" in r["text"] and "執" not in r["text"]  # simplified characters
    menu = tmp_path / "zh.txt"
    menu.write_text("查询余额\n人工服务\n人生的路\n", encoding="utf-8")
    code, out, _ = run(["asr", "transcribe", str(wav), "--language", "zh", "--keywords",
                        "查询余额,人生的路", "--json"], tmp_path)
    r = json.loads(out)
    assert r["status"] == "ok" and r["text"] == "人生的路", r
