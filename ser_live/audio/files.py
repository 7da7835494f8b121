"""Audio files in: reading whole or in blocks, mixing to mono and resampling to the model's rate.

Reading goes through ``soundfile`` (WAV, FLAC, OGG, and whatever libsndfile reads) and
resampling through ``soxr``; long files are streamed block by block so memory stays flat.
Every failure becomes an :class:`~ser_live.errors.AudioFileError` whose message names the file.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import AudioFileError, AudioFileWarning

__all__ = [
    "AUDIO_EXTENSIONS",
    "to_mono",
    "sanitise_samples",
    "resample",
    "audio_info",
    "read_audio",
    "iter_audio_blocks",
    "find_audio_files",
]

#: File endings treated as audio when a folder is searched.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus"})


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Mix ``(n_frames, n_channels)`` (or 1-D) audio to mono float32 by averaging the channels."""
    samples = np.asarray(samples)
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    if samples.ndim != 2:
        raise ValueError(f"expected (n_frames, n_channels) audio, got shape {samples.shape}")
    return samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def sanitise_samples(samples: np.ndarray) -> np.ndarray:
    """Make samples safe to analyse: NaN and ±inf become silence, values beyond full scale are clipped.

    A corrupt float file or a buggy source must not poison the windows after it: non-finite
    samples are treated as drop-outs (0) and finite ones are clipped to [-1, 1], as an
    analogue-to-digital converter would. Done in the input's precision, before the cast to
    float32, so huge float64 values cannot overflow.

    Parameters
    ----------
    samples : np.ndarray
        Any shape. Integer PCM (int16, int32, uint8, ...) is scaled to [-1, 1) by its type's full scale.

    Returns
    -------
    np.ndarray
        float32, same shape; the input itself (cast) when it was already clean.
    """
    samples = np.asarray(samples)
    if samples.dtype.kind in "iu":  # integer PCM: scale by the type's full scale, as soundfile does
        info = np.iinfo(samples.dtype)
        offset = (int(info.max) + 1) // 2 if samples.dtype.kind == "u" else 0
        full_scale = float(info.max) + 1.0 - offset
        return ((samples.astype(np.float64) - offset) / full_scale).astype(np.float32)
    if samples.dtype.kind not in "fc":
        return samples.astype(np.float32)
    if samples.dtype.kind == "c":
        samples = samples.real
    with np.errstate(invalid="ignore"):
        clean = bool(np.all(np.abs(samples) <= 1.0)) if samples.size else True
    if not clean:
        samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    return samples.astype(np.float32, copy=False)


def resample(samples: np.ndarray, *, from_rate_hz: int, to_rate_hz: int) -> np.ndarray:
    """Resample mono audio with soxr's high-quality filter (identity when the rates match)."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_rate_hz == to_rate_hz or samples.size == 0:
        return samples
    import soxr

    return soxr.resample(samples, from_rate_hz, to_rate_hz, quality="HQ").astype(np.float32, copy=False)


def _check_readable_file(path: Path) -> None:
    """A regular, readable, non-empty file, or an :class:`AudioFileError` naming what the path is instead."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise AudioFileError(f"{path}: no such file") from None
    except OSError as exc:  # e.g. a folder on the way that may not be entered
        raise AudioFileError(f"{path}: cannot be reached ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(status.st_mode):
        raise AudioFileError(f"{path}: is a folder, not an audio file")
    if not stat.S_ISREG(status.st_mode):
        raise AudioFileError(f"{path}: is not a regular file (a device, a pipe or a socket); give an audio file")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"{path}: permission denied (this user may not read it)")
    if status.st_size == 0:
        raise AudioFileError(f"{path}: the file is empty")


def _open(path: Path):
    import soundfile as sf

    _check_readable_file(path)
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).split(":")[-1].strip() or type(exc).__name__
        raise AudioFileError(f"{path}: not a readable audio file ({reason})") from exc
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot be opened ({exc.strerror or exc})") from exc


def _header_frames(f) -> int:
    """Frames the file's header promises, where libsndfile noted that the data is shorter (else 0).

    libsndfile reads what is there and reports that as the length; its log keeps what the header said
    (``data : 168640 (should be 14400)``).
    """
    import re

    log = getattr(f, "extra_info", "") or ""
    data = re.search(r"^data\s*:\s*(\d+)\s*\(should be", log, re.MULTILINE)
    align = re.search(r"Block Align\s*:\s*(\d+)", log)
    if data is None or align is None or int(align.group(1)) <= 0:
        return 0
    return int(data.group(1)) // int(align.group(1))


def audio_info(path: str | os.PathLike[str]) -> tuple[float, int, int]:
    """``(duration_s, sample_rate_hz, channels)`` of an audio file, read from its header."""
    path = Path(path)
    with _open(path) as f:
        return f.frames / f.samplerate if f.samplerate else 0.0, f.samplerate, f.channels


def iter_audio_blocks(
    path: str | os.PathLike[str], *, sample_rate_hz: int, block_s: float = 1.0
) -> Iterator[np.ndarray]:
    """Stream a file as mono float32 blocks at ``sample_rate_hz``.

    Parameters
    ----------
    path : path-like
    sample_rate_hz : int
        Output rate; the file is resampled with a streaming soxr resampler when it differs.
    block_s : float
        Approximate block length in seconds of the file's own audio.

    Yields
    ------
    block : np.ndarray, shape (n,)

    Raises
    ------
    AudioFileError
        If the file is missing, empty, unreadable, or holds no audio frames.
    """
    import soundfile as sf

    path = Path(path)
    f = _open(path)
    with f:
        if f.frames == 0:
            raise AudioFileError(f"{path}: holds no audio")
        block_frames = max(1, int(f.samplerate * block_s))
        resampler = None
        if f.samplerate != sample_rate_hz:
            import soxr

            resampler = soxr.ResampleStream(f.samplerate, sample_rate_hz, 1, dtype="float32", quality="HQ")
        n_read = 0
        while True:
            try:
                block = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioFileError(f"{path}: damaged after {n_read / f.samplerate:.1f} s ({exc})") from exc
            last = block.shape[0] < block_frames
            n_read += block.shape[0]
            mono = to_mono(sanitise_samples(block))
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if mono.size:
                yield mono
            if last:
                break
        if n_read == 0:
            raise AudioFileError(f"{path}: holds no audio (the header may be truncated)")
        promised = max(f.frames, _header_frames(f))
        if n_read < promised:
            warnings.warn(AudioFileWarning(
                f"{path}: the file is shorter than its header says ({n_read / f.samplerate:.2f} s of "
                f"{promised / f.samplerate:.2f} s); it is truncated or was cut while being read"), stacklevel=2)


def read_audio(path: str | os.PathLike[str], *, sample_rate_hz: int) -> np.ndarray:
    """Read a whole file as mono float32 at ``sample_rate_hz`` (see :func:`iter_audio_blocks`)."""
    blocks = list(iter_audio_blocks(path, sample_rate_hz=sample_rate_hz, block_s=30.0))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def find_audio_files(paths: list[str | os.PathLike[str]],
                     unreadable: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Expand files and folders (recursively) to audio files, sorted within each folder.

    Files named explicitly are kept whatever their ending (so a bad one is reported, not
    silently skipped); inside folders only :data:`AUDIO_EXTENSIONS` are taken.

    Parameters
    ----------
    paths : list of path-like
    unreadable : list, optional
        Receives ``(folder, reason)`` for every folder that could not be listed (no permission, ...),
        so that the caller can report them instead of skipping them silently.
    """
    found: list[Path] = []

    def failed(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append((Path(exc.filename), exc.strerror or str(exc)))

    for p in map(Path, paths):
        if p.is_dir():
            here: list[Path] = []
            for folder, _dirs, names in os.walk(p, onerror=failed):
                here.extend(Path(folder) / n for n in names if Path(n).suffix.lower() in AUDIO_EXTENSIONS
                            and (Path(folder) / n).is_file())
            found.extend(sorted(here))
        else:
            found.append(p)
    return found
