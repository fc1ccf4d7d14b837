"""CPU time of one grammar turn by stage: encoder, free decode, forced scoring (whisper tiny.en).

    PYTHONPATH=. nice -n 10 .venv/bin/python -m tests.bench.bench_turn_cpu [--engine whisper]
        [--prompt [--bare-scoring]] [--digits] [--rounds N]

Each real phrase clip (tests/speech_data.py, 8 kHz G.711) in the 5-phrase menu that offers it
(``--digits``: in the 12-phrase digits grammar instead, the largest a prompt covers), decoded and
decided as a call's grammar turn is (asr/backends/whisper.py ``_final``). ``--prompt``: the
grammar as whisper's prompt, before the beam and every forced sentence (asr.grammar_prompt);
``--bare-scoring`` keeps it out of forced scoring (stop 31's variant), for comparison.
Also counted: decoder positions fed in forced scoring (each sequence's prefix + tokens), a
figure that does not move with the load. Process
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
    ap.add_argument("--bare-scoring", action="store_true",
                    help="with --prompt: forced scoring without the prompt (stop 31's variant)")
    ap.add_argument("--digits", action="store_true", help="the digits grammar for every clip")
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
    score = eng.score
    fed = {"positions": 0}

    def counted_score(decoded: Any, spellings: dict[str, list[str]]) -> dict[str, float]:
        tok = eng.tokenizer(decoded.language)
        seqs = {tuple(tok.encode(" " + f.strip())) if f else () for fs in spellings.values()
                for f in fs}
        fed["positions"] += sum(len(decoded.prefix) + len(q) + 1 for q in seqs)
        return score(decoded, spellings)  # type: ignore[no-any-return]

    eng.score = counted_score
    stages: dict[str, list[float]] = {"encoder": [], "free decode": [], "forced scoring": [],
                                      "turn": []}
    right = n = 0
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for it, menu, _ in sd.menu_grammars(sd.clips()):
            grammar = compile_cached(sd.DIGITS_JSGF if args.digits else "\n".join(menu))
            pcm = to_16k(it.pcm)
            spent["encode"] = 0.0
            t0 = time.process_time()
            prompt = grammar_prompt(grammar) if args.prompt else None
            d = eng.decode(pcm, language="en", nbest=4, keep_unsure=True, prompt=prompt,
                           score_prompt=not args.bare_scoring)
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
    label = args.engine + (" --prompt" if args.prompt else "") + (
        " --bare-scoring" if args.prompt and args.bare_scoring else "")
    where = "the digits grammar" if args.digits else "5-phrase menus"
    print(f"{label}: {n} grammar turns (real clips, {where}), {right} right; "
          f"load average {load0:.1f} -> {os.getloadavg()[0]:.1f} (2 cores, shared); "
          f"forced scoring fed {fed['positions'] / n:.0f} decoder positions per turn")
    for name, xs in stages.items():
        print(f"  {name:15s} CPU mean {1000 * statistics.mean(xs):6.1f} ms  "
              f"median {1000 * statistics.median(xs):6.1f} ms")


if __name__ == "__main__":
    main()
