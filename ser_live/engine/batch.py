"""Batch scoring of many recordings: the file walk, the resume ledger, and the engines that classify (local pool, Dask).

The console's ``--classify`` is a front-end over :func:`classify_batch`; a notebook or a script calls it the same way::

    batch = ser_live.classify_batch(["calls/"], model="light", out="calls.csv")
    for item in batch:                      # one FileResult per file, as it finishes (in walk order)
        print(item.path, item.result.emotion if item.result else item.error)
    batch.totals                            # files, audio seconds, failures, files skipped as already done

Everything streams: the listing is walked folder by folder, at most a few files per worker are in flight, and
results are written (``out``) and handed on as they come, so memory stays flat however large the archive.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BatchError
from .batch_worker import FileResult, ModelSpec, classify_path, classify_paths

if TYPE_CHECKING:  # pragma: no cover
    from ..model.emotion_model import EmotionModel

__all__ = [
    "FileResult", "ModelSpec", "BatchTotals", "Batch", "classify_batch", "classify_path", "classify_paths",
    "iter_audio_files",
    "ResultLedger", "LocalPool", "file_identity",
]

#: Files in flight per worker: enough to keep each busy while results travel back, few enough to bound memory.
IN_FLIGHT_PER_WORKER = 4
#: ``--out`` names ending so are written as JSON lines; any other as CSV.
JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})


# -- the file walk ---------------------------------------------------------------------------------------------
def iter_audio_files(paths: Iterable[str | os.PathLike[str]], *,
                     on_unreadable: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Expand files and folders (recursively) to audio files, one folder at a time.

    Files named explicitly are kept whatever their ending (so a bad one is reported, not silently skipped);
    inside folders only :data:`ser_live.audio.files.AUDIO_EXTENSIONS` are taken. Within a folder the files come in
    name order, then its sub-folders in name order. Only one folder's names are held at a time.

    Parameters
    ----------
    paths : iterable of path-like
    on_unreadable : callable, optional
        Called with ``(folder, reason)`` for every folder that could not be listed (no permission, ...).
    """
    from ..audio.files import AUDIO_EXTENSIONS

    def failed(exc: OSError) -> None:
        if on_unreadable is not None:
            on_unreadable(Path(exc.filename), exc.strerror or str(exc))

    for path in map(Path, paths):
        if not path.is_dir():
            yield path
            continue
        for folder, dirs, names in os.walk(path, onerror=failed):
            dirs.sort()
            for name in sorted(names):
                candidate = Path(folder) / name
                if candidate.suffix.lower() in AUDIO_EXTENSIONS and candidate.is_file():
                    yield candidate


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(size in bytes, modification time in ns)``: what says a file is the one classified before; None if absent."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


# -- the resume ledger -----------------------------------------------------------------------------------------
class ResultLedger:
    """A batch's results in a file, a row per file written and flushed as it finishes, read back to resume.

    CSV, or JSON lines when the name ends in ``.jsonl``. Each row carries the file's size and modification time
    and the model that classified it. Opening an existing ledger keeps the rows of files that were classified and
    are unchanged since; failures, rows of files that changed, and a last row cut short by a crash are dropped
    (the file is rewritten without them, atomically), so that a rerun classifies exactly those again and every
    file appears once.

    Parameters
    ----------
    path : path-like
    classes : sequence of str
        The model's classes (the CSV's ``p_<class>`` columns).
    model_id : str
        Names the model; a ledger written by another model is refused (:class:`~ser_live.errors.BatchError`).
    """

    def __init__(self, path: str | os.PathLike[str], *, classes: Sequence[str], model_id: str) -> None:
        self.path = Path(path)
        self.classes = tuple(classes)
        self.model_id = model_id
        self.json_lines = self.path.suffix.lower() in JSON_LINES_SUFFIXES
        self.columns = ["path", "emotion", "confidence", "duration_s", "speech_windows",
                        *(f"p_{c}" for c in self.classes), "error", "size_bytes", "mtime_ns", "model"]
        self._done: set[str] = set()
        self._identities: dict[str, tuple[int, int] | None] = {}
        kept, existing = self._read()
        if kept is not None and "".join(kept) != existing:  # something dropped: the file without it
            self._rewrite(kept)
        try:
            self._file = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - held open for the batch
        except OSError as exc:
            raise BatchError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        if not self.json_lines and kept is None:
            self._write_line(self._csv_line(self.columns))

    def is_done(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` was classified before and has not changed since."""
        identity = file_identity(path)
        return identity is not None and _key(str(path), *identity) in self._done

    def started(self, path: str) -> None:
        """Note the file's identity as it is handed to a worker (a change while it is classified shows next time)."""
        self._identities[path] = file_identity(path)

    def write(self, item: FileResult) -> None:
        """Append ``item``'s row and flush it (a crash loses at most the files in flight)."""
        identity = self._identities.pop(item.path, None) or file_identity(item.path) or (None, None)
        row = self._row(item, identity)
        try:
            self._write_line(json.dumps(row) + "\n" if self.json_lines else self._csv_line(list(row.values())))
        except OSError as exc:
            raise BatchError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Close the file (every row is already flushed)."""
        self._file.close()

    def _write_line(self, line: str) -> None:
        self._file.write(line)
        self._file.flush()

    @staticmethod
    def _csv_line(values: list[Any]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(["" if v is None else v for v in values])
        return out.getvalue()

    def _row(self, item: FileResult, identity: tuple[Any, Any]) -> dict[str, Any]:
        from ..sinks.writers import clip_json

        row = clip_json(item.path, item.result, item.error)
        if not self.json_lines:
            probs = row.pop("probs") or {}
            error = row.pop("error")
            row.update({f"p_{c}": probs.get(c) for c in self.classes})
            row["error"] = error
        row.update(size_bytes=identity[0], mtime_ns=identity[1], model=self.model_id)
        return row

    def _read(self) -> tuple[list[str] | None, str]:
        """The lines to keep of an existing ledger (None when there is none yet) and its text; fills the set of
        files done."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, ""
        except (OSError, UnicodeDecodeError) as exc:
            raise BatchError(f"cannot read {self.path} to resume: {getattr(exc, 'strerror', None) or exc}") from exc
        if not text.strip():
            return None, text
        complete = text[: text.rfind("\n") + 1]  # a last line without its newline was cut short by a crash
        records = self._records(complete)
        kept = [] if self.json_lines else [self._csv_line(self.columns)]
        for line, row in records:
            if self._still_valid(row):
                kept.append(line)
        return kept, text

    def _records(self, complete: str) -> list[tuple[str, dict[str, Any]]]:
        if self.json_lines:
            lines = complete.splitlines(keepends=True)
            return [(line, self._json_row(line, number)) for number, line in enumerate(lines, 1) if line.strip()]
        reader = csv.reader(io.StringIO(complete))
        header = next(reader, None)
        if header != self.columns:
            raise BatchError(f"{self.path} is not a results file of this model's --classify (its columns differ); "
                             "give another --out")
        return [(self._csv_line(values), dict(zip(self.columns, values))) for values in reader
                if len(values) == len(self.columns)]

    def _json_row(self, line: str, number: int) -> dict[str, Any]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not {"path", "error", "size_bytes", "mtime_ns", "model"} <= row.keys():
            raise BatchError(f"{self.path}: line {number} is not a ser-live --classify result; give another --out")
        return row

    def _still_valid(self, row: dict[str, Any]) -> bool:
        if row.get("error") not in (None, ""):
            return False  # a failure is classified again
        if row.get("model") != self.model_id:
            raise BatchError(f"{self.path} holds results of another model ({row.get('model')}, this run uses "
                             f"{self.model_id}); give another --out, or the model that wrote it")
        path, identity = str(row["path"]), file_identity(str(row["path"]))
        if identity is None or _key(path, *identity) != _key(path, row.get("size_bytes"), row.get("mtime_ns")):
            return False  # changed or gone since: classified again if it is still asked for
        self._done.add(_key(path, *identity))
        return True

    def _rewrite(self, lines: list[str]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            temporary.write_text("".join(lines), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            raise BatchError(f"cannot rewrite {self.path} to resume: {exc.strerror or exc}") from exc


def _key(path: str, size: Any, mtime_ns: Any) -> str:
    return f"{size}:{mtime_ns}:{path}"


def model_id(model: EmotionModel) -> str:
    """``<file name>@<first 12 hex digits of its SHA-256>``: the model a ledger's rows were classified with."""
    from ..model.emotion_model import file_sha256

    if model.path is None:
        return "in-memory model"
    return f"{Path(model.path).name}@{file_sha256(model.path)[:12]}"


# -- engines ---------------------------------------------------------------------------------------------------
class LocalPool:
    """Worker processes on this machine, each with the model loaded once; results in the order of the files.

    On Linux the workers are forked after the model was loaded here (and one BLAS thread set), so they share its
    pages and start at once; elsewhere they are spawned and load it themselves. One worker classifies in this
    process. The pool reads the files lazily: at most a pipe's worth of paths is queued ahead.
    """

    def __init__(self, spec: ModelSpec, *, workers: int, chunksize: int = 1) -> None:
        self.spec = spec
        self.workers = max(1, int(workers))
        self.chunksize = max(1, int(chunksize))
        self._pool: Any = None

    def map(self, paths: Iterable[str]) -> Iterator[FileResult]:
        """Classify ``paths``; one :class:`FileResult` each, in order."""
        if self.workers == 1:
            yield from (classify_path(path, self.spec) for path in paths)
            return
        import multiprocessing as mp
        import sys
        from functools import partial

        from ..process import start_worker

        if sys.platform.startswith("linux"):
            self._pool = mp.get_context("fork").Pool(self.workers, initializer=start_worker)
        else:
            self._pool = mp.get_context("spawn").Pool(self.workers, initializer=_spawned_worker_start,
                                                      initargs=(self.spec,))
        yield from self._pool.imap(partial(classify_path, spec=self.spec), paths, chunksize=self.chunksize)

    def close(self, *, now: bool = False) -> None:
        """End the workers: at once (``now``, after an interruption) or once their work is done."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if now:
            pool.terminate()
        else:
            pool.close()
        pool.join()


def _spawned_worker_start(spec: ModelSpec) -> None:
    from ..process import start_worker

    start_worker()
    spec.load()


# -- a batch ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class BatchTotals:
    """What a batch found and did so far."""

    #: Files found that the batch classifies (not already in the ledger).
    to_classify: int = 0
    #: Files found that the ledger already holds unchanged results for.
    skipped: int = 0
    #: Folders that could not be listed (each one is also a failed result).
    unreadable: int = 0
    #: Results handed out so far (files and unreadable folders), and how many of them failed.
    done: int = 0
    failed: int = 0
    #: Seconds of audio classified so far.
    audio_s: float = 0.0


class Batch:
    """One batch: which files, which model, which engine, where results go; iterate it for the results.

    Made by :func:`classify_batch`, which checks everything that can be checked before the first file: the
    model loads, the ledger (``out``) is ours and readable, the cluster answers.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, spec: ModelSpec, workers: int,
                 scheduler: str | None, ledger: ResultLedger | None) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.spec = spec
        self.ledger = ledger
        self.totals = BatchTotals()
        self._unreadable: list[tuple[Path, str]] = []
        self._count()
        self.engine = self._engine(workers, scheduler)

    def _count(self) -> None:
        """A first walk: how many files there are to classify (for progress), which folders cannot be read."""
        def unreadable(folder: Path, reason: str) -> None:
            self._unreadable.append((folder, reason))

        for path in iter_audio_files(self.paths, on_unreadable=unreadable):
            if self.ledger is not None and self.ledger.is_done(path):
                self.totals.skipped += 1
            else:
                self.totals.to_classify += 1
        self.totals.unreadable = len(self._unreadable)

    def _engine(self, workers: int, scheduler: str | None) -> Any:
        if scheduler is not None:
            from .cluster import connect

            return connect(scheduler, self.spec)
        workers = max(1, min(workers if workers > 0 else (os.cpu_count() or 1), self.totals.to_classify or 1))
        # Several small files per task when there are many: less traffic, and still four tasks per worker.
        chunksize = min(16, self.totals.to_classify // (IN_FLIGHT_PER_WORKER * workers))
        return LocalPool(self.spec, workers=workers, chunksize=chunksize)

    def _pending(self) -> Iterator[str]:
        for path in iter_audio_files(self.paths):
            if self.ledger is None:
                yield str(path)
            elif not self.ledger.is_done(path):
                self.ledger.started(str(path))
                yield str(path)

    def __iter__(self) -> Iterator[FileResult]:
        for folder, reason in self._unreadable:
            yield self._record(FileResult(str(folder), None, f"cannot read this folder ({reason}); its files were "
                                          "not classified"))
        for item in self.engine.map(self._pending()):
            yield self._record(item)
        self.close()

    def _record(self, item: FileResult) -> FileResult:
        if self.ledger is not None:
            self.ledger.write(item)
        self.totals.done += 1
        self.totals.failed += item.error is not None
        self.totals.audio_s += item.audio_s
        return item

    def close(self, *, now: bool = False) -> None:
        """End the engine (at once with ``now``) and close the ledger; safe to call twice."""
        self.engine.close(now=now)
        if self.ledger is not None:
            self.ledger.close()


def classify_batch(paths: Sequence[str | os.PathLike[str]], *, model: str | None = None, workers: int = 0,
                   scheduler: str | None = None, out: str | os.PathLike[str] | None = None) -> Batch:
    """Classify many recordings: files and folders (recursively), on this machine's cores or a Dask cluster.

    Parameters
    ----------
    paths : sequence of path-like
        Files and folders.
    model : str, optional
        A shipped model's name (``"light"``) or a model file; the default model if omitted.
    workers : int
        Worker processes of the local pool; 0 means one per core. Not used with ``scheduler``.
    scheduler : str, optional
        A Dask scheduler's address (``tcp://host:8786``), or ``local:N`` for a cluster of N worker processes
        on this machine. Needs ``pip install 'ser-live[cluster]'``. The workers must see the files (and a model
        file) at the same paths as this process.
    out : path-like, optional
        Results file (CSV, or JSON lines for ``.jsonl``), written as results come; files it already holds
        unchanged results for are skipped, so a rerun resumes where a crash stopped.

    Returns
    -------
    Batch
        Iterate it for one :class:`FileResult` per file (unreadable folders first), in walk order.

    Raises
    ------
    SerLiveError
        The model cannot be loaded, ``out`` belongs to another model or program, the cluster cannot be reached.
    """
    from ..model.emotion_model import EmotionModel

    if workers < 0:
        raise BatchError("workers must be 0 (all cores) or more")
    loaded = EmotionModel.load(model)  # fail early, once, on a bad model
    spec = ModelSpec(model)
    spec.preload(loaded)
    ledger = ResultLedger(out, classes=loaded.classes, model_id=model_id(loaded)) if out is not None else None
    try:
        return Batch(paths, spec=spec, workers=workers, scheduler=scheduler, ledger=ledger)
    except BaseException:
        if ledger is not None:
            ledger.close()
        raise
