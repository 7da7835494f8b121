"""The speech encoder's blocks as an ONNX graph run by ONNX Runtime: the numpy path's float32 maths, fused and faster.

The graph is built from the arrays :class:`~ser_live.features.encoder.WhisperEncoder` already holds (with the
``onnx`` package; no download, no deep-learning framework) and run on one thread by ONNX Runtime's CPU provider,
which fuses the layer norms, GELUs and attention the numpy path computes op by op: on this project's 2-core
machine a 2 s window took 32 instead of 51 ms, with the same numbers to float32 rounding (``tests/test_encoder.py``).
Both packages are the optional ``fast`` extra.

Importing ``onnx`` and building the graph take 1-1.5 s, more than a monitor that must answer within a second of
starting can spare, so the built graph is kept in the user cache (:func:`graph_cache_path`: keyed by the weights'
SHA-256, the number of blocks and this module's own source, so a changed builder never loads an old graph) and
later starts load it in about 0.1 s without importing ``onnx``. ``make run`` and ``make test`` build it once
when they set up.

Why not int8: ONNX Runtime's dynamic quantisation of the matrix products (per tensor or per channel) moved the
pooled block-3 features by 37-43 % of their spread across windows (their centred cosine with the float32 ones
was 0.78-0.88), far beyond what keeps the shipped model's answers, for a further 1.3x.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["runtime_installed", "OnnxBlocks", "graph_cache_path"]


def runtime_installed() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package (to build the graph) are both installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def graph_cache_path(weights_sha256: str, n_blocks: int, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the built graph of these weights' first ``n_blocks`` blocks is kept.

    The name holds the weights' SHA-256, the number of blocks and the SHA-256 of this module's source, so new weights
    or a changed graph builder never load a graph built before. ``cache_dir`` defaults to the user cache
    (``~/.cache/ser-live/encoder`` on Linux).
    """
    if cache_dir is None:
        import platformdirs

        cache_dir = Path(platformdirs.user_cache_dir("ser-live")) / "encoder"
    builder = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return Path(cache_dir) / f"blocks-{weights_sha256[:16]}-{n_blocks}-{builder}.onnx"


def _keep(model: bytes, path: Path) -> None:
    """Write the graph to ``path`` atomically (two processes may build it at once) and remove the graphs an older
    builder made of the same weights and blocks (never loaded again); a cache that cannot be written (a read-only
    home) only costs the next start the build again."""
    tmp_path = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as tmp:
            tmp_path = tmp.name
            tmp.write(model)
        os.replace(tmp_path, path)
        for stale in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.onnx"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        if tmp_path is not None:
            Path(tmp_path).unlink(missing_ok=True)


class _Graph:
    """Nodes and constants of an ONNX graph under construction, each output named in turn."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.constants: list[Any] = []

    def const(self, value: Any) -> str:
        name = f"c{len(self.constants)}"
        self.constants.append(self._numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        name = f"t{len(self.nodes)}"
        self.nodes.append(self._helper.make_node(kind, list(inputs), [name], **attributes))
        return name

    def gelu(self, x: str) -> str:
        """Exact (erf) GELU, as the numpy path and Whisper compute it."""
        erf = self.op("Erf", self.op("Mul", x, self.const(np.float32(1.0 / np.sqrt(2.0)))))
        return self.op("Mul", self.op("Mul", x, self.op("Add", erf, self.const(np.float32(1.0)))),
                       self.const(np.float32(0.5)))

    def linear(self, x: str, weight_bias: tuple[np.ndarray, np.ndarray]) -> str:
        return self.op("Add", self.op("MatMul", x, self.const(weight_bias[0])), self.const(weight_bias[1]))

    def layer_norm(self, x: str, gamma_beta: tuple[np.ndarray, np.ndarray]) -> str:
        return self.op("LayerNormalization", x, self.const(gamma_beta[0]), self.const(gamma_beta[1]), axis=-1,
                       epsilon=1e-5)


def _front_end(graph: _Graph, convolutions: Sequence[tuple[np.ndarray, np.ndarray]], positions: np.ndarray) -> str:
    """Two GELU convolutions over the log-mel frames, then the positions: (windows, frames, width)."""
    x = graph.op("Transpose", "mel", perm=[0, 2, 1])  # Conv wants (windows, bands, frames)
    for stride, (taps, bias) in zip((1, 2), convolutions):
        kernel = taps.reshape(3, taps.shape[0] // 3, taps.shape[1]).transpose(2, 1, 0)  # back to (out, in, 3)
        x = graph.gelu(graph.op("Conv", x, graph.const(np.ascontiguousarray(kernel)), graph.const(bias),
                                kernel_shape=[3], pads=[1, 1], strides=[stride]))
    x = graph.op("Transpose", x, perm=[0, 2, 1])
    n_frames = graph.op("Slice", graph.op("Shape", x), graph.const(np.array([1])), graph.const(np.array([2])))
    used = graph.op("Slice", graph.const(positions), graph.const(np.array([0])), n_frames, graph.const(np.array([0])))
    return graph.op("Add", x, used)


def _block(graph: _Graph, x: str, arrays: dict[str, tuple[np.ndarray, np.ndarray]], n_heads: int) -> str:
    """One pre-norm transformer block, as :meth:`WhisperEncoder._block` computes it."""
    width = arrays["out"][0].shape[0]
    head = width // n_heads
    qkv = graph.op("Reshape", graph.linear(graph.layer_norm(x, arrays["ln1"]), arrays["qkv"]),
                   graph.const(np.array([0, 0, 3, n_heads, head])))
    q, k, v = (graph.op("Gather", qkv, graph.const(np.array(i)), axis=2) for i in range(3))
    scores = graph.op("MatMul", graph.op("Transpose", q, perm=[0, 2, 1, 3]),
                      graph.op("Transpose", k, perm=[0, 2, 3, 1]))
    weights = graph.op("Softmax", graph.op("Mul", scores, graph.const(np.float32(head**-0.5))), axis=-1)
    attended = graph.op("Transpose", graph.op("MatMul", weights, graph.op("Transpose", v, perm=[0, 2, 1, 3])),
                        perm=[0, 2, 1, 3])
    attended = graph.op("Reshape", attended, graph.const(np.array([0, 0, width])))
    x = graph.op("Add", x, graph.linear(attended, arrays["out"]))
    hidden = graph.gelu(graph.linear(graph.layer_norm(x, arrays["ln2"]), arrays["fc1"]))
    return graph.op("Add", x, graph.linear(hidden, arrays["fc2"]))


def _model_bytes(convolutions: list[tuple[np.ndarray, np.ndarray]], positions: np.ndarray,
                 blocks: list[dict[str, tuple[np.ndarray, np.ndarray]]], n_heads: int) -> bytes:
    """The serialised ONNX model; ``convolutions`` and ``blocks`` are emptied as their arrays are copied into it, so
    the weights are held about twice at most while it is built, not three times."""
    from onnx import TensorProto, helper

    graph = _Graph()
    x = _front_end(graph, convolutions, positions)
    convolutions.clear()
    outputs = []
    while blocks:
        x = _block(graph, x, blocks.pop(0), n_heads)
        outputs.append(x)
    proto = helper.make_model(
        helper.make_graph(graph.nodes, "whisper-encoder-blocks",
                          [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["windows", "frames", 80])],
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                          graph.constants),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    graph.constants.clear()
    return proto.SerializeToString()


class OnnxBlocks:
    """The encoder's front end and blocks as one ONNX Runtime session on one thread.

    Parameters
    ----------
    convolutions : list of (taps matrix, bias)
        The two convolutions as the numpy path holds them ((3 * in, out) matrices over stacked taps).
    positions : np.ndarray, shape (max_frames, width)
    blocks : list of dict
        Each block's layer norms and (transposed) linear layers, as the numpy path holds them.
    n_heads : int
    cached : path, optional
        Where the built graph is kept (:func:`graph_cache_path`): loaded from there when it is, else built and
        written there. ``None`` builds it in memory only.

    The session takes the weights over: ``convolutions`` and ``blocks`` are left empty, so that the numpy copies
    can be freed (the session holds its own).

    Attributes
    ----------
    loaded_from_cache : bool
        Whether the graph came from ``cached`` rather than being built here.
    """

    def __init__(self, convolutions: list[tuple[np.ndarray, np.ndarray]], positions: np.ndarray,
                 blocks: list[dict[str, tuple[np.ndarray, np.ndarray]]], n_heads: int, *,
                 cached: str | os.PathLike[str] | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread, as every other product of the analysis: the cores are the batch workers' or the GUI's.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = self._cached_session(onnxruntime, options, cached)
        self.loaded_from_cache = self._session is not None
        if self._session is None:
            model = _model_bytes(convolutions, positions, blocks, n_heads)
            if cached is not None:
                _keep(model, Path(cached))
            self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        convolutions.clear()
        blocks.clear()
        self.version = onnxruntime.__version__

    @staticmethod
    def _cached_session(onnxruntime: Any, options: Any, cached: str | os.PathLike[str] | None) -> Any:
        """The session of the kept graph, or ``None`` when there is none (or it no longer loads: built anew)."""
        if cached is None or not Path(cached).is_file():
            return None
        try:
            return onnxruntime.InferenceSession(os.fspath(cached), options, providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - a damaged cache file (any of ONNX Runtime's load errors) is rebuilt
            return None

    def __call__(self, log_mel: np.ndarray) -> list[np.ndarray]:
        """Every block's output for a batch of equally long log-mel spectrograms (windows, frames, 80)."""
        return self._session.run(None, {"mel": np.ascontiguousarray(log_mel, dtype=np.float32)})

