"""CPU time of one grammar turn by stage: encoder, free decode, forced scoring (whisper tiny.en).

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_turn_cpu [--engine whisper]

Each real phrase clip (tests/speech_data.py, 8 kHz G.711) in the 5-phrase menu that offers it,
decoded and decided as a call's grammar turn is (asr/backends/whisper.py ``_final``). Process
time: the CPU a turn costs, whatever else the box runs (contention still inflates it somewhat);
CTranslate2 computes in its own threads, which process time counts.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from asr.backends.whisper import grammar_prompt
from asr.backends.whisper_forced import decide
from asr.grammar import compile_cached
from asr.models import get_engine
from asr.nomatch import forced_coefficients
from audio.resample import to_16k
from tests import speech_data as sd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="whisper")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--prompt", action="store_true",
                    help="asr.grammar_prompt: the menu's phrases as the prompt, the prompted model")
    args = ap.parse_args()
    eng: Any = get_engine(args.engine, workers=2)
    encode = eng._encode
    spent = {"encode": 0.0}

    def timed_encode(x: Any) -> Any:  # the encoder's share of decode()
        t = time.process_time()
        try:
            return encode(x)
        finally:
            spent["encode"] += time.process_time() - t

    eng._encode = timed_encode
    stages: dict[str, list[float]] = {"encoder": [], "free decode": [], "forced scoring": [],
                                      "turn": []}
    right = n = 0
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for it, menu, _ in sd.menu_grammars(sd.clips()):
            grammar = compile_cached("\n".join(menu))
            pcm = to_16k(it.pcm)
            spent["encode"] = 0.0
            t0 = time.process_time()
            prompt = grammar_prompt(grammar) if args.prompt else None
            d = eng.decode(pcm, language="en", nbest=4, keep_unsure=True, prompt=prompt)
            t1 = time.process_time()
            scorer: Callable[[dict[str, list[str]]], dict[str, float]] = (
                functools.partial(eng.score, d))
            dec = decide(grammar, list(d.hypotheses), d.no_speech, scorer, None,
                         coefficients=forced_coefficients(args.engine, prompt is not None))
            t2 = time.process_time()
            stages["encoder"].append(spent["encode"])
            stages["free decode"].append(t1 - t0 - spent["encode"])
            stages["forced scoring"].append(t2 - t1)
            stages["turn"].append(t2 - t0)
            right += dec.status == "ok" and dec.text == it.text
            n += 1
    label = args.engine + (" --prompt" if args.prompt else "")
    print(f"{label}: {n} grammar turns (real clips, 5-phrase menus), {right} right; "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f} (2 cores, shared)")
    for name, xs in stages.items():
        print(f"  {name:15s} CPU mean {1000 * statistics.mean(xs):6.1f} ms  "
              f"median {1000 * statistics.median(xs):6.1f} ms")


if __name__ == "__main__":
    main()
