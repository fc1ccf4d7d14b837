"""The word scanner's native inner loops (``compliance/_wordscan.c``), when they are built.

``scripts/bootstrap.sh`` builds the extension (``python setup.py build_ext --inplace``, with
the C compiler of Debian's build-essential). Without it the scanner runs its Python paths
(:mod:`compliance.scantext`), which find the same hits 4-6x slower on mixed Chinese and Latin
text; :func:`available` says which, and ``ivr doctor``-style checks and the benchmark print it.
``IVR_WORDS_NATIVE=0`` turns the native loops off (to compare, or to rule them out).

The C code finds candidates, and fewer of them; it also runs the per-match checks of the plain
and homophone passes (``_hits.c``: the same as :class:`compliance.scantext.MatchArrays`) and
makes their hits. What a
spelled match is stays decided in Python (:func:`compliance.pinyin.verify`). The tables it folds
with are the ones :mod:`compliance.normalize` and :mod:`compliance.spelling` build, handed over
once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from compliance.normalize import (
    BMP_SIZE,
    EXPANDED_BASE,
    PINYIN_BASE,
    _fold_astral,
    expansions,
    fold_table,
    pinyin_table,
)
from compliance.scantext import word_chars
from compliance.spelling import spelled_table

log = logging.getLogger(__name__)
ENV_SWITCH = "IVR_WORDS_NATIVE"

try:
    import compliance._wordscan as _ext  # the module itself, not the package (no import circle)
except ImportError:  # not built: the Python paths
    _ext = None


def available() -> bool:
    """The extension is built and not switched off."""
    return _ext is not None and os.environ.get(ENV_SWITCH, "1") != "0"


@lru_cache(maxsize=1)
def module() -> ModuleType:
    """The extension, configured with this process's folding tables."""
    if _ext is None:
        raise RuntimeError("compliance._wordscan is not built (scripts/bootstrap.sh builds it)")
    fold = fold_table()
    t = spelled_table()
    word = np.zeros(BMP_SIZE, dtype=np.uint8)
    word[[ord(c) for c in word_chars() if ord(c) < BMP_SIZE]] = 1
    # pinyin._is_latin per BMP character: folds to an ASCII letter, or to letters (ﬁ)
    latin = ((fold >= ord("a")) & (fold <= ord("z"))) | (fold >= EXPANDED_BASE)
    words = expansions()
    offsets = np.cumsum([0, *(len(w) for w in words)]).astype(np.uint32)
    codes = np.array([ord(c) for w in words for c in w], dtype=np.uint32)
    _ext.configure(fold.astype(np.uint32).tobytes(), pinyin_table().astype(np.uint32).tobytes(),
                   t.letters.astype(np.uint32).tobytes(), t.offset.astype(np.uint32).tobytes(),
                   t.width.astype(np.uint8).tobytes(), word.tobytes(),
                   latin.astype(np.uint8).tobytes(), offsets.tobytes(), codes.tobytes(),
                   _fold_astral)
    return _ext


def automaton(keys: list[str], *, links: bool = True, prefix4: bool = False,
              prefix2: bool = False, bounded: bool = True) -> Any:
    """A native automaton over ``keys``: Aho-Corasick (``find``), or without links a trie that
    is only walked down from chosen starts (``walk``, the spelled pass); ``prefix4`` (keys of
    four or more symbols) skips starts whose next four letters begin no key, ``prefix2``
    (keys of two or more) those whose next two symbols begin none. ``bounded`` False: ``walk``
    finds every match, not only those that can sit on word boundaries."""
    return module().Automaton(keys, links, prefix4, prefix2, bounded)


def untrack(tables: tuple[Any, ...]) -> int:
    """Untracks, at once, the nested tuples of str, int, bool and None in ``tables`` (a tuple):
    what the garbage collector does to them by itself over its next collections (see
    ``_untrack.c``). Without the extension, nothing (0); the number untracked."""
    if _ext is None:
        return 0
    done: int = _ext.untrack(tables)
    return done


def relevant(chars: Iterable[str], syllables: Iterable[int] = ()) -> bytes:
    """Per BMP code point of folded text: may it be in a verified spelled match? The terms'
    own characters (and digits and letters among them), and for homophone terms every
    character with one of their syllables (ids of :func:`compliance.normalize.pinyin_names`).
    Latin letters always may; characters beyond the BMP are always spelled."""
    out: npt.NDArray[np.uint8] = np.zeros(BMP_SIZE, dtype=np.uint8)
    cps = [ord(c) for c in chars if ord(c) < BMP_SIZE]
    out[cps] = 1
    sids = np.array(sorted(set(syllables)), dtype=np.int64)
    if len(sids):
        sound = pinyin_table().astype(np.int64) - PINYIN_BASE
        out[np.isin(sound, sids)] = 1
    return out.tobytes()


def fold(text: str) -> Any:
    """The folding of ``text`` (:func:`compliance.normalize.fold`'s canonical codes and way
    back) as a native object: ``span``, ``orig``, ``run_start``, ``run_len``, ``sounds()``."""
    return module().fold(text)


def spelled(folded: Any, text: str, groups: tuple[tuple[tuple[Any, ...], int, bytes], ...],
            ) -> list[tuple[int, int, int, int]]:
    """``(automaton, key, first, last)`` candidates of the spelled pass (see ``_spelled.c``):
    each group ``(automata, reach, relevant)`` searched with its own tries (built without
    links) as if spelled on its own, over one spelled text; ``automaton`` counts the automata
    of every group in order."""
    got: list[tuple[int, int, int, int]] = module().spelled(folded, text, groups)
    return got


def hits(folded: Any, text: str,
         sources: tuple[tuple[Any, Sequence[Sequence[Any]], bool], ...],
         min_end: int, *, hit_type: type, actions: tuple[Any, ...],
         ) -> tuple[list[Any], list[tuple[int, int]]]:
    """The hits (``hit_type``, words.Hit) and allow-list spans of the automata ``sources``
    ``(automaton, values, walked)`` over ``folded`` (of ``text``): every match (``walk`` when
    ``walked``, else ``find``), in the order one Aho-Corasick pass over all their keys finds
    them, and every key of its ``values`` entry that passes its run-length and word-boundary
    checks (``_hits.c``; each key is a ``words.Check`` tuple, or has one as ``check``: it says
    which, and what its hits hold, the action as its place in ``actions``)."""
    result: tuple[list[Any], list[tuple[int, int]]] = module().hits(folded, text, sources,
                                                                     min_end, hit_type, actions)
    return result
