"""Safe first import of librosa: numba's JIT cache in a private directory, compiled by one process at a time.

librosa compiles numba kernels when it is first imported and caches them on disk. Two processes
doing that at once were seen to corrupt the cache, after which every run segfaulted. Everything in
ser-live that needs librosa (training-time augmentation, the classic baseline recipe) gets it from
:func:`import_librosa`, which compiles under an inter-process lock and marks the cache as warm;
worker pools call it in the parent before they start. The live path does not import librosa at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

__all__ = ["numba_cache_dir", "import_librosa"]

_CACHE_ENV = "NUMBA_CACHE_DIR"


def numba_cache_dir() -> Path:
    """The numba cache directory ser-live uses, created if needed.

    ``$NUMBA_CACHE_DIR`` when set, else ``<user cache dir>/ser-live/numba``. Set in the
    environment before numba is imported, so child processes inherit it too.
    """
    if not os.environ.get(_CACHE_ENV):
        import platformdirs

        os.environ[_CACHE_ENV] = str(Path(platformdirs.user_cache_dir("ser-live")) / "numba")
    path = Path(os.environ[_CACHE_ENV])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _warm_marker(cache_dir: Path) -> Path:
    from importlib.metadata import version

    return cache_dir / f".warm-librosa{version('librosa')}-numba{version('numba')}"


def import_librosa(*, lock_timeout_s: float = 600.0) -> ModuleType:
    """Import librosa with its JIT kernels compiled by at most one process at a time.

    Parameters
    ----------
    lock_timeout_s : float
        How long to wait for another process that is compiling.

    Returns
    -------
    librosa : module
    """
    cache_dir = numba_cache_dir()
    marker = _warm_marker(cache_dir)
    if not marker.exists():
        from filelock import FileLock

        with FileLock(str(cache_dir / ".compile.lock"), timeout=lock_timeout_s):
            if not marker.exists():
                _compile_kernels()
                marker.touch()
    import librosa

    return librosa


def _compile_kernels() -> None:
    """Import librosa and call what ser-live uses once, so every kernel is compiled and cached."""
    import numpy as np
    import librosa

    y = np.zeros(4096, dtype=np.float32)
    y[::97] = 0.5
    librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13)
    librosa.feature.chroma_stft(y=y, sr=16000)
    librosa.feature.melspectrogram(y=y, sr=16000)
    librosa.effects.time_stretch(y, rate=1.1)
    librosa.effects.pitch_shift(y, sr=16000, n_steps=1.0)
