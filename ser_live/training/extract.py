"""Feature extraction for training: live windows of each recording, gated, featurised, in parallel and cached.

Training examples are made exactly as the live monitor makes them, by the code ``--classify`` uses
(:func:`ser_live.engine.monitor.gated_window_features`): the recording is cut into the live windows
(ending every hop, zero-padded at the start), each window goes through a fresh
:class:`ser_live.dsp.gate.SpeechGate` in stream order, and only the windows it calls speech are
featurised by the model's :class:`~ser_live.features.extractor.FeatureExtractor` (the same numbers as live).

Results are cached on disk, one small ``.npz`` per (file content, variant), where the variant key
hashes everything that changes the numbers: the extractor's declared kind, version and
configuration (for an encoder, its weights' SHA-256), window and hop, the gate's settings and
version, augmentation settings and copy index. A second run only reads the cache. What is cached
is the extractor's :meth:`~ser_live.features.extractor.FeatureExtractor.cached_as` (for an encoder, the pooled
states of every block), so another choice of blocks reads the same entries.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.files import read_audio
from ..dsp.gate import GATE_VERSION
from ..features.extractor import FeatureExtractor, HandcraftedFeatures
from ..model.emotion_model import file_sha256
from .augment import Augmenter
from .corpora import Utterance

__all__ = ["EXTRACTION_VERSION", "WindowSetup", "FeatureCache", "FeatureSet", "window_features", "extract_dataset",
           "extract_condition", "default_cache_dir"]

#: Bump when this module changes how windows are chosen, so stale cache entries are not reused.
EXTRACTION_VERSION = 2


@dataclasses.dataclass(frozen=True)
class WindowSetup:
    """How recordings become model inputs: the same settings the live monitor uses.

    Parameters
    ----------
    extractor : FeatureExtractor
        What turns a window into the model's input (the handcrafted features by default).
    window_s, hop_s : float
        Analysis window length and hop in seconds.
    gate_params : tuple of (str, value) pairs
        Keyword arguments of :class:`ser_live.dsp.gate.SpeechGate` other than the sample rate
        (empty: the gate's defaults, as the live monitor uses them).
    """

    extractor: FeatureExtractor = HandcraftedFeatures()
    window_s: float = 2.0
    hop_s: float = 0.5
    gate_params: tuple[tuple[str, Any], ...] = ()

    @property
    def sample_rate_hz(self) -> int:
        """Rate of the audio fed to the features."""
        return self.extractor.sample_rate_hz

    @property
    def window_samples(self) -> int:
        """Samples per analysis window."""
        return int(round(self.window_s * self.sample_rate_hz))

    @property
    def hop_samples(self) -> int:
        """Samples between analysis windows."""
        return int(round(self.hop_s * self.sample_rate_hz))

    def make_gate(self) -> Any:
        """A fresh speech gate (its noise floor starts unknown, as at the start of a live stream)."""
        from ..dsp.gate import SpeechGate

        return SpeechGate(sample_rate_hz=self.sample_rate_hz, **dict(self.gate_params))

    def key_dict(self) -> dict[str, Any]:
        """Everything about the setup that changes the extracted numbers."""
        gate = self.make_gate()
        gate_settings = {k: v for k, v in sorted(vars(gate).items()) if not k.startswith("_") and k != "noise_floor_db"}
        return {
            "extractor": self.extractor.cache_key(),
            "window_s": self.window_s,
            "hop_s": self.hop_s,
            "gate": gate_settings,
            "gate_version": GATE_VERSION,
            "extraction_version": EXTRACTION_VERSION,
        }


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def window_features(y: np.ndarray, setup: WindowSetup) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors of the live windows of one recording that the speech gate accepts.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``setup.sample_rate_hz``.
    setup : WindowSetup

    Returns
    -------
    features : np.ndarray, shape (n_accepted, n_features), float32
    end_samples : np.ndarray, shape (n_accepted,), int64
        Where each accepted window ends.
    """
    from ..engine.monitor import gated_window_features

    gated = gated_window_features([y], gate=setup.make_gate(), extractor=setup.extractor,
                                  window_samples=setup.window_samples, hop_samples=setup.hop_samples)
    return gated.features, gated.end_samples


def default_cache_dir() -> Path:
    """``<user cache dir>/ser-live/features`` (overridable with ``$SER_LIVE_FEATURE_CACHE``)."""
    if os.environ.get("SER_LIVE_FEATURE_CACHE"):
        return Path(os.environ["SER_LIVE_FEATURE_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("ser-live")) / "features"


class FeatureCache:
    """On-disk cache of per-file arrays, keyed by file content hash and variant key.

    Parameters
    ----------
    directory : path-like or None
        Where entries live; ``None`` disables caching.
    """

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    def _path(self, file_hash: str, variant: str) -> Path:
        assert self.directory is not None
        return self.directory / variant / file_hash[:2] / f"{file_hash}.npz"

    def get(self, file_hash: str, variant: str) -> dict[str, np.ndarray] | None:
        """The stored arrays, or ``None`` when absent or unreadable (a damaged entry is recomputed)."""
        if self.directory is None:
            return None
        path = self._path(file_hash, variant)
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError):
            return None

    def put(self, file_hash: str, variant: str, arrays: dict[str, np.ndarray]) -> None:
        """Store arrays atomically (a crash never leaves a half-written entry behind)."""
        if self.directory is None:
            return
        path = self._path(file_hash, variant)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)


@dataclasses.dataclass
class FeatureSet:
    """Everything extracted from a list of utterances.

    Attributes
    ----------
    utterances : list of Utterance
        The utterances that yielded at least one speech window (index = utterance id).
    X : np.ndarray, shape (n_windows, n_features)
        Window features, originals and augmented copies.
    utterance_index : np.ndarray, shape (n_windows,)
        Which utterance each window comes from.
    copy : np.ndarray, shape (n_windows,)
        0 for the original recording, k >= 1 for augmented copy k.
    classic : np.ndarray or None, shape (n_utterances, n_classic_features)
        Whole-utterance features of the classic baseline recipe.
    dropped : list of (Utterance, str)
        Utterances left out, with the reason.
    """

    utterances: list[Utterance]
    X: np.ndarray
    utterance_index: np.ndarray
    copy: np.ndarray
    classic: np.ndarray | None = None
    dropped: list[tuple[Utterance, str]] = dataclasses.field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        """Label of each utterance."""
        return np.array([u.label for u in self.utterances])

    @property
    def speakers(self) -> np.ndarray:
        """Corpus-prefixed speaker of each utterance."""
        return np.array([u.speaker for u in self.utterances])

    @property
    def corpora(self) -> np.ndarray:
        """Corpus of each utterance."""
        return np.array([u.corpus for u in self.utterances])

    def window_strata(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each window's recording (an augmented copy is a recording of its own), speaker and corpus: what the
        training weights share a class out over (:func:`~ser_live.training.estimator.window_weights`)."""
        recordings = self.utterance_index * 1000 + self.copy
        return recordings, self.speakers[self.utterance_index], self.corpora[self.utterance_index]

    def subset(self, keep_utterances: np.ndarray) -> FeatureSet:
        """The windows of some utterances only (utterance ids renumbered in the order given; no classic features)."""
        keep_utterances = np.asarray(keep_utterances, dtype=np.int64)
        new_id = np.full(len(self.utterances), -1)
        new_id[keep_utterances] = np.arange(keep_utterances.size)
        rows = new_id[self.utterance_index] >= 0
        return dataclasses.replace(self, utterances=[self.utterances[i] for i in keep_utterances], X=self.X[rows],
                                   utterance_index=new_id[self.utterance_index[rows]], copy=self.copy[rows],
                                   classic=None, dropped=[])


# --- worker side -------------------------------------------------------------------------------


def _init_worker() -> None:
    """Worker start-up (:func:`ser_live.process.start_worker`), leaving Ctrl-C to the parent."""
    from ..process import start_worker

    start_worker()



@dataclasses.dataclass(frozen=True)
class _Job:
    """The missing variants of one file, for a worker."""

    path: str
    file_hash: str
    entry_key: str  # the cache entry: the content hash, and for a condition with babble its talkers too
    variants: list[tuple[str, str, Any]]
    setup: WindowSetup
    augmenter: Augmenter | None
    cache_dir: str | None


def _variant_audio(y: np.ndarray, kind: str, arg: Any, job: _Job) -> np.ndarray:
    """The audio a variant's windows are cut from."""
    rate = job.setup.sample_rate_hz
    if kind == "augmented":
        assert job.augmenter is not None
        return job.augmenter(y, sample_rate_hz=rate, rng=job.augmenter.rng(job.file_hash, int(arg)))
    if kind == "condition":
        condition, talker_paths = arg
        talkers = [read_audio(p, sample_rate_hz=rate) for p in talker_paths]
        return condition(y, sample_rate_hz=rate, file_key=job.file_hash, talkers=talkers)
    return y


def _extract_one(job: _Job) -> tuple[str, dict[str, dict[str, np.ndarray]] | str]:
    """Compute the missing variants of one file; runs in a worker process."""
    cache = FeatureCache(job.cache_dir)
    try:
        y = read_audio(job.path, sample_rate_hz=job.setup.sample_rate_hz)
    except Exception as exc:  # one unreadable file must not stop a corpus run
        return job.path, f"unreadable audio ({exc})"
    out: dict[str, dict[str, np.ndarray]] = {}
    for variant, kind, arg in job.variants:
        if kind == "classic":
            from .classic import classic_features

            arrays = {"X": classic_features(y, sample_rate_hz=job.setup.sample_rate_hz)[None, :]}
        else:
            X, ends = window_features(_variant_audio(y, kind, arg, job), job.setup)
            arrays = {"X": X, "end": ends}
        cache.put(job.entry_key, variant, arrays)
        out[variant] = arrays
    return job.path, out


# --- parent side -------------------------------------------------------------------------------


def extract_dataset(
    utterances: Sequence[Utterance],
    setup: WindowSetup = WindowSetup(),
    *,
    augmenter: Augmenter | None = None,
    classic: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> FeatureSet:
    """Extract (or read from the cache) the features of every utterance.

    Parameters
    ----------
    utterances : sequence of Utterance
    setup : WindowSetup
    augmenter : Augmenter, optional
        Also make ``augmenter.n_copies`` augmented copies of every file (they are used for
        training folds only; see :func:`ser_live.training.evaluate.cross_validate`).
    classic : bool
        Also compute the classic baseline's whole-utterance features.
    cache_dir : path-like, optional
        Feature cache directory; ``None`` uses :func:`default_cache_dir`.
    n_jobs : int, optional
        Worker processes; all cores when omitted.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    FeatureSet
    """
    setup_key = _cached_setup(setup).key_dict()
    variants: list[tuple[str, str, Any]] = [("live-" + _digest(setup_key), "live", None)]
    if augmenter is not None:
        aug_key = {k: v for k, v in augmenter.to_dict().items() if k != "n_copies"}
        variants += [("aug-" + _digest([setup_key, aug_key, c]), "augmented", c)
                     for c in range(1, augmenter.n_copies + 1)]
    if classic:
        from .classic import CLASSIC_KEY

        variants.append(("classic-" + _digest(CLASSIC_KEY), "classic", None))
    return _extract(utterances, lambda utt: variants, setup, augmenter, cache_dir, n_jobs, progress)


def extract_condition(
    utterances: Sequence[Utterance],
    condition: Any,
    setup: WindowSetup = WindowSetup(),
    *,
    talkers: dict[str, Sequence[str]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> FeatureSet:
    """The features of every utterance under a test condition (see :mod:`ser_live.training.conditions`).

    Parameters
    ----------
    utterances : sequence of Utterance
    condition : RoomNoise or ShortReply
        Turns a clean recording into the condition's; seeded by the recording's content, so cached.
    setup : WindowSetup
    talkers : dict, optional
        Path of an utterance -> paths of the recordings its babble is made of (other speakers of its test fold).
    cache_dir, n_jobs, progress
        As for :func:`extract_dataset`.

    Returns
    -------
    FeatureSet
        Only the utterances of which the speech gate accepted a window under the condition (the others are in
        ``dropped``): the monitor would show nothing for them.
    """
    name = "cond-" + _digest([_cached_setup(setup).key_dict(), condition.key()])
    talkers = talkers or {}

    def variants_of(utt: Utterance) -> list[tuple[str, str, Any]]:
        return [(name, "condition", (condition, tuple(talkers.get(str(utt.path), ()))))]

    return _extract(utterances, variants_of, setup, None, cache_dir, n_jobs, progress)


def _entry_key(file_hash: str, variants: list[tuple[str, str, Any]]) -> str:
    """The cache entry of a file: its content hash, with a condition's talkers when it has any."""
    talker_names = [Path(p).name for _, kind, arg in variants if kind == "condition" for p in arg[1]]
    return f"{file_hash}-{_digest(talker_names)}" if talker_names else file_hash


def _extract(utterances: Sequence[Utterance], variants_of: Any, setup: WindowSetup, augmenter: Augmenter | None,
             cache_dir: str | os.PathLike[str] | None, n_jobs: int | None, progress: bool) -> FeatureSet:
    """Read what the cache has, compute the rest in workers, and assemble: what is computed and cached is the
    extractor's :meth:`cached_as`, what is returned its own features of that."""
    wanted = setup.extractor
    setup = _cached_setup(setup)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = FeatureCache(cache_dir)
    results: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    jobs = []
    for utt in utterances:
        path = str(utt.path)
        variants = variants_of(utt)
        file_hash = file_sha256(path)  # content, not name: renamed or moved files still hit the cache
        entry = _entry_key(file_hash, variants)
        found = {v: cache.get(entry, v) for v, _, _ in variants}
        results[path] = {v: a for v, a in found.items() if a is not None}
        missing = [t for t in variants if found[t[0]] is None]
        if missing:
            jobs.append(_Job(path, file_hash, entry, missing, setup, augmenter, str(cache_dir)))
    failures = _run_jobs(jobs, results, n_jobs, progress)
    features = _assemble(utterances, variants_of, results, failures)
    return dataclasses.replace(features, X=wanted.from_cached(features.X))


def _cached_setup(setup: WindowSetup) -> WindowSetup:
    """The setup whose features are computed and cached (another choice of blocks reads the same entries)."""
    return dataclasses.replace(setup, extractor=setup.extractor.cached_as())


def _run_jobs(jobs: list[_Job], results: dict[str, dict[str, dict[str, np.ndarray]]], n_jobs: int | None,
              progress: bool) -> dict[str, str]:
    """Run the jobs (in worker processes when more than one), filling ``results``; returns the failures."""
    failures: dict[str, str] = {}
    if not jobs:
        return failures
    if any(kind in ("augmented", "classic") for job in jobs for _, kind, _ in job.variants):
        # numba's cache must be compiled by one process before any worker touches librosa.
        from .jit_cache import import_librosa

        import_librosa()
    bar = _progress(len(jobs), progress)
    for path, out in _worker_results(jobs, max(1, min(n_jobs or os.cpu_count() or 1, len(jobs)))):
        _collect(results, failures, path, out)
        bar.update(1)
    bar.close()
    return failures


def _worker_results(jobs: list[_Job], n_jobs: int) -> Iterator[tuple[str, dict[str, dict[str, np.ndarray]] | str]]:
    """Each job's result, in order: here with one job at a time, else from a pool of forked workers."""
    from ..heap import keep_large_blocks_on_heap

    keep_large_blocks_on_heap()  # inherited by forked workers
    if n_jobs == 1:
        yield from map(_extract_one, jobs)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=n_jobs, mp_context=context,
                                                initializer=_init_worker) as pool:
        yield from pool.map(_extract_one, jobs, chunksize=4)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="extracting features", unit="file", disable=not enabled, dynamic_ncols=True)


def _collect(results: dict[str, dict[str, dict[str, np.ndarray]]], failures: dict[str, str], path: str,
             out: dict[str, dict[str, np.ndarray]] | str) -> None:
    if isinstance(out, str):
        failures[path] = out
    else:
        results[path].update(out)


def _no_speech(arrays: dict[str, np.ndarray]) -> str | None:
    return None if arrays["X"].shape[0] else "the speech gate accepted none of its windows"


def _assemble(utterances: Sequence[Utterance], variants_of: Any,
              results: dict[str, dict[str, dict[str, np.ndarray]]], failures: dict[str, str]) -> FeatureSet:
    kept: list[Utterance] = []
    dropped: list[tuple[Utterance, str]] = []
    rows: list[tuple[np.ndarray, int, int]] = []  # (window features, utterance id, copy)
    classic_rows = []
    for utt in utterances:
        path = str(utt.path)
        found, variants = results.get(path, {}), variants_of(utt)
        reason = failures.get(path) or _no_speech(found[variants[0][0]])
        if reason:
            dropped.append((utt, reason))
            continue
        kept.append(utt)
        for variant, kind, arg in variants:
            X = found[variant]["X"]
            if kind == "classic":
                classic_rows.append(X[0])
            else:
                rows.append((X, len(kept) - 1, int(arg) if kind == "augmented" else 0))
    return _feature_set(kept, rows, classic_rows, dropped)


def _feature_set(kept: list[Utterance], rows: list[tuple[np.ndarray, int, int]], classic_rows: list[np.ndarray],
                 dropped: list[tuple[Utterance, str]]) -> FeatureSet:
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return FeatureSet(kept, np.zeros((0, 0), dtype=np.float32), empty, empty, None, dropped)
    return FeatureSet(
        utterances=kept,
        X=np.concatenate([X for X, _, _ in rows]),
        utterance_index=np.concatenate([np.full(X.shape[0], u, np.int64) for X, u, _ in rows]),
        copy=np.concatenate([np.full(X.shape[0], c, np.int64) for X, _, c in rows]),
        classic=np.stack(classic_rows) if classic_rows else None,
        dropped=dropped,
    )
