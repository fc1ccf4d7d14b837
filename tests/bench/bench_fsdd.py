"""Spoken digits from six speakers the confidence model never saw: the Free Spoken Digit Dataset.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_fsdd DIR
        [--engines whisper,whisper-base] [--per 5] [--errors] [--dump trials.jsonl]
        [--before 0.3 --after 0.25 --noise-dbfs -60 --level-dbfs -26] [--prompt] [--turn-cpu]
        [--bare-scoring] [--extra-out]

DIR holds FSDD's ``recordings/`` files (``{digit}_{speaker}_{index}.wav``, 8 kHz mono; FSDD,
github.com/Jakobovski/free-spoken-digit-dataset, CC-BY-SA 4.0, speakers george, jackson, lucas,
nicolas, theo, yweweler). The audio is not in this repository and CI cannot fetch it (GitHub only):
this is a benchmark, run by hand on a machine that has the data.

FSDD files are trimmed to the word. A caller's turn is not: the engine hands the recogniser the
VAD's pre-roll (300 ms) before the speech and the endpoint's hang-over after it, over line noise;
so each file gets ``--before``/``--after`` seconds of low line noise (``--noise-dbfs``, also laid
under the word) and then goes through 8 kHz G.711 mu-law like the real set (tests/speech_data.py).

Each recording (indices ``0 .. per-1`` of each speaker and digit; FSDD's own test split is 0-4)
is asked as bench_grammar asks a real clip: in the digits grammar and in one of the bench's
5-phrase menus that offers its digit (must be that digit), and in one of the bench's menus that
does not (must be ``nomatch``). The decision is the shipped model's (asr/nomatch.py), untouched:
these speakers are held out by construction. Totals carry a 95 % Wilson interval over trials;
the per-speaker rows show how much of the spread is between speakers.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.grammar import compile_cached
from audio.pcm import Pcm, to_int16
from audio.resample import to_16k
from audio.wavio import read_wav
from tests import speech_data as sd
from tests.bench.bench_grammar import (
    Trial,
    add_trial_args,
    print_summary,
    run_whisper,
    summary,
)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FILE_RE = re.compile(r"^([0-9])_([a-z]+)_([0-9]+)\.wav$")
Z95 = 1.959964
CUT_EDGE_DB = -15.0  # a first or last 20 ms frame louder than this (re the peak): cut mid-sound


@dataclass(frozen=True, slots=True, order=True)
class FsddFile:
    digit: int
    speaker: str
    index: int

    @property
    def word(self) -> str:
        return DIGIT_WORDS[self.digit]


def parse_name(name: str) -> FsddFile | None:
    """``7_jackson_32.wav`` -> FsddFile(7, "jackson", 32); anything else (README, a stray
    file, a two-digit label) -> None, so a directory with extras still loads."""
    m = FILE_RE.match(name)
    return FsddFile(int(m[1]), m[2], int(m[3])) if m else None


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n. Why not k/n +- 1.96 sd: at 0 or 1 of a
    few hundred trials the normal interval collapses to a point, and rates near 0 are exactly
    what the false-reject goal is about."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def edge_db(pcm: Pcm, rate: int, frame_s: float = 0.02) -> float:
    """The louder of the first and last frame, in dB below the loudest frame. Why: FSDD was
    trimmed by an energy threshold, which cuts weak onsets and codas (the /f/ of "five", the
    /t/ of "eight"); a word that starts or ends within ~15 dB of its peak was cut mid-sound,
    something a caller's turn (VAD pre-roll, hang-over) does not do to a word."""
    n = max(1, int(frame_s * rate))
    x = pcm.astype(np.float64)
    if len(x) < 2 * n:
        return 0.0

    def rms(a: np.ndarray) -> float:
        return float(np.sqrt(np.mean(a**2)) + 1e-9)

    first, last = rms(x[:n]), rms(x[-n:])
    peak = max(first, last, *(rms(x[i : i + n]) for i in range(0, len(x) - n + 1, n // 2 or 1)))
    return 20 * math.log10(max(first, last) / peak)


def caller_turn(pcm: Pcm, rate: int, before_s: float, after_s: float, *, noise_dbfs: float,
                seed: int, level_dbfs: float | None = None) -> Pcm:
    """The word as a turn reaches the recogniser: line noise before and after (and under it);
    ``level_dbfs``: the word's RMS set to this level first (FSDD's speakers were recorded from
    -22 to -44 dBFS; a telephone network carries speech near -26 dBov, ITU-T P.56)."""
    rng = np.random.default_rng(seed)
    word = pcm.astype(np.float64)
    if level_dbfs is not None:
        word *= 32768 * 10 ** (level_dbfs / 20) / (np.sqrt(np.mean(word**2)) + 1e-9)
    x = np.concatenate([np.zeros(int(before_s * rate)), word, np.zeros(int(after_s * rate))])
    x += rng.standard_normal(len(x)) * 32768 * 10 ** (noise_dbfs / 20)
    return to_int16(x / 32768)


def bench_menus() -> tuple[dict[str, list[list[str]]], dict[str, list[list[str]]]]:
    """digit word -> the bench's menus that offer it, and the ones that do not (bench_grammar's
    per-clip menus, built the same way from the manifest's phrases; no audio needed)."""
    empty = np.zeros(0, np.int16)
    items = [sd.Item(c["id"], empty, c["text"], "clip") for c in sd.manifest()["clips"]]
    with_it: dict[str, list[list[str]]] = {w: [] for w in DIGIT_WORDS}
    without: dict[str, list[list[str]]] = {w: [] for w in DIGIT_WORDS}
    for it, a, b in sd.menu_grammars(items):
        if it.text in with_it:
            with_it[it.text].append(a)
            without[it.text].append(b)
    return with_it, without


def load(args: argparse.Namespace) -> list[tuple[sd.Item, FsddFile, float]]:
    """(turn, file, edge_db) for ``args.per`` recordings of each speaker and digit, from index
    ``args.first`` on (a later range is data no fit has seen)."""
    directory: Path = args.directory
    files = sorted(((f, p) for p in directory.glob("*.wav")
                   if (f := parse_name(p.name)) is not None
                   and args.first <= f.index < args.first + args.per),
                   key=lambda fp: fp[0])
    if not files:
        raise SystemExit(f"no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) in "
                         f"{directory}")
    out = []
    for n, (f, path) in enumerate(files):
        pcm, rate = read_wav(path)
        turn = caller_turn(pcm, rate, args.before, args.after, noise_dbfs=args.noise_dbfs,
                           seed=n, level_dbfs=args.level_dbfs)
        out.append((sd.Item(f"fsdd:{path.stem}", sd.phone(turn, rate), f.word, "clip",
                            f"fsdd:{f.speaker}"), f, edge_db(pcm, rate)))
    return out


def tasks(items: list[tuple[sd.Item, FsddFile, float]]
          ) -> list[tuple[sd.Item, str, str | None]]:
    with_it, without = bench_menus()
    out: list[tuple[sd.Item, str, str | None]] = []
    for it, f, _ in items:
        out.append((it, sd.DIGITS_JSGF, f.word))
        menus_in, menus_out = with_it[f.word], without[f.word]
        out.append((it, "\n".join(menus_in[f.index % len(menus_in)]), f.word))
        out.append((it, "\n".join(menus_out[f.index % len(menus_out)]), None))
    return out


def extra_tasks(items: list[tuple[sd.Item, FsddFile, float]]
                ) -> list[tuple[sd.Item, str, str | None]]:
    """Training-only out-of-grammar trials (``--extra-out``; bench_grammar.extra_out_tasks):
    each recording in a second menu that lacks its digit, and in the digits grammar without its
    digit ("zero" also without "oh"), where a prompt of the other digits pulls hardest."""
    _with, without = bench_menus()
    out: list[tuple[sd.Item, str, str | None]] = []
    for it, f, _ in items:
        menus_out = without[f.word]
        out.append((it, "\n".join(menus_out[(f.index + 1) % len(menus_out)]), None))
        drop = {f.word, "oh"} if f.word == "zero" else {f.word}
        out.append((it, "\n".join(w for w in sd.DIGITS if w not in drop), None))
    return out


def turn_cpu(name: str, task_list: list[tuple[sd.Item, str, str | None]]) -> None:
    """Process time of one grammar turn (decode, then forced scoring of the menu that offers the
    digit) as a call spends it, per recording; CTranslate2's own threads are counted."""
    from asr.backends.whisper_forced import decide
    from asr.models import get_engine

    eng: Any = get_engine(name, workers=2)
    turns = [(it, g) for n, (it, g, _) in enumerate(task_list) if n % 3 == 1]  # the menu, in
    load0 = os.getloadavg()[0]
    cpu: list[float] = []
    for it, gtext in turns:
        grammar = compile_cached(gtext)
        t0 = time.process_time()
        d = eng.decode(to_16k(it.pcm), language="en", nbest=4, keep_unsure=True)
        decide(grammar, list(d.hypotheses), d.no_speech, functools.partial(eng.score, d), None)
        cpu.append(time.process_time() - t0)
    print(f"  {name} turn CPU (decode + one menu scored), {len(cpu)} turns: mean "
          f"{1000 * statistics.mean(cpu):.0f} ms, median {1000 * statistics.median(cpu):.0f} ms, "
          f"p95 {1000 * float(np.percentile(cpu, 95)):.0f} ms; load {load0:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")


def print_rates(label: str, trials: list[Trial]) -> None:
    """One line: in-grammar right / false reject / wrong and out-of-grammar nomatch, each with
    its count and 95 % interval."""
    ins = [t for t in trials if t.kind == "in"]
    outs = [t for t in trials if t.kind == "out"]
    parts = []
    for name, xs, pred in (
        ("right", ins, lambda t: t.correct_accept),
        ("false reject", ins, lambda t: t.status != "ok"),
        ("wrong", ins, lambda t: t.status == "ok" and t.got != t.expected),
        ("nomatch", outs, lambda t: t.status != "ok"),
    ):
        k = sum(pred(t) for t in xs)
        lo, hi = wilson(k, len(xs))
        parts.append(f"{name} {k}/{len(xs)} {k / max(1, len(xs)):6.1%} "
                     f"[{lo:5.1%}, {hi:5.1%}]")
    print(f"  {label:22s} " + " | ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("directory", type=Path, help="FSDD recordings/ directory")
    ap.add_argument("--engines", default="whisper")
    ap.add_argument("--per", type=int, default=5, help="recordings per speaker and digit")
    ap.add_argument("--first", type=int, default=0,
                    help="index of the first recording taken (FSDD has 0-49 per speaker/digit)")
    ap.add_argument("--before", type=float, default=0.3, help="line noise before (VAD pre-roll)")
    ap.add_argument("--after", type=float, default=0.25, help="line noise after (hang-over)")
    ap.add_argument("--noise-dbfs", type=float, default=-60.0, help="line noise level (RMS)")
    ap.add_argument("--level-dbfs", type=float, default=None,
                    help="set each word's RMS to this level (default: as recorded)")
    ap.add_argument("--turn-cpu", action="store_true",
                    help="also time one grammar turn per recording (decode + its menu)")
    add_trial_args(ap)
    args = ap.parse_args()
    loaded = load(args)
    items = [it for it, _, _ in loaded]
    cut = {it.id for it, _, edge in loaded if edge > CUT_EDGE_DB}
    task_list = tasks(loaded)
    print(f"FSDD: {len(items)} recordings ({args.per} per speaker and digit from index "
          f"{args.first}), "
          f"{len(task_list)} grammar trials; pad {args.before}/{args.after} s, line noise "
          f"{args.noise_dbfs} dBFS, level {args.level_dbfs or 'as recorded'}, G.711 mu-law "
          f"8 kHz; load {os.getloadavg()[0]:.1f}")
    for name in args.engines.split(","):
        cpu0 = time.process_time()
        trials, lat = run_whisper(name, items, task_list, lambda it: "clip", args.threshold,
                                  prompt=args.prompt, prompt_scoring=not args.bare_scoring)
        cpu = (time.process_time() - cpu0) / len(items)
        model = "prompted model (asr.grammar_prompt)" if args.prompt else "shipped model"
        print_summary(f"{name} (FSDD, {model})", trials, lat)
        print(f"  CPU {cpu * 1000:.0f} ms per recording (decode + 3 grammars scored), "
              f"load {os.getloadavg()[0]:.1f}")
        for spk in sorted({t.speaker for t in trials}):
            print_rates(spk, [t for t in trials if t.speaker == spk])
        print_rates(f"edges cut ({len(cut)})", [t for t in trials if t.item in cut])
        print_rates(f"edges whole ({len(items) - len(cut)})",
                    [t for t in trials if t.item not in cut])
        print_rates("all", trials)
        s = summary(trials)
        assert s["out_noise_n"] == 0  # FSDD is speech only
        if args.extra_out:  # dumped for fitting; not in the figures above
            trials += run_whisper(name, items, extra_tasks(loaded), lambda it: "extra",
                                  args.threshold, prompt=args.prompt,
                                  prompt_scoring=not args.bare_scoring)[0]
        if args.dump:
            import dataclasses
            import json

            with open(args.dump, "a", encoding="utf-8") as fh:
                for t in trials:
                    fh.write(json.dumps({"engine": name, **dataclasses.asdict(t)}) + "\n")
        if args.turn_cpu:
            turn_cpu(name, task_list)
        if args.errors:
            for t in trials:
                if (t.kind == "in" and not t.correct_accept) or (
                        t.kind == "out" and t.status == "ok"):
                    feats = " ".join(f"{k}={v:.2f}" for k, v in t.features.items()
                                     if not k.startswith("_"))
                    print(f"   {t.kind:3s} {t.item:24s} expected {t.expected!s:6s} got "
                          f"{t.got!r:12s} {t.status} {feats} heard {t.heard!r}")


if __name__ == "__main__":
    main()
