"""Safe first import of librosa: numba's JIT cache in a private directory, compiled and checked by one process.

librosa compiles numba kernels when it is first used and caches them on disk. Two processes doing
that at once were seen to corrupt the cache, after which every run segfaulted until the cache was
deleted. Everything in ser-live that needs librosa (training-time augmentation, the classic
baseline recipe, the DSP cross-checks) gets it from :func:`import_librosa`, which

1. keeps the cache in ser-live's own directory (``$NUMBA_CACHE_DIR`` or the user cache dir);
2. lets one process at a time compile, under an inter-process file lock, every kernel ser-live uses;
3. compiles in a child process and then loads the fresh cache in a second child, so a crash while
   compiling or a corrupt cache is detected (not inherited by the caller): the cache is wiped and
   rebuilt once, else a clear error is raised;
4. marks the cache warm (atomically, keyed by the library versions) only after that check passed.

Worker pools call it in the parent before they start, so workers only ever read a warm cache.
The live path (console, window, ``--classify``) does not import librosa or numba at all.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from ..errors import SerLiveError

__all__ = ["numba_cache_dir", "ensure_warm_cache", "import_librosa", "JitCacheError"]

_CACHE_ENV = "NUMBA_CACHE_DIR"
_log = logging.getLogger(__name__)
#: Bump when :func:`_compile_kernels` calls new librosa functions, so existing caches are re-warmed.
KERNELS_VERSION = 2
_LOCK_NAME = ".compile.lock"
#: True in a process that compiled the kernels itself (for tests and diagnostics).
compiled_here = False


class JitCacheError(SerLiveError):
    """librosa's numba kernels could not be compiled into a working cache."""


def numba_cache_dir() -> Path:
    """The numba cache directory ser-live uses, created if needed.

    ``$NUMBA_CACHE_DIR`` when set, else ``<user cache dir>/ser-live/numba``. Set in the
    environment (inherited by child processes) and, if numba is already imported, in its config.
    """
    if not os.environ.get(_CACHE_ENV):
        import platformdirs

        os.environ[_CACHE_ENV] = str(Path(platformdirs.user_cache_dir("ser-live")) / "numba")
    path = Path(os.environ[_CACHE_ENV])
    path.mkdir(parents=True, exist_ok=True)
    numba = sys.modules.get("numba")
    if numba is not None:  # numba read the variable at import; make it use ours for kernels compiled from now on
        numba.config.CACHE_DIR = str(path)
    return path


def _warm_marker(cache_dir: Path) -> Path:
    from importlib.metadata import version

    import numpy as np

    key = (
        f"librosa{version('librosa')}-numba{version('numba')}-numpy{np.__version__}"
        f"-py{sys.version_info[0]}.{sys.version_info[1]}-k{KERNELS_VERSION}"
    )
    return cache_dir / f".warm-{key}"


def _child_env(cache_dir: Path) -> dict[str, str]:
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding ser_live/
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, _CACHE_ENV: str(cache_dir), "PYTHONPATH": python_path}


def _run_kernels_in_child(cache_dir: Path, timeout_s: float) -> tuple[int, str]:
    """Run :func:`_compile_kernels` in a fresh interpreter; ``(returncode, stderr tail)``."""
    code = "from ser_live.training.jit_cache import _compile_kernels; _compile_kernels()"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], env=_child_env(cache_dir), capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout_s:g} s"
    return proc.returncode, " / ".join(proc.stderr.strip().splitlines()[-3:])


def _clear_cache(cache_dir: Path) -> None:
    """Delete everything in the cache directory but the lock (held by us)."""
    for entry in cache_dir.iterdir():
        if entry.name == _LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _describe(returncode: int) -> str:
    if returncode < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"status {returncode}"
    return f"exit status {returncode}"


def _build_cache(cache_dir: Path, marker: Path, timeout_s: float) -> None:
    """Compile, then check the cache loads, in children; wipe and retry once. Caller holds the lock."""
    global compiled_here
    problems = []
    for _attempt in range(2):
        # Compile (writes the cache), then load it in a fresh process (reads it back): a corrupt
        # cache shows up here as a crash of the second child rather than in every later run.
        for step in ("compiling", "loading the compiled cache"):
            code, err = _run_kernels_in_child(cache_dir, timeout_s)
            if code != 0:
                problems.append(f"{step} {_describe(code)}{': ' + err if err else ''}")
                break
        else:
            tmp = marker.with_name(marker.name + f".{os.getpid()}.tmp")
            tmp.write_text("compiled and loaded back\n")
            os.replace(tmp, marker)
            compiled_here = True
            return
        _clear_cache(cache_dir)
    raise JitCacheError(
        f"librosa's numba kernels could not be compiled into {cache_dir} ({'; then '.join(problems)}); "
        f"set {_CACHE_ENV} to another folder or reinstall numba and librosa"
    )


def ensure_warm_cache(*, lock_timeout_s: float = 900.0, compile_timeout_s: float = 900.0) -> Path:
    """Make sure every kernel ser-live uses is compiled into a cache that loads; return the cache dir.

    Parameters
    ----------
    lock_timeout_s : float
        How long to wait for another process that is compiling.
    compile_timeout_s : float
        Limit for one compile or check run.

    Raises
    ------
    JitCacheError
        If the kernels cannot be compiled into a working cache (after one wipe-and-retry), or
        another process holds the lock for longer than ``lock_timeout_s``.
    """
    from filelock import FileLock, Timeout

    cache_dir = numba_cache_dir()
    marker = _warm_marker(cache_dir)
    if marker.exists():
        return cache_dir
    lock = FileLock(str(cache_dir / _LOCK_NAME))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:  # say why we seem to hang, then wait
            _log.warning("waiting for another process to finish compiling librosa's kernels in %s", cache_dir)
            lock.acquire(timeout=lock_timeout_s)
        try:
            if not marker.exists():  # another process may have finished while we waited
                _log.warning("compiling librosa's kernels once into %s (a minute or so)", cache_dir)
                _build_cache(cache_dir, marker, compile_timeout_s)
        finally:
            lock.release()
    except Timeout:
        raise JitCacheError(
            f"another process has been compiling librosa's kernels in {cache_dir} for over "
            f"{lock_timeout_s:g} s; wait for it, or stop it and delete that folder"
        ) from None
    return cache_dir


def import_librosa(*, lock_timeout_s: float = 900.0) -> ModuleType:
    """Import librosa once its JIT cache is warm (see :func:`ensure_warm_cache`).

    Parameters
    ----------
    lock_timeout_s : float
        How long to wait for another process that is compiling.

    Returns
    -------
    librosa : module
    """
    ensure_warm_cache(lock_timeout_s=lock_timeout_s)
    import librosa

    return librosa


def _compile_kernels() -> None:
    """Import librosa and call every function ser-live uses once, so each kernel is compiled and cached.

    tests/test_reliability_concurrency.py checks that every ``librosa.*`` call in ser-live is made here.
    """
    import librosa
    import numpy as np

    y = np.zeros(16000, dtype=np.float32)
    y[::97] = 0.5
    stft = np.abs(librosa.stft(y))
    mel = librosa.filters.mel(sr=16000, n_fft=2048) @ stft**2
    librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
    librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13)
    librosa.feature.chroma_stft(S=stft, sr=16000)
    librosa.feature.chroma_stft(y=y, sr=16000)
    librosa.feature.melspectrogram(y=y, sr=16000)
    librosa.feature.delta(mel, width=5, order=1, mode="nearest")
    librosa.mel_to_hz(librosa.hz_to_mel(np.array([100.0, 1000.0])))
    librosa.effects.time_stretch(y, rate=1.1)
    librosa.effects.pitch_shift(y, sr=16000, n_steps=1.0)
    librosa.effects.pitch_shift(y, sr=16000, n_steps=1.0, res_type="soxr_hq")
