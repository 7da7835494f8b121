"""The session record: every prediction of the session in memory and, as it happens, in an autosave CSV.

The analysis thread appends each :class:`~ser_live.engine.monitor.Prediction` (one per hop); the row is
written and flushed to the autosave file at once, so a crash or a kill loses at most the row being
written. "Save session…" writes the rows kept in memory to a CSV of the user's choice; both files
have the columns of :class:`~ser_live.sinks.writers.CsvRecorder`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import threading
from pathlib import Path

from ..app.outputs import CsvRecorder
from ..results import Prediction

__all__ = ["SessionLog", "sessions_dir", "interrupted_sessions"]

_MARKER_SUFFIX = ".open"


def sessions_dir() -> Path:
    """Where autosave files go: ``<user data dir>/ser-live/sessions`` (platformdirs; XDG on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("ser-live", appauthor=False)) / "sessions"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_sessions(directory: Path | None = None) -> list[Path]:
    """Autosave files of sessions whose program ended without closing them (a crash or a kill).

    Each open session has a ``.open`` marker holding the writer's process id; a marker whose
    process is gone means the session was interrupted. Its CSV is intact up to the last hop.
    """
    directory = directory if directory is not None else sessions_dir()
    found = []
    for marker in sorted(directory.glob(f"*.csv{_MARKER_SUFFIX}")):
        try:
            pid = int(marker.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        csv_path = marker.with_suffix("")
        if pid != os.getpid() and not (pid and _pid_alive(pid)) and csv_path.is_file():
            found.append(csv_path)
    return found


class SessionLog:
    """Predictions of one session, kept in memory and autosaved row by row.

    Parameters
    ----------
    classes : tuple of str
        The model's classes: one probability column each.
    directory : path-like, optional
        Folder of the autosave file; :func:`sessions_dir` when omitted.
    recorder : CsvRecorder, optional
        Also write every row to this open session file as it happens (``--record``; see
        :attr:`ser_live.app.session.Session.recorder`).

    Attributes
    ----------
    autosave_path : Path or None
        The autosave CSV (None if it could not be created: the session is then kept in memory only,
        and :attr:`autosave_error` says why).
    """

    def __init__(
        self,
        classes: tuple[str, ...],
        *,
        directory: str | os.PathLike[str] | None = None,
        recorder: CsvRecorder | None = None,
    ) -> None:
        self.classes = tuple(classes)
        self._rows: list[Prediction] = []
        self._lock = threading.Lock()
        # Stream time restarts at 0 with every new Monitor; offsets keep the session's clock running.
        self.time_offset_s = 0.0
        self.autosave_error: str | None = None
        directory = Path(directory) if directory is not None else sessions_dir()
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        self.autosave_path: Path | None = directory / f"session-{stamp}.csv"
        self._marker = self.autosave_path.with_name(self.autosave_path.name + _MARKER_SUFFIX)
        self._recorders: list[CsvRecorder] = []
        try:
            self._recorders.append(CsvRecorder(self.autosave_path, self.classes))
            self._marker.write_text(str(os.getpid()))
        except OSError as exc:
            self.autosave_path = None
            self.autosave_error = f"cannot autosave the session in {directory} ({exc.strerror or exc})"
        if recorder is not None:
            self._recorders.append(recorder)

    def __call__(self, prediction: Prediction) -> Prediction:
        """Record one prediction (thread-safe) and return it on the session's clock."""
        if self.time_offset_s:
            prediction = dataclasses.replace(prediction, t_s=prediction.t_s + self.time_offset_s)
        with self._lock:
            self._rows.append(prediction)
            for recorder in list(self._recorders):
                try:
                    recorder(prediction)
                except (OSError, ValueError) as exc:  # disk full, file closed: keep the rows in memory
                    self.autosave_error = f"stopped writing {recorder.path} ({exc})"
                    self._recorders.remove(recorder)
        return prediction

    def continue_clock(self) -> None:
        """Start the next Monitor's stream time where this session's last row ended."""
        with self._lock:
            self.time_offset_s = self._rows[-1].t_s if self._rows else 0.0

    def rows(self) -> list[Prediction]:
        """A copy of the rows so far."""
        with self._lock:
            return list(self._rows)

    def first_t_s(self) -> float | None:
        """Session time of the first row (None before any)."""
        with self._lock:
            return self._rows[0].t_s if self._rows else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write every row so far to a CSV file; returns the number of rows written."""
        rows = self.rows()
        with CsvRecorder(path, self.classes, overwrite=True) as recorder:  # the save dialog asked
            for prediction in rows:
                recorder(prediction)
        return len(rows)

    def close(self) -> None:
        """Close the autosave file; an empty one is removed, a non-empty one is kept as the record."""
        with self._lock:
            for recorder in self._recorders:
                recorder.close()
            self._recorders = []
            if self.autosave_path is not None:
                self._marker.unlink(missing_ok=True)
                if not self._rows:
                    self.autosave_path.unlink(missing_ok=True)
