"""speaker_id.backends: mel features, the ONNX backend on a real ONNX graph, GE2E basics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from audio.pcm import WIDEBAND_RATE_HZ
from audio.resample import resample_float
from audio.wavio import read_wav_float
from speaker_id.backends import (
    OnnxBackend,
    cosine,
    load_backend,
    mean_embedding,
    mel_basis,
    power_mel,
)
from speaker_id.testdata import beckett


def test_mel_basis_shape_and_slaney_peaks() -> None:
    basis = mel_basis(16000, 400, 40)
    assert basis.shape == (40, 201)
    assert (basis >= 0).all()
    # slaney normalisation: peak height is 2/(upper-lower edge in Hz) -> falls with frequency
    peaks = basis.max(axis=1)
    assert peaks[0] > peaks[-1]
    assert np.all(np.count_nonzero(basis, axis=1) > 0)


def test_power_mel_of_a_tone_peaks_in_its_band() -> None:
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    mel = power_mel(tone, 16000, 400, 160, 40)
    assert mel.shape == (101, 40)
    band = int(np.argmax(mel[50]))
    centre_hz = np.argmax(mel_basis(16000, 400, 40)[band]) * 16000 / 400
    assert abs(centre_hz - 1000) < 150


def test_cosine_and_mean() -> None:
    a, b = np.array([1, 0], np.float32), np.array([0, 1], np.float32)
    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, b) == pytest.approx(0.0)
    assert cosine(a, np.zeros(2, np.float32)) == 0.0
    assert np.linalg.norm(mean_embedding([a, b])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_embedding([])


def _mean_linear_onnx(path: Path, weight: np.ndarray) -> None:
    """A real ONNX graph: feats (1, T, 80) -> mean over T -> MatMul -> (1, 192)."""
    nodes = [
        helper.make_node("ReduceMean", ["feats", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "W"], ["embs"]),
    ]
    graph = helper.make_graph(
        nodes, "toy_speaker",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, "T", 80])],
        [helper.make_tensor_value_info("embs", TensorProto.FLOAT, [1, 192])],
        initializer=[numpy_helper.from_array(weight, "W"),
                     numpy_helper.from_array(np.array([1], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_backend_runs_a_real_graph(tmp_path: Path) -> None:
    weight = np.random.default_rng(3).normal(size=(80, 192)).astype(np.float32)
    path = tmp_path / "toy.onnx"
    _mean_linear_onnx(path, weight)
    audio, rate = read_wav_float(beckett())
    clip = resample_float(audio, rate, WIDEBAND_RATE_HZ)[: 3 * WIDEBAND_RATE_HZ]
    backend = OnnxBackend(path)
    emb = backend.embed(clip)
    expected = OnnxBackend.features(clip).mean(axis=0) @ weight
    expected /= np.linalg.norm(expected)
    assert emb.shape == (192,)
    assert np.allclose(emb, expected, atol=1e-4)


def test_ge2e_embedding_is_unit_and_deterministic() -> None:
    pytest.importorskip("torch", reason="GE2E (resemblyzer) is optional: requirements/torch.txt")
    backend = load_backend("resemblyzer")
    assert load_backend("resemblyzer") is backend  # loaded once per process
    audio, rate = read_wav_float(beckett())
    clip = resample_float(audio, rate, WIDEBAND_RATE_HZ)[: 3 * WIDEBAND_RATE_HZ]
    a, b = backend.embed(clip), backend.embed(clip)
    assert a.shape == (256,)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(a, b)
