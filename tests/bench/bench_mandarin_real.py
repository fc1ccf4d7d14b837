"""Mandarin on real voices: character error rate, menu intents, nomatch, digit strings, latency.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_mandarin_real DIR
        [--extract GITDIR] [--kinds song,place,...] [--errors] [--clips OUT]

The recordings are listed in ``tests/fixtures/speech/zh_real_manifest.json``: real people's
Mandarin found committed in public GitHub repositories, each with the repository, commit, path,
git blob id, transcript, speaker and licence (AISHELL sample recordings of two speakers: device
commands, song and place requests, phone numbers, news sentences; one AISHELL-1 test sentence
each of two more speakers, one AISHELL-2 command, one WenetSpeech web-video line and one meeting
turn). The audio is not in this repository and CI cannot fetch it: this is a benchmark, run by
hand on a machine that has the data. To get it (once, with network; a few MB)::

    mkdir -p ~/zh-git && cd ~/zh-git
    for r in QianZ423/kaldi-asr-aishell-sample FireRedTeam/FireRedASR wenet-e2e/wenet; do
        git clone --filter=blob:none --no-checkout https://github.com/$r ${r/\\//+}; done
    .venv/bin/python -m tests.bench.bench_mandarin_real DIR --extract ~/zh-git

``--extract`` runs ``git show COMMIT:PATH`` in ``GITDIR/owner+name`` (a clone, or a bare
mirror with a ``repo/`` git directory) for every manifest file, writes ``DIR/<id>.wav`` and
stops; every later run checks each file against its blob id, so a file that changed upstream
is refused rather than scored against a transcript that no longer fits it.

Every file goes through the telephone band (8 kHz, G.711 mu-law round trip, tests/speech_data)
and then through the recogniser the engine uses for Mandarin: whisper-base, opened with
``RecognizerOptions(language="zh-CN")`` and fed 20 ms frames exactly as a call turn is (free text
for the character error rate; ``mode="keywords"`` as the menu node asks, the result mapped back
to the keyword as written as asr/listen.py does; the Mandarin digit grammar as a voice-digits
collect asks, then ``digits_from_speech``).

* CER: simplified characters, punctuation and spaces dropped, 幺/两 folded to 一/二 (both sides,
  asr/textnorm.tokens). ``raw``: numerals as written ("29" against 二十九 costs 3 edits);
  ``numerals read``: each Arabic numeral in the hypothesis read out the way that fits the
  reference best, as a quantity (29 -> 二十九) or digit by digit (2014 -> 二零一四).
  Fillers in the reference (嗯, 呃) count: whisper drops them.
* Menus: short requests (commands, song titles, place names) are asked whole, in a 5-phrase
  menu of their kind that offers the phrase (must be that phrase) and in one that does not
  (must be nomatch); a distractor is never part of the utterance's own text. Sentences give a
  phrase clip (a keyword cut out by whisper's forced alignment of the reference transcript on
  the clean audio, +-80 ms, then 0.3 s / 0.25 s of -60 dBFS line noise as VAD pre-roll and
  hang-over) asked the same way, and the whole sentence is asked in the IVR business menu,
  which does not offer it (must be nomatch).
* Latency: the wall time of ``finish()`` (the decode after the endpoint, plus forced scoring
  for menus) per turn, p50/p95, with the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import random
import statistics
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.grammar import as_written, digit_string_jsgf
from asr.recognizer import FinalResult, RecognizerOptions
from asr.textnorm import digits_from_speech, to_simplified, token_variants, tokens
from audio.pcm import Pcm, frames
from audio.resample import resample
from audio.wavio import read_wav
from tests import speech_data as sd
from tests.bench.bench_fsdd import caller_turn, wilson

MANIFEST = sd.ROOT / "tests" / "fixtures" / "speech" / "zh_real_manifest.json"
REQUEST_KINDS = ("setting", "song", "place", "command")
MENU_SIZE = 5
CLIP_PAD_S = 0.08


@dataclass
class Rec:
    """One manifest file, loaded: its telephone-band audio and what it says."""

    id: str
    speaker: str
    kind: str
    text: str
    phrase: str | None
    pcm8k: Pcm
    pcm16k_clean: Pcm = field(repr=False)


@dataclass
class Turn:
    rec: str
    speaker: str
    task: str  # free | menu_in | menu_out | sentence_out | digits
    expected: str | None
    got: str
    status: str
    heard: str
    seconds: float


def blob_id(data: bytes) -> str:
    """git's blob id (sha1 of "blob <size>\\0" + bytes): the manifest's check that a file is
    the one whose transcript it lists."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def manifest() -> dict[str, Any]:
    return dict(json.loads(MANIFEST.read_text(encoding="utf-8")))


def extract(gitdir: Path, out: Path) -> None:
    """``git show commit:path`` from local clones into ``out/<id>.wav`` (no network here)."""
    m = manifest()
    out.mkdir(parents=True, exist_ok=True)
    for f in m["files"]:
        src = m["sources"][f["source"]]
        repo = gitdir / src["repo"].replace("/", "+")
        git = repo / "repo" if (repo / "repo").is_dir() else repo
        data = subprocess.run(["git", "-C", str(git), "show", f"{src['commit']}:{f['path']}"],
                              capture_output=True, check=True).stdout
        (out / f"{f['id']}.wav").write_bytes(data)
    print(f"extracted {len(m['files'])} files into {out}")


def load(directory: Path, kinds: set[str] | None) -> list[Rec]:
    recs = []
    for f in manifest()["files"]:
        if kinds and f["kind"] not in kinds:
            continue
        path = directory / f"{f['id']}.wav"
        if not path.exists():
            raise SystemExit(f"{path} missing: see --extract in this module's docstring")
        if blob_id(path.read_bytes()) != f["blob"]:
            raise SystemExit(f"{path}: not the file the manifest lists (blob id differs)")
        pcm, rate = read_wav(path)
        clean = pcm if rate == 16000 else resample(pcm, rate, 16000)
        recs.append(Rec(f["id"], f["speaker"], f["kind"], f["text"], f["phrase"],
                        sd.phone(pcm, rate), clean))
    return recs


def cer_numerals_read(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference characters) with each hypothesis numeral read the way that fits best
    (asr/textnorm.token_variants: quantity or digit by digit); the reference is characters."""
    ref = "".join(tokens(reference))
    best = min(sd.edit_distance(ref, "".join(v)) for v in token_variants(hypothesis, True))
    return best, len(ref)


def run_turn(eng: Any, pcm8k: Pcm, options: RecognizerOptions) -> tuple[FinalResult, float]:
    """One caller turn as the engine runs it: 20 ms frames fed, then ``finish()`` timed."""
    stream = eng.open(options)
    for f in frames(pcm8k):
        stream.feed(f)
    t0 = time.perf_counter()
    r = stream.finish()
    seconds = time.perf_counter() - t0
    stream.close()
    if options.mode == "keywords":  # as asr/listen.py hands it to the menu node
        r = dataclasses.replace(r, text=as_written(options.keywords, r.text))
    return r, seconds


def phrase_clip(eng: Any, rec: Rec, seed: int) -> Pcm | None:
    """The phrase cut out of a sentence: whisper's forced alignment of the reference on the
    clean audio gives each character's time (Chinese aligns per character); the telephone
    audio is cut there +-80 ms and padded as a caller turn. None: phrase not in the text."""
    assert rec.phrase is not None
    ref = "".join(tokens(rec.text))
    at = ref.find(rec.phrase)
    if at < 0:
        return None
    x = rec.pcm16k_clean.astype(np.float32) / 32768
    encoded, n_frames = eng._encode(x)
    tok = eng.tokenizer("zh")
    words = eng.model.find_alignment(tok, [tok.encode(ref)], encoded, n_frames)[0]
    chars: list[tuple[float, float]] = []
    for w in words:
        chars += [(float(w["start"]), float(w["end"]))] * len(w["word"].strip())
    if len(chars) != len(ref):
        return None
    start = max(0.0, chars[at][0] - CLIP_PAD_S)
    end = chars[at + len(rec.phrase) - 1][1] + CLIP_PAD_S
    cut = rec.pcm8k[int(start * 8000) : int(end * 8000)]
    return caller_turn(cut, 8000, 0.3, 0.25, noise_dbfs=-60.0, seed=seed)


def menus(rec: Rec, pool: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """(a menu with the phrase, one without): distractors of the same kind that neither
    contain nor are contained in the phrase, and are not in the utterance's own text."""
    assert rec.phrase is not None
    text = "".join(tokens(rec.text))
    others = sorted({p for p in pool if p != rec.phrase and p not in rec.phrase
                     and rec.phrase not in p and p not in text})
    with_it = [rec.phrase, *rng.sample(others, MENU_SIZE - 1)]
    rng.shuffle(with_it)
    return with_it, rng.sample(others, MENU_SIZE)


def pct(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k}/{n} {k / max(1, n):6.1%} [{lo:5.1%}, {hi:5.1%}]"


def report_menus(label: str, turns: list[Turn]) -> None:
    ins = [t for t in turns if t.task == "menu_in"]
    outs = [t for t in turns if t.task in ("menu_out", "sentence_out")]
    right = sum(t.status == "ok" and t.got == t.expected for t in ins)
    rej = sum(t.status != "ok" for t in ins)
    wrong = sum(t.status == "ok" and t.got != t.expected for t in ins)
    nom = sum(t.status != "ok" for t in outs)
    print(f"  {label:28s} right {pct(right, len(ins))} | false reject {pct(rej, len(ins))} | "
          f"wrong {pct(wrong, len(ins))} | nomatch {pct(nom, len(outs))}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("directory", type=Path, help="the manifest's files as <id>.wav")
    ap.add_argument("--extract", type=Path, help="fill DIR from local git clones here, stop")
    ap.add_argument("--kinds", default="", help="only these kinds (comma list)")
    ap.add_argument("--errors", action="store_true", help="print every wrong turn")
    ap.add_argument("--clips", type=Path, help="write the cut phrase clips here (8 kHz WAV)")
    args = ap.parse_args()
    if args.extract:
        extract(args.extract, args.directory)
        return
    from asr.models import get_engine, load_seconds

    recs = load(args.directory, set(args.kinds.split(",")) - {""} or None)
    eng: Any = get_engine("whisper-base", workers=2)
    load0 = os.getloadavg()
    audio_s = sum(len(r.pcm8k) for r in recs) / 8000
    speakers = sorted({r.speaker for r in recs})
    print(f"{len(recs)} files, {audio_s:.0f} s of audio, {len(speakers)} speakers; whisper-base "
          f"loaded in {next(iter(load_seconds.values()), 0):.1f} s; load {load0[0]:.1f}")
    zh = "zh-CN"
    turns: list[Turn] = []
    cer_rows: list[tuple[Rec, str, int, int, int]] = []  # rec, heard, raw edits, read edits, n
    traditional = 0
    for r in recs:  # free text: the character error rate
        res, s = run_turn(eng, r.pcm8k, RecognizerOptions(mode="free", language=zh))
        traditional += to_simplified(res.text) != res.text
        raw, n = sd.cer(r.text, res.text)
        read, _ = cer_numerals_read(r.text, res.text)
        cer_rows.append((r, res.text, raw, read, n))
        turns.append(Turn(r.id, r.speaker, "free", r.text, res.text, res.status, res.heard, s))
    rng = random.Random(31)
    pools: dict[str, list[str]] = defaultdict(list)
    for r in recs:
        if r.phrase:
            pools["request" if r.kind == "command" else r.kind].append(r.phrase)
    pools["request"] += list(sd.ZH_MENU[:5])  # the lone AISHELL-2 command among IVR phrases
    clip_lens: list[float] = []
    for n, r in enumerate(recs):
        if r.kind == "digits":
            g = digit_string_jsgf(zh)
            res, s = run_turn(eng, r.pcm8k, RecognizerOptions(mode="grammar", grammar=g,
                                                              language=zh))
            turns.append(Turn(r.id, r.speaker, "digits", digits_from_speech(r.text),
                              digits_from_speech(res.text) if res.status == "ok" else "",
                              res.status, res.heard, s))
            continue
        if r.phrase is None:
            continue
        if r.kind == "sentence":
            business = tuple(p for p in sd.ZH_MENU if p not in r.text)
            res, s = run_turn(eng, r.pcm8k, RecognizerOptions(mode="keywords",
                                                              keywords=business, language=zh))
            turns.append(Turn(r.id, r.speaker, "sentence_out", None, res.text, res.status,
                              res.heard, s))
            audio = phrase_clip(eng, r, seed=n)
            if audio is None:
                print(f"  {r.id}: phrase {r.phrase!r} not aligned, skipped")
                continue
            clip_lens.append(len(audio) / 8000)
            if args.clips:
                from audio.wavio import write_wav

                args.clips.mkdir(parents=True, exist_ok=True)
                write_wav(args.clips / f"{r.id}_{r.phrase}.wav", audio, 8000)
        else:
            audio = r.pcm8k
        pool = pools["request" if r.kind == "command" else r.kind]
        with_it, without = menus(r, pool, rng)
        for task, menu, expected in (("menu_in", with_it, r.phrase), ("menu_out", without, None)):
            res, s = run_turn(eng, audio, RecognizerOptions(mode="keywords",
                                                            keywords=tuple(menu), language=zh))
            turns.append(Turn(r.id, r.speaker, task, expected, res.text, res.status, res.heard,
                              s))
    load1 = os.getloadavg()

    print("\nCER (free text, whisper-base, G.711):   raw | numerals read | characters")
    for spk in [*speakers, "all"]:
        rows = [c for c in cer_rows if spk in ("all", c[0].speaker)]
        n = sum(c[4] for c in rows)
        print(f"  {spk:28s} {sum(c[2] for c in rows) / n:6.1%} | "
              f"{sum(c[3] for c in rows) / n:6.1%} | {n} ({len(rows)} files)")
    for kind in sorted({c[0].kind for c in cer_rows}):
        rows = [c for c in cer_rows if c[0].kind == kind]
        n = sum(c[4] for c in rows)
        print(f"  kind {kind:23s} {sum(c[2] for c in rows) / n:6.1%} | "
              f"{sum(c[3] for c in rows) / n:6.1%} | {n} ({len(rows)} files)")
    print(f"  hypotheses with traditional characters: {traditional}/{len(cer_rows)}")

    print("\nMenus (keywords, as the menu node asks; forced scoring, shipped model):")
    for spk in speakers:
        if any(t.speaker == spk and t.task.startswith(("menu", "sentence")) for t in turns):
            report_menus(spk, [t for t in turns if t.speaker == spk])
    for kind in (*REQUEST_KINDS, "sentence"):
        ids = {r.id for r in recs if r.kind == kind}
        if ids:
            label = "sentence phrase clips" if kind == "sentence" else f"kind {kind}"
            report_menus(label, [t for t in turns if t.rec in ids])
    report_menus("all", turns)
    if clip_lens:
        print(f"  phrase clips: {len(clip_lens)}, {statistics.mean(clip_lens):.2f} s mean "
              f"(with 0.55 s of padding)")

    digit_turns = [t for t in turns if t.task == "digits"]
    if digit_turns:
        print("\nDigit strings (Mandarin digit grammar, then digits_from_speech):")
        for spk in sorted({t.speaker for t in digit_turns}):
            ts = [t for t in digit_turns if t.speaker == spk]
            exact = sum(t.got == t.expected for t in ts)
            nom = sum(t.status != "ok" for t in ts)
            edits = sum(sd.edit_distance(t.expected or "", t.got) for t in ts)
            n = sum(len(t.expected or "") for t in ts)
            print(f"  {spk:28s} exact {pct(exact, len(ts))} | nomatch {nom}/{len(ts)} | "
                  f"digit error rate {edits / n:.1%} ({n} digits)")

    print("\nTurn latency (finish(): decode after the endpoint, + forced scoring for menus):")
    for task in ("free", "menu_in", "menu_out", "sentence_out", "digits"):
        xs = [t.seconds for t in turns if t.task == task]
        if xs:
            print(f"  {task:12s} n={len(xs):3d} p50 {statistics.median(xs) * 1000:5.0f} ms  "
                  f"p95 {float(np.percentile(xs, 95)) * 1000:5.0f} ms")
    print(f"  load average {load0[0]:.1f} -> {load1[0]:.1f}")

    if args.errors:
        print("\nCER per file (raw edits / numerals-read edits / characters):")
        for r, heard, raw, read, n in cer_rows:
            print(f"   {r.id:42s} {raw:2d}/{read:2d}/{n:2d} {r.text} | {heard}")
        print("\nWrong turns:")
        for t in turns:
            bad = ((t.task == "menu_in" and (t.status != "ok" or t.got != t.expected))
                   or (t.task in ("menu_out", "sentence_out") and t.status == "ok")
                   or (t.task == "digits" and t.got != t.expected))
            if bad:
                print(f"   {t.task:12s} {t.rec:42s} expected {t.expected!s:10s} got "
                      f"{t.got!r} {t.status} heard {t.heard!r}")


if __name__ == "__main__":
    main()
