"""speaker_id.calibrate: EER, FAR/FRR and the threshold for a target FAR (pure maths)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speaker_id.calibrate import (
    equal_error_rate,
    far_frr,
    labelled_files,
    report_from_scores,
    score_trials,
    threshold_for_far,
)


def test_far_frr_counts_at_threshold() -> None:
    targets = [0.9, 0.8, 0.7, 0.6]
    nontargets = [0.1, 0.5, 0.65, 0.75]
    assert far_frr(targets, nontargets, 0.7) == (0.25, 0.25)  # 0.75 accepted; 0.6 rejected
    assert far_frr(targets, nontargets, 0.0) == (1.0, 0.0)
    assert far_frr(targets, nontargets, 1.0) == (0.0, 1.0)


def test_far_frr_needs_both_sets() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        far_frr([], [0.1], 0.5)


def test_eer_zero_when_separable() -> None:
    eer, thr = equal_error_rate([0.8, 0.9], [0.1, 0.2, 0.3])
    assert eer == 0.0
    assert 0.3 < thr <= 0.8


def test_eer_of_overlapping_sets() -> None:
    eer, thr = equal_error_rate([0.9, 0.8, 0.7, 0.6], [0.1, 0.5, 0.65, 0.75])
    assert eer == pytest.approx(0.25)
    assert far_frr([0.9, 0.8, 0.7, 0.6], [0.1, 0.5, 0.65, 0.75], thr) == (0.25, 0.25)


def test_threshold_for_far() -> None:
    nontargets = [i / 100 for i in range(100)]  # 0.00 .. 0.99
    thr = threshold_for_far(nontargets, 0.05)
    far, _ = far_frr([1.0], nontargets, thr)
    assert far <= 0.05
    assert thr == pytest.approx(0.94)  # just above the 6th-highest impostor
    assert far_frr([1.0], nontargets, thr - 1e-6)[0] > 0.05  # and it is the lowest such
    assert threshold_for_far(nontargets, 0.0) > 0.99
    with pytest.raises(ValueError, match="target_far"):
        threshold_for_far(nontargets, 1.5)


def test_score_trials_pairs() -> None:
    v = [np.array([1, 0], np.float32), np.array([1, 0], np.float32), np.array([0, 1], np.float32)]
    targets, nontargets = score_trials(["a", "a", "b"], v)
    assert targets == [pytest.approx(1.0)]
    assert nontargets == [pytest.approx(0.0), pytest.approx(0.0)]


def test_report_warns_when_far_unresolvable() -> None:
    r = report_from_scores([0.9, 0.8], [0.1, 0.2], speakers=2, utterances=4, skipped=0,
                           thresholds=[0.5], target_far=0.01)
    assert r.eer == 0.0
    assert r.at_thresholds == ((0.5, 0.0, 0.0),)
    assert any("not resolvable" in n for n in r.notes)
    assert "EER 0.0%" in r.render()


def test_labelled_files_needs_two_speakers(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "1.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="two speaker"):
        labelled_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        labelled_files(tmp_path / "nope")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "1.wav").write_bytes(b"")
    (tmp_path / "bob" / "notes.txt").write_bytes(b"")
    assert [lab for lab, _ in labelled_files(tmp_path)] == ["alice", "bob"]
