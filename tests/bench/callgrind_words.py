"""A fixed, smaller word scan for callgrind: an instruction count that does not move with the
shared VM's load, to compare two builds of the scanner (docs/benchmarks.md, "Word scan, stop
30"). The bench's 100k-term filter takes minutes to compile under valgrind; this builds
``N_TERMS`` terms the same way and scans ``KB`` of the same kind of text in 10k-character
chunks, counting only the scan (the chunks go through ``functools.reduce``, whose C function
callgrind is told to collect; three chunks first, outside the count, load what a first scan
loads). Run from the tree to measure (its code first on the path)::

    PYTHONHASHSEED=0 PYTHONPATH=$PWD valgrind --tool=callgrind \\
        --toggle-collect=functools_reduce python -m tests.bench.callgrind_words 20000 1000
"""

from __future__ import annotations

import functools
import random
import sys

from compliance.words import WordFilter
from tests.bench import bench_compliance as bench


def main(n_terms: int, kb: int) -> None:
    bench.N_TERMS = n_terms
    rng = random.Random(bench.SEED)
    terms = bench.make_terms(rng, bench.CJK_TERMS, pinyin_min_len=3)
    wf = WordFilter(terms)
    text = bench.make_text(rng, kb * 1000, plant=terms)
    chunks = [text[i : i + 10_000] for i in range(0, len(text), 10_000)]
    for c in chunks[:3]:
        wf.find(c)  # first-use work outside the count
    hits = functools.reduce(lambda acc, c: acc + len(wf.find(c)), chunks, 0)
    print(f"hits {hits}, chunks {len(chunks)}, bytes {len(text.encode())}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
