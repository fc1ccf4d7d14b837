"""Kokoro's Mandarin front end and the service's voice choice (no model run: fast).

The round trip through the recogniser, with the real model, is in
tests/integration/test_tts_mandarin.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asr.tts import TtsError, TtsService, kokoro


@pytest.mark.parametrize(("text", "spoken"), [
    ("请按1", "请按一"),
    ("转人工请按0，重听请按2", "转人工请按零，重听请按二"),
    ("本期燃气费128元", "本期燃气费一百二十八元"),
    ("余额35.6元", "余额三十五点六元"),
    ("客服电话10086", "客服电话幺零零八六"),  # identifiers digit by digit, 1 as 幺
    ("验证码0412", "验证码零四幺二"),
    ("2026年11月30日", "二零二六年十一月三十日"),
    ("按#号键结束", "按井号键结束"),
    ("优惠20%，利率3.5％", "优惠百分之二十，利率百分之三点五"),
    ("请按１", "请按一"),  # full-width digits count as digits
    ("没有数字。", "没有数字。"),
])
def test_numerals_and_symbols_are_read_out(text: str, spoken: str) -> None:
    assert kokoro.normalise_mandarin(text) == spoken


def test_phonemes_are_kokoros_symbols_with_tone_arrows() -> None:
    ph = kokoro.mandarin_phonemes("你好，转人工。")
    assert ph.startswith("ni") and ph.endswith(".")
    assert "," in ph and "，" not in ph  # full-width punctuation mapped to the model's marks
    assert "ꭧ" in ph  # zh as Kokoro's single affricate symbol, not "ʈʂ"
    assert {"↓", "↗"} <= set(ph)  # tones 3 and 2 as arrows
    assert not {"˥", "˧", "˩"} & set(ph)  # no tone letters left


def test_every_phoneme_of_a_varied_text_is_in_the_vocabulary() -> None:
    """A symbol outside the vocabulary would be dropped silently: a missing sound."""
    vocab = set(";:,.!?—…\"()“” ̃ʣʥʦʨᵝꭧAIOQSTWYᵊabcdefhijklmnopqrstuvwxyzɑɐɒæβɔɕçɖðʤəɚɛɜɟɡɥɨɪʝɯ"
                "ɰŋɳɲɴøɸθœɹɾɻʁɽʂʃʈʧʊʋʌɣɤχʎʒʔˈˌːʰʲ↓→↗↘ᵻ")
    text = ("您好，欢迎致电客户服务中心！查询话费余额请按1；办理宽带、投诉建议请按2？"
            "儿子在日本吃饭，四十四只石狮子。嗯，女士绿色。")
    ph = kokoro.mandarin_phonemes(text)
    assert set(ph) - vocab - {" "} == set()


def test_long_text_is_split_into_clauses_at_punctuation() -> None:
    ph = kokoro.mandarin_phonemes("，".join(["查询余额请按一"] * 30) + "。")
    parts = kokoro.clauses(ph, limit=kokoro.CLAUSE_TOKENS)
    assert len(parts) > 1 and all(len(p) <= kokoro.CLAUSE_TOKENS for p in parts)
    assert all(p.endswith((",", ".")) for p in parts)
    assert "".join(parts).replace(" ", "") == ph.replace(" ", "")


def test_mandarin_falls_back_to_espeak_when_kokoro_is_missing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    svc = TtsService(tmp_path, kokoro_model_path=tmp_path / "no-model")
    with caplog.at_level(logging.WARNING, logger="ivr.asr.tts"):
        assert svc.choose(None, "zh-CN") == ("espeak", "cmn")
        assert svc.choose("kokoro:zm_yunjian", None) == ("espeak", "cmn")
    assert sum("Kokoro model missing" in r.message for r in caplog.records) == 1  # once
    r = svc.render("您好，欢迎致电", language="cmn")
    assert r.engine == "espeak" and r.duration_s > 1.0


def test_mandarin_voice_choice(tmp_path: Path) -> None:
    model = tmp_path / "kokoro"
    (model / "voices").mkdir(parents=True)
    (model / kokoro.MODEL_FILE).write_bytes(b"")
    (model / "vocab.json").write_text("{}")
    svc = TtsService(tmp_path, kokoro_model_path=model)
    assert svc.choose(None, "cmn") == ("kokoro", kokoro.DEFAULT_VOICE)
    assert svc.choose("kokoro:zm_yunjian", "zh") == ("kokoro", "zm_yunjian")
    assert svc.choose("espeak:cmn", "zh") == ("espeak", "cmn")
    assert TtsService(tmp_path, mandarin_voice="cmn").choose(None, "zh") == ("espeak", "cmn")
    piper = TtsService(tmp_path, mandarin_voice="/v/zh_CN-x.onnx")
    assert piper.choose(None, "zh") == ("piper", "/v/zh_CN-x.onnx")
    # another model folder (or front end) must not reuse the other's cached audio
    other = TtsService(tmp_path, kokoro_model_path=tmp_path / "elsewhere")
    assert (svc.cache_key("kokoro", "zf_xiaoyi", 1.0, "您好")
            != other.cache_key("kokoro", "zf_xiaoyi", 1.0, "您好"))


def test_a_broken_voice_file_is_a_clear_error(tmp_path: Path) -> None:
    model = kokoro.KokoroModel(tmp_path, session=None, vocab={}, voices={})
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "zf_bad.bin").write_bytes(b"\0" * 100)
    with pytest.raises(TtsError, match=r"not a \[n, 256\] float32"):
        model.voice("zf_bad")
    with pytest.raises(TtsError, match="voice 'zf_nobody' not found.*have: zf_bad"):
        model.voice("zf_nobody")
