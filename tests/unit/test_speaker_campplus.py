"""CAM++ without torch: the checkpoint reader refuses foreign objects, the Kaldi fbank front end,
and the exported ONNX encoder on real speech (8 kHz G.711, as calls carry it)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from audio.g711 import telephone_band
from audio.pcm import WIDEBAND_RATE_HZ
from audio.resample import resample_float
from speaker_id.backends import CAMPPLUS_MODEL, BackendError, cosine, load_backend
from speaker_id.export_campplus import CheckpointError, load_state_dict
from speaker_id.fbank import fbank, kaldi_mel_banks
from speaker_id.testdata import real_utterances


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def _zip_with(tmp_path: Path, payload: bytes) -> Path:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
    return path


def test_checkpoint_reader_refuses_code_in_the_pickle(tmp_path: Path) -> None:
    path = _zip_with(tmp_path, pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(CheckpointError, match="refusing pickled object"):
        load_state_dict(path)


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def test_checkpoint_reader_reads_a_state_dict(tmp_path: Path) -> None:
    """A state dict pickled the way torch writes one (opcodes spelt out: torch is not needed):
    OrderedDict(w=_rebuild_tensor_v2(<storage 0>, 0, (2, 3), (3, 1), False, None))."""
    storage_id = (b"(" + _u("storage") + b"ctorch\nFloatStorage\n" + _u("0") + _u("cpu")
                  + b"K\x06tQ")
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage_id + b"K\x00K\x02K\x03\x86"
              b"K\x03K\x01\x86\x89NtR")
    payload = b"\x80\x02ccollections\nOrderedDict\n)R" + _u("w") + tensor + b"s."
    weights = np.arange(6, dtype=np.float32)
    path = tmp_path / "sd.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/data/0", weights.tobytes())
    sd = load_state_dict(path)
    assert sd["w"].shape == (2, 3) and sd["w"][1, 2] == 5.0
    with pytest.raises(CheckpointError, match="no data.pkl"):
        load_state_dict(_empty_zip(tmp_path))


def _empty_zip(tmp_path: Path) -> Path:
    path = tmp_path / "empty.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("other.txt", "x")
    return path


def test_fbank_frames_and_mel_layout() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(WIDEBAND_RATE_HZ).astype(np.float32) * 0.1
    f = fbank(x)
    assert f.shape == (98, 80)  # Kaldi snip_edges: 1 + (16000 - 400) // 160
    assert np.allclose(f.mean(axis=0), 0.0, atol=1e-4)  # mean-normalised per bin
    banks = kaldi_mel_banks(80)
    assert banks.shape == (80, 257) and np.all(banks[:, -1] == 0)
    peaks = banks.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0) and peaks[0] >= 1  # 20 Hz up, bins move up
    assert fbank(x[:399]).shape == (0, 80)


@pytest.mark.models
def test_campplus_separates_real_speakers_at_8k() -> None:
    if not CAMPPLUS_MODEL.is_file():
        pytest.fail(f"{CAMPPLUS_MODEL} missing: run scripts/fetch_models.sh")
    backend = load_backend("campplus")
    utts = real_utterances()

    def emb(label: str, i: int) -> np.ndarray:
        a, r = utts[label][i]
        return backend.embed(resample_float(telephone_band(a, r), 8000, WIDEBAND_RATE_HZ))

    same = cosine(emb("pyannote_spk91", 0), emb("pyannote_spk91", 1))
    other = cosine(emb("pyannote_spk91", 0), emb("pyannote_spk90", 1))
    zh_same = cosine(emb("zh_weiwei", 0), emb("zh_weiwei", 1))
    zh_other = cosine(emb("zh_weiwei", 0), emb("zh_xiaoyan", 0))
    assert same > 0.5 > other, (same, other)
    assert zh_same > 0.5 > zh_other, (zh_same, zh_other)
    a = emb("beckett", 0)
    assert a.shape == (192,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(a, emb("beckett", 0))
    with pytest.raises(BackendError, match="too short"):
        backend.embed(np.zeros(4000, np.float32))
