"""Reading corpus audio: any soundfile-readable file to mono float32 at the model's sample rate."""

from __future__ import annotations

import os

import numpy as np

from ..errors import AudioFileError

__all__ = ["load_audio", "content_sha256"]


def load_audio(path: str | os.PathLike[str], *, sample_rate_hz: int = 16000) -> np.ndarray:
    """Read an audio file as mono float32 at ``sample_rate_hz``.

    Channels are averaged; other rates are converted with soxr's high-quality resampler (the public
    releases of most corpora are 44.1 or 48 kHz WAV).

    Raises
    ------
    AudioFileError
        If the file cannot be read or holds no samples.
    """
    import soundfile as sf

    try:
        y, rate_hz = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioFileError(f"cannot read audio file {path}: {exc}") from exc
    if y.shape[0] == 0:
        raise AudioFileError(f"audio file {path} holds no samples")
    y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    if rate_hz != sample_rate_hz:
        import soxr

        y = soxr.resample(y, rate_hz, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


def content_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes: the feature cache's key, so renamed or moved files still hit it."""
    from ..model import file_sha256

    return file_sha256(path)
