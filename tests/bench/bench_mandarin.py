"""Mandarin: menu intents, nomatch, character error rate and language detection (whisper-base).

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_mandarin

Audio (tests/speech_data.py, all through 8 kHz G.711): one real Mandarin voice (a voice actor's
line shipped as a reference clip in the f5-tts wheel: the only real Mandarin speech found in any
package here), the three Mandarin voice-prompt readings shipped in parrots (natural-sounding,
of undocumented origin), phrase clips cut from both, Cantonese and English clips from parrots,
the generated non-speech set, the real music/noise recordings (fetched by
scripts/fetch_test_audio.sh; singing left out), and a synthetic supplement of IVR phrases
spoken by espeak-ng (pinyin voice).
Menus: each clip's phrase among IVR business phrases (must be recognised) and the IVR phrases
alone (must be nomatch, unless the clip says one of them: 对). English free-text WER over the
labelled English recordings with whisper (tiny.en) and whisper-base is printed too.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from asr.grammar import from_phrases
from asr.nomatch import ENGINE_COEFFICIENTS, FORCED_COEFFICIENTS, calibrated, grammar_decision
from audio.resample import to_16k
from tests import speech_data as sd

# speakers whose Mandarin is a real person's voice (the parrots readings are of undocumented origin)
REAL_ZH = ("zh_f5_taiyi",)


def main() -> None:
    import argparse

    from asr.backends.whisper_forced import decide
    from asr.models import get_engine

    ap = argparse.ArgumentParser()
    ap.add_argument("--match-only", action="store_true", help="text matching alone")
    args = ap.parse_args()
    from asr.tts.service import TtsService

    eng = get_engine("whisper-base", workers=2)
    coef = ENGINE_COEFFICIENTS["whisper-base"]
    clips = sd.zh_clips()
    sents = sd.zh_sentences()
    noise = sd.non_speech()
    # real music/noise (scripts/fetch_test_audio.sh; singing left out: it has words)
    real_noise = [it for it in sd.real_non_speech() if it.kind == "non_speech"]
    tts = TtsService(None)
    synth = [sd.Item(f"espeak:{p}", sd.phone(tts.render(p, voice="espeak:cmn").pcm, 8000), p,
                     "synthetic") for p in sd.ZH_MENU]
    decoded = {}
    lat = []
    for it in clips + sents + noise + real_noise + synth:
        t0 = time.perf_counter()
        decoded[it.id] = eng.decode(to_16k(it.pcm), language="zh", nbest=4,  # type: ignore[attr-defined]
                                    keep_unsure=True)
        lat.append(time.perf_counter() - t0)
    menu = list(sd.ZH_MENU)

    def decide_with(phrases: list[str], d: object) -> tuple[str, bool]:
        """--match-only: text matching alone; default: as the menu node decides (keywords,
        forced scoring first, matching when the keyword alone does not explain the audio)."""
        hyps = list(d.hypotheses)  # type: ignore[attr-defined]
        if args.match_only:
            dec = grammar_decision(from_phrases(phrases), hyps, d.no_speech, 0.0,  # type: ignore[attr-defined]
                                   coefficients=coef)
            return dec.text, bool(dec.text) and calibrated(dec.features, coef) >= 0.5
        dec = decide(from_phrases(phrases, spotting=True), hyps, d.no_speech,  # type: ignore[attr-defined]
                     lambda sp: eng.score(d, sp), 0.5,  # type: ignore[attr-defined]
                     coefficients=FORCED_COEFFICIENTS["whisper-base"], match_coefficients=coef)
        return dec.text, dec.status == "ok"

    rows = []  # (kind, source, expected, got, ok)
    for it in clips:
        # (the IVR menu has 对: a clip that says it is in-grammar there too)
        in_menu = it.text if it.text in menu else None
        for grammar, expected in ((menu[:4] + [it.text or ""], it.text), (menu, in_menu)):
            d = decoded[it.id]
            text, ok = decide_with(grammar, d)
            rows.append(("in" if expected else "out", "clip", expected, text, ok, d,
                         it.speaker in REAL_ZH))
    for it in sents + noise:
        d = decoded[it.id]
        # menus are keywords: a phrase the sentence contains (对 in 对，这就是我) is left out
        text, ok = decide_with([p for p in menu if p not in (it.text or "")], d)
        rows.append(("out", it.kind, None, text, ok, d, False))
    for it in real_noise:
        text, ok = decide_with(menu, decoded[it.id])
        rows.append(("out", "real_non_speech", None, text, ok, decoded[it.id], False))
    for it in synth:
        d = decoded[it.id]
        text, ok = decide_with(menu, d)
        rows.append(("in", "synthetic", it.text, text, ok, d, False))

    def show(label: str, sel: list[tuple]) -> None:  # type: ignore[type-arg, unused-ignore]
        ins = [r for r in sel if r[0] == "in"]
        outs = [r for r in sel if r[0] == "out"]
        right = sum(r[4] and r[3] == r[2] for r in ins)
        rej = sum(not r[4] for r in outs)
        print(f"{label:34s} in-grammar {right}/{len(ins)} right, "
              f"false reject {sum(not r[4] for r in ins)}/{len(ins)} | nomatch {rej}/{len(outs)}")

    show("whisper-base zh clips (all)", [r for r in rows if r[1] == "clip"])
    show("whisper-base zh clips (f5: real voice)", [r for r in rows if r[1] == "clip" and r[6]])
    show("whisper-base zh clips (parrots)", [r for r in rows if r[1] == "clip" and not r[6]])
    show("whisper-base zh sentences+yue+en", [r for r in rows if r[1] == "sentence"])
    show("whisper-base noise/music", [r for r in rows if r[1] == "non_speech"])
    show("whisper-base real noise/music", [r for r in rows if r[1] == "real_non_speech"])
    show("whisper-base espeak-ng cmn (synth)", [r for r in rows if r[1] == "synthetic"])
    for r in rows:
        if (r[0] == "in" and not (r[4] and r[3] == r[2])) or (r[0] == "out" and r[4]):
            d = r[5]
            print(f"   {r[0]} {r[1]} expected {r[2]} got {r[3]!r} heard "
                  f"{d.hypotheses[0].text if d.hypotheses else ''!r}")
    edits = chars = 0
    for it in sents:
        if it.text and it.speaker.startswith("zh_"):
            d = decoded[it.id]
            e, n = sd.cer(it.text, d.hypotheses[0].text if d.hypotheses else "")
            edits, chars = edits + e, chars + n
            print(f"   CER {it.id}: {e}/{n}  {d.hypotheses[0].text if d.hypotheses else ''}")
    print(f"Mandarin CER (all readings): {edits / chars:.1%} ({chars} characters)")
    se = sc = 0
    for it in synth:
        d = decoded[it.id]
        e, n = sd.cer(it.text or "", d.hypotheses[0].text if d.hypotheses else "")
        se, sc = se + e, sc + n
    print(f"espeak-ng cmn prompts round trip CER: {se / sc:.1%} ({sc} characters)")
    # language detection on whole turns
    correct = total = 0
    for it in sents + [s for s in sd.sentences() if s.text][:12]:
        x = to_16k(it.pcm).astype(np.float32) / 32768
        enc, _ = eng._encode(x[: 16000 * 8])  # type: ignore[attr-defined]
        lang, _p = eng.detect(enc, ("zh", "en"))  # type: ignore[attr-defined]
        chinese = it.speaker.startswith(("zh", "yue"))
        want = "zh" if chinese else "en"
        correct += lang == want
        total += 1
    print(f"language detection zh/en: {correct}/{total} right")
    print(f"decode p50 {statistics.median(lat) * 1000:.0f} ms "
          f"p95 {np.percentile(lat, 95) * 1000:.0f} ms (whisper-base, 2 threads)")
    for name in ("whisper", "whisper-base"):
        e2 = get_engine(name, workers=2)
        edits = words = 0
        for it in sd.sentences():
            if it.text:
                d = e2.decode(to_16k(it.pcm), language="en", nbest=1)  # type: ignore[attr-defined]
                e, n = sd.wer(it.text, d.hypotheses[0].text if d.hypotheses else "")
                edits, words = edits + e, words + n
        print(f"English free-text WER {name}: {edits / words:.1%} ({words} words, "
              f"{sum(1 for s in sd.sentences() if s.text)} real recordings, G.711)")


if __name__ == "__main__":
    main()
