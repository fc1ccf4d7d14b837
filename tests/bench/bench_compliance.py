"""Compliance benchmarks: sensitive-word scan throughput and latency with 100k terms and every
evasion on, automaton memory, the false-positive rate of the foldings on ordinary text, a
10M-number blacklist (memory, lookup, filtering 1M contacts), and importing a 1M-row list
(CSV written like Excel's, and .xlsx; time and peak memory, each in a fresh process).

Run: ``python -m tests.bench.bench_compliance [words|scan|gc|fp|lists|import]`` (all but scan
and gc: ~10 minutes on 2 cores). ``scan``: the synthetic scan alone, the median of five passes,
and sha256 digests of the hit lists to compare two builds (hits must stay identical). ``gc``:
the objects the garbage collector tracks and a full collection's pause with the 100k-term
filter alive, and its compile time and memory.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

from compliance.lists import InMemoryListStore, ListKind, Scope
from compliance.normalize import fold_table, pinyin_table
from compliance.numbers import InvalidNumber, normalize
from compliance.pinyin import PinyinMode
from compliance.words import Hit, StreamingScanner, Term, WordFilter

SEED = 7
N_TERMS = 100_000
PINYIN_SHARE = 0.1  # one CJK term in ten opts into homophone matching
TEXT_MB = 4
N_BLACK = 10_000_000
N_CONTACTS = 1_000_000

CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3500)]  # the text's characters
CJK_TERMS = [chr(c) for c in range(0x4E00 + 3500, 0x4E00 + 7000)]  # the realistic terms'
LATIN = "abcdefghijklmnopqrstuvwxyz"
PLANT_EVERY = 300  # realistic corpus: one planted (often disguised) term per ~300 characters


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def make_terms(rng: random.Random, alphabet: list[str], pinyin_min_len: int) -> list[Term]:
    """70% CJK (2-4 chars: all with the default pinyin spellings, 10% also with homophones),
    30% Latin (5-9 letters)."""
    terms: list[Term] = []
    seen: set[str] = set()
    while len(terms) < N_TERMS:
        pinyin: PinyinMode | None = None  # the default: auto spellings
        if rng.random() < 0.7:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 4)))
            if len(text) >= pinyin_min_len and rng.random() < PINYIN_SHARE:
                pinyin = PinyinMode.HOMOPHONE
        else:
            text = "".join(rng.choice(LATIN) for _ in range(rng.randint(5, 9)))
        if text not in seen:
            seen.add(text)
            terms.append(Term(text, "custom", pinyin=pinyin))
    return terms


def disguise(rng: random.Random, term: str) -> str:
    how = rng.randrange(5)
    if how == 0:
        return "\u200b".join(term)
    if how == 1:
        return " ".join(term).upper()
    if how == 2:
        return "".join(c * rng.randint(1, 3) for c in term)
    if how == 3:
        return "*".join(term)
    return term


def make_text(rng: random.Random, target_bytes: int, plant: list[Term] | None = None) -> str:
    """Mixed text: CJK sentences, English-like words, spaces, punctuation, some evasions.

    With ``plant``, a dictionary term (often disguised) is dropped in every ~PLANT_EVERY chars.
    """
    parts: list[str] = []
    size = 0
    chars = 0
    while size < target_bytes:
        if rng.random() < 0.6:
            p = "".join(rng.choice(CJK) for _ in range(rng.randint(4, 20))) + "，"
        else:
            p = " ".join("".join(rng.choice(LATIN) for _ in range(rng.randint(2, 8)))
                         for _ in range(rng.randint(2, 6))) + ". "
        if rng.random() < 0.05:
            p = "\u200b".join(p)  # zero-width evasion
        chars += len(p)
        if plant and chars >= PLANT_EVERY:
            chars = 0
            p += " " + disguise(rng, rng.choice(plant).text) + " "
        parts.append(p)
        size += len(p.encode())
    return "".join(parts)


def scan_rate(wf: WordFilter, text: str) -> tuple[float, float, int]:
    """(MB/s wall, MB/s of CPU time, hits), best of 3: the cores are shared with other work,
    and CPU time is the figure that does not move with the neighbours' load."""
    nbytes = len(text.encode())
    chunks = [text[i : i + 10_000] for i in range(0, len(text), 10_000)]
    walls, cpus = [], []
    hits = 0
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        hits = sum(len(wf.find(c)) for c in chunks)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return nbytes / 1e6 / min(walls), nbytes / 1e6 / min(cpus), hits


def latency_us(fn: Callable[[str], object], pieces: list[str]) -> tuple[float, float]:
    lat = []
    for p in pieces:
        t = time.perf_counter_ns()
        fn(p)
        lat.append(time.perf_counter_ns() - t)
    lat.sort()
    return statistics.median(lat) / 1e3, lat[int(len(lat) * 0.99)] / 1e3


def bench_words() -> None:
    rng = random.Random(SEED)
    t0 = time.perf_counter()
    fold_table()
    pinyin_table()
    tables_s = time.perf_counter() - t0
    terms = make_terms(rng, CJK_TERMS, pinyin_min_len=3)
    before = rss()
    t0 = time.perf_counter()
    wf = WordFilter(terms)
    build_s = time.perf_counter() - t0
    auto_mb = (rss() - before) / 1e6
    n_pinyin = sum(t.pinyin is PinyinMode.HOMOPHONE for t in terms)
    print(f"words: {N_TERMS} terms ({n_pinyin} with homophones, {wf.key_count} automaton keys "
          f"with the pinyin spellings), fold/pinyin tables "
          f"{tables_s:.2f} s, compile {build_s:.2f} s, memory {auto_mb:.0f} MB (RSS delta)")
    text = make_text(rng, TEXT_MB * 1_000_000, plant=terms)
    rate, cpu_rate, hits = scan_rate(wf, text)
    print(f"words: realistic corpus {len(text.encode()) / 1e6:.1f} MB (a planted, often "
          f"disguised term every ~{PLANT_EVERY} chars): {rate:.1f} MB/s wall, "
          f"{cpu_rate:.1f} MB/s per CPU-second, {hits} hits")
    partials = [text[i : i + 100] for i in range(0, 100 * 5000, 100)]
    med, p99 = latency_us(wf.find, partials)
    print(f"words: 100-char utterance: median {med:.1f} us, p99 {p99:.1f} us")
    s = StreamingScanner(wf)
    words = text[:300_000].split(" ")
    med, p99 = latency_us(lambda w: s.feed(w + " "), words)
    print(f"words: streaming feed per ASR word: median {med:.1f} us, p99 {p99:.1f} us")
    dense_terms = make_terms(random.Random(SEED), CJK, pinyin_min_len=2)
    dense = WordFilter(dense_terms)
    dtext = make_text(random.Random(SEED + 1), TEXT_MB * 1_000_000)
    rate, cpu_rate, hits = scan_rate(dense, dtext)
    print(f"words: adversarial corpus (terms over the text's own 3500 chars, 2-char "
          f"homophones): {rate:.1f} MB/s wall, {cpu_rate:.1f} MB/s per CPU-second, {hits} hits")
    med, p99 = latency_us(dense.find, [dtext[i : i + 100] for i in range(0, 500_000, 100)])
    print(f"words: adversarial 100-char utterance: median {med:.1f} us, p99 {p99:.1f} us")


SCAN_PASSES = 5


def _hits_digest(hit_lists: list[list[Hit]]) -> str:
    """sha256 (first 16 hex digits) of hit lists, order included: two builds that find the
    same hits print the same digest."""
    h = hashlib.sha256()
    for hits in hit_lists:
        for x in hits:
            h.update(repr((x.start, x.end, x.matched, x.term, x.category, x.severity,
                           x.action.value, x.via_pinyin)).encode())
        h.update(b"|")
    return h.hexdigest()[:16]


def bench_scan() -> None:
    """The synthetic scan alone, SCAN_PASSES passes, every pass's MB per CPU-second and their
    median (the load moves single passes by ~30 %), and digests of the hit lists (synthetic
    chunks and partials, adversarial chunks and partials) to compare two builds."""
    rng = random.Random(SEED)
    terms = make_terms(rng, CJK_TERMS, pinyin_min_len=3)
    wf = WordFilter(terms)
    text = make_text(rng, TEXT_MB * 1_000_000, plant=terms)
    nbytes = len(text.encode())
    chunks = [text[i : i + 10_000] for i in range(0, len(text), 10_000)]
    rates = []
    for _ in range(SCAN_PASSES):
        c0 = time.process_time()
        for c in chunks:
            wf.find(c)
        rates.append(nbytes / 1e6 / (time.process_time() - c0))
    print(f"scan: synthetic {nbytes / 1e6:.1f} MB, MB per CPU-second: median "
          f"{statistics.median(rates):.1f} of {' / '.join(f'{r:.1f}' for r in rates)}, load "
          f"average {psutil.getloadavg()[0]:.1f}")
    dense = WordFilter(make_terms(random.Random(SEED), CJK, pinyin_min_len=2))
    dtext = make_text(random.Random(SEED + 1), 1_000_000)
    digests = {
        "synthetic chunks": _hits_digest([wf.find(c) for c in chunks]),
        "synthetic partials": _hits_digest([wf.find(text[i : i + 100])
                                            for i in range(0, 500_000, 100)]),
        "adversarial chunks": _hits_digest([dense.find(dtext[i : i + 10_000])
                                            for i in range(0, len(dtext), 10_000)]),
        "adversarial partials": _hits_digest([dense.find(dtext[i : i + 100])
                                              for i in range(0, 300_000, 100)]),
    }
    print("scan: hit-list sha256: " + ", ".join(f"{k} {v}" for k, v in digests.items()))


GC_REPEATS = 7
GC_WARM_TERMS = 2_000


def _collection(what: str) -> tuple[int, float]:
    """(objects the collector tracks, median ms of a full collection over GC_REPEATS): what
    every full collection of the process walks, and how long it stops the event loop."""
    gc.collect()
    pauses = []
    for _ in range(GC_REPEATS):
        t0 = time.perf_counter()
        gc.collect()
        pauses.append((time.perf_counter() - t0) * 1e3)
    tracked = len(gc.get_objects())
    pause = statistics.median(pauses)
    print(f"gc: {what}: {tracked} tracked objects, full collection median {pause:.1f} ms "
          f"({min(pauses):.1f}-{max(pauses):.1f})")
    return tracked, pause


def bench_gc() -> None:
    """A full collection's pause with the 100k-term filter alive: the filter is compiled after
    the engine's start-up gc.freeze() (on first use, after every word change), so every object
    it holds that the cyclic collector tracks is walked by every full collection of the
    process, which stops every call's audio. Also the filter's compile time and memory."""
    rng = random.Random(SEED)
    # A first filter loads what any filter needs once per process (pypinyin's dictionaries,
    # jieba's common words, the English word list): not the filter's own.
    warm = make_terms(random.Random(SEED + 2), CJK_TERMS, pinyin_min_len=3)[:GC_WARM_TERMS]
    WordFilter(warm).find("赌博 dubo scam")
    del warm
    base, base_ms = _collection("before (imports and module caches)")
    terms = make_terms(rng, CJK_TERMS, pinyin_min_len=3)
    _collection(f"{len(terms)} Term objects made (the caller's list)")
    before = rss()
    t0, c0 = time.perf_counter(), time.process_time()
    wf = WordFilter(terms)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    # The first full collection after a compile also sees what the young collections during
    # the compile left tracked (tuples are untracked when a collection finds them atomic).
    tracked = len(gc.get_objects())
    t0 = time.perf_counter()
    gc.collect()
    first_ms = (time.perf_counter() - t0) * 1e3
    print(f"gc: right after the compile: {tracked} tracked objects, the first full collection "
          f"{first_ms:.1f} ms")
    mem_mb = (rss() - before) / 1e6
    print(f"gc: compile {build_s:.2f} s ({build_cpu:.2f} s CPU), memory {mem_mb:.0f} MB (RSS "
          f"delta), {wf.key_count} automaton keys")
    _collection("terms and filter alive")
    del terms  # the filter alone: as after a word change, when the caller's list is gone
    held, held_ms = _collection("filter alive, the caller's terms dropped")
    print(f"gc: the filter holds {held - base} tracked objects; a full collection costs "
          f"{held_ms - base_ms:.1f} ms more with it; load average "
          f"{psutil.getloadavg()[0]:.1f}")


def bench_lists() -> None:
    rng = np.random.default_rng(SEED)
    before = rss()
    numbers = (8613000000000 + rng.integers(0, 9_000_000_000, N_BLACK)).astype(np.uint64)
    store = InMemoryListStore()
    t0 = time.perf_counter()
    store.bulk_load(ListKind.BLACK, numbers)
    load_s = time.perf_counter() - t0
    del numbers
    ns = store.number_set(ListKind.BLACK)
    print(f"lists: {N_BLACK / 1e6:.0f}M numbers loaded in {load_s:.1f} s, arrays "
          f"{ns.nbytes / 1e6:.0f} MB, RSS delta {(rss() - before) / 1e6:.0f} MB")
    at = datetime(2026, 11, 30, tzinfo=UTC)
    probes = [f"+{8613000000000 + int(x)}" for x in rng.integers(0, 9_000_000_000, 20_000)]
    scopes = Scope("acme", "c1").chain()
    t0 = time.perf_counter()
    for p in probes:
        store.match_sync(ListKind.BLACK, p, scopes, at)
    per = (time.perf_counter() - t0) / len(probes)
    t0 = time.perf_counter()
    for p in probes:
        ns.get(int(p))
    raw = (time.perf_counter() - t0) / len(probes)
    print(f"lists: single lookup {raw * 1e6:.1f} us (number set), {per * 1e6:.1f} us "
          f"(store.match over global+tenant+campaign scopes)")
    contacts = (8613000000000 + rng.integers(0, 9_000_000_000, N_CONTACTS)).astype(np.uint64)
    t0 = time.perf_counter()
    mask = store.filter_many(ListKind.BLACK, contacts, scopes, at)
    filt = time.perf_counter() - t0
    print(f"lists: filter {N_CONTACTS / 1e6:.0f}M contacts against {N_BLACK / 1e6:.0f}M: "
          f"{filt:.2f} s ({int(mask.sum())} blocked)")
    raw = [f"1{int(x):010d}"[:3] + " " + f"{int(x):010d}"[2:6] + " " + f"{int(x):010d}"[6:]
           for x in rng.integers(3_000_000_000, 9_000_000_000, 20_000)]
    t0 = time.perf_counter()
    ok = 0
    for r in raw:
        try:
            normalize(r)
            ok += 1
        except InvalidNumber:
            pass
    per = (time.perf_counter() - t0) / len(raw)
    print(f"lists: phonenumbers normalisation {per * 1e6:.0f} us per raw number "
          f"({ok} of {len(raw)} valid): {per * 1e6:.0f} s per million at import")


def bench_real_text() -> None:
    """The same 100k terms over real Chinese (People's Daily 1998, reviews), as 10k-char chunks
    and as 100-char ASR partials: what a call center's text looks like, few Latin letters."""
    from tests import compliance_corpus

    wf = WordFilter(make_terms(random.Random(SEED), CJK_TERMS, pinyin_min_len=3))
    text = "".join(list(compliance_corpus.peoples_daily())[:30_000])[:1_500_000]
    text += "".join(list(compliance_corpus.reviews())[:30_000])[:1_500_000]
    rate, cpu_rate, hits = scan_rate(wf, text)
    print(f"words: real Chinese text {len(text.encode()) / 1e6:.1f} MB (People's Daily + "
          f"reviews): {rate:.1f} MB/s wall, {cpu_rate:.1f} MB/s per CPU-second, {hits} hits")
    med, p99 = latency_us(wf.find, [text[i : i + 100] for i in range(0, 500_000, 100)])
    print(f"words: real Chinese 100-char partial: median {med:.1f} us, p99 {p99:.1f} us")


def bench_false_positives() -> None:
    """Sentences of ordinary text flagged by the new foldings beyond the literal characters,
    with the operator's list of tests/fixtures/compliance/terms_zh.csv in four set-ups."""
    from compliance.wordlist import read_terms
    from tests import compliance_corpus

    fixture = Path(__file__).parents[1] / "fixtures" / "compliance" / "terms_zh.csv"
    terms = read_terms(fixture).terms
    setups = {
        "literal": [replace(t, pinyin=PinyinMode.OFF, initials=False) for t in terms],
        "as configured": terms,
        "auto for every term": [replace(t, pinyin=None, initials=False) for t in terms],
        "homophones for every term": [replace(t, pinyin=PinyinMode.HOMOPHONE) for t in terms],
    }
    filters = {name: WordFilter(ts) for name, ts in setups.items()}
    for corpus in ("peoples_daily", "reviews", "jieba_words", "english"):
        sentences = list(getattr(compliance_corpus, corpus)())
        base = {i for i, x in enumerate(sentences) if filters["literal"].find(x)}
        print(f"fp: {corpus}: {len(sentences)} items, {len(base)} "
              f"({100 * len(base) / len(sentences):.3f} %) hold a term's own characters")
        for name, wf in list(filters.items())[1:]:
            flagged = {i for i, x in enumerate(sentences) if wf.find(x)} - base
            print(f"fp:   {name}: {len(flagged)} more flagged "
                  f"({100 * len(flagged) / len(sentences):.3f} %), e.g. "
                  f"{[sentences[i][:30] for i in sorted(flagged)[:3]]}")


IMPORT_ROWS = 1_000_000


def _write_csv(path: Path) -> None:
    """What Excel on Chinese Windows saves: GB18030 (GBK), CRLF, Chinese header and notes."""
    with path.open("wb") as f:
        f.write("号码,原因,备注,到期\r\n".encode("gb18030"))
        for base in range(0, IMPORT_ROWS, 10_000):
            f.write("".join(f"1{(3 + i % 6)}{(base + i) * 7919 % 10**9:09d},客户投诉,"
                            f"第{i % 7}次来电要求不再联系,2027-06-30\r\n"
                            for i in range(10_000)).encode("gb18030"))


def _write_xlsx(path: Path) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("黑名单")
    sheet.write_row(0, 0, ["号码", "原因", "备注"])
    for r in range(1, IMPORT_ROWS + 1):
        sheet.write_number(r, 0, float(13_000_000_000 + r * 7919 % 10**9))
        sheet.write_string(r, 1, "退订")
        sheet.write_string(r, 2, "用户要求")
    book.close()


def _import_child(path: str, mode: str) -> None:
    """Runs in its own process so the peak RSS is the import's own."""
    import asyncio

    from compliance.listio import LIST_SPEC, import_table
    from compliance.lists import ListEntry
    from tabular import Row, open_table

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    rows = errors = 0
    if mode == "read":
        with open_table(path, LIST_SPEC) as table:
            for item in table:
                rows += isinstance(item, Row)
                errors += not isinstance(item, Row)
    else:
        store = InMemoryListStore()
        report = asyncio.run(import_table(store, path, default=ListEntry(ListKind.BLACK, "")))
        rows, errors = report.imported, len(report.errors)
    out = {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
           "rows": rows, "errors": errors,
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "start_mb": before / 1024}
    print(json.dumps(out))


def bench_import() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, xlsx_path = Path(tmp) / "list.csv", Path(tmp) / "list.xlsx"
        t0 = time.perf_counter()
        _write_csv(csv_path)
        print(f"import: wrote {IMPORT_ROWS} rows GB18030 CSV, {csv_path.stat().st_size / 1e6:.0f}"
              f" MB in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        _write_xlsx(xlsx_path)
        print(f"import: wrote {IMPORT_ROWS} rows .xlsx, {xlsx_path.stat().st_size / 1e6:.0f} MB "
              f"in {time.perf_counter() - t0:.0f} s")
        for path, mode in ((csv_path, "read"), (xlsx_path, "read"), (csv_path, "import")):
            got = subprocess.run([sys.executable, "-m", "tests.bench.bench_compliance",
                                  "import-child", str(path), mode], capture_output=True,
                                 text=True, check=True)
            r = json.loads(got.stdout.strip().splitlines()[-1])
            what = "read through tabular" if mode == "read" else "imported (phonenumbers + store)"
            print(f"import: {path.suffix} {what}: {r['rows']} rows, {r['errors']} bad, "
                  f"{r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU "
                  f"({r['rows'] / r['seconds'] / 1000:.0f}k rows/s), peak RSS {r['peak_mb']:.0f} "
                  f"MB (interpreter and imports alone {r['start_mb']:.0f} MB)")


def main() -> None:
    if sys.argv[1:2] == ["import-child"]:
        _import_child(sys.argv[2], sys.argv[3])
        return
    parts = sys.argv[1:] or ["words", "fp", "lists", "import"]
    from compliance import native

    print(f"cpu: {psutil.cpu_count()} cores, load average {psutil.getloadavg()}, word scan "
          f"{'native loops' if native.available() else 'Python paths'}")
    if "scan" in parts:
        bench_scan()
    if "gc" in parts:
        bench_gc()
    if "words" in parts:
        bench_words()
        bench_real_text()
    if "fp" in parts:
        bench_false_positives()
    if "lists" in parts:
        bench_lists()
    if "import" in parts:
        bench_import()


if __name__ == "__main__":
    main()
