"""Reading a kept session back for review: its CSV rows, its audio, and a summary per emotion.

A session file is what ``--record`` (or the window's autosave) writes: ``t_s, speech, emotion, confidence``, one
``p_<class>`` column per class, ``level_db`` and (since it was added) ``lost_s``. Its audio, when it was kept
(``--record-audio``), is the WAV of the same name beside it. Whatever can be read is shown: a row cut short by a
crash ends the rows, and each problem is one line in :attr:`SessionRecording.problems`.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SessionFileError

__all__ = ["SessionRecording", "load_session", "EmotionShare", "format_review_summary", "audio_player"]

_FIXED_COLUMNS = ("t_s", "speech", "emotion", "confidence")


@dataclasses.dataclass(frozen=True)
class EmotionShare:
    """How much of a session's speech one emotion won."""

    emotion: str
    windows: int
    share: float
    mean_probability: float


@dataclasses.dataclass(frozen=True)
class SessionRecording:
    """A kept session, read back.

    Attributes
    ----------
    path : Path
        The session CSV.
    classes : tuple of str
    t_s : np.ndarray, shape (n,)
        Session time at the end of each window.
    speech : np.ndarray of bool, shape (n,)
    probs : np.ndarray, shape (n, len(classes))
        Probabilities; NaN in windows without speech.
    level_db : np.ndarray, shape (n,)
    audio_path : Path or None
        The session's WAV, when its audio was kept.
    audio_s : float or None
        Its length in seconds.
    problems : tuple of str
        One line per thing that could not be read as it should (rows cut short, audio shorter than the rows).
    """

    path: Path
    classes: tuple[str, ...]
    t_s: np.ndarray
    speech: np.ndarray
    probs: np.ndarray
    level_db: np.ndarray
    audio_path: Path | None
    audio_s: float | None
    problems: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """Session time of the last row (0 when there is none)."""
        return float(self.t_s[-1]) if self.t_s.size else 0.0

    def summary(self) -> list[EmotionShare]:
        """Per emotion, most won first: speech windows won, their share, and the mean probability over speech."""
        speech_probs = self.probs[self.speech]
        if not speech_probs.size:
            return []
        won = np.bincount(np.argmax(speech_probs, axis=1), minlength=len(self.classes))
        order = np.argsort(-won, kind="stable")
        return [EmotionShare(self.classes[i], int(won[i]), float(won[i] / won.sum()),
                             float(speech_probs[:, i].mean())) for i in order]


def load_session(path: str | os.PathLike[str]) -> SessionRecording:
    """Read a session CSV (and its WAV, if kept) written by ``--record`` or the window's autosave.

    Raises
    ------
    SessionFileError
        The file is missing or unreadable, or is not a ser-live session file (one line, naming it).
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SessionFileError(errno.ENOENT, f"{path}: no such session file") from None
    except IsADirectoryError:
        raise SessionFileError(errno.EISDIR, f"{path} is a folder; give a session file (.csv)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionFileError(errno.EIO, f"cannot read the session file {path} ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    header = rows[0] if rows else []
    classes = _classes_of(header, path)
    columns, problems = _columns(rows[1:], header, classes, path, cut_short=bool(text) and not text.endswith("\n"))
    audio_path, audio_s, audio_problem = _audio_beside(path, columns["t_s"])
    return SessionRecording(path, classes, columns["t_s"], columns["speech"].astype(bool), columns["probs"],
                            columns["level_db"], audio_path, audio_s,
                            tuple(problems + ([audio_problem] if audio_problem else [])))


def _classes_of(header: list[str], path: Path) -> tuple[str, ...]:
    classes = tuple(name[2:] for name in header if name.startswith("p_"))
    if tuple(header[:4]) != _FIXED_COLUMNS or not classes or "level_db" not in header:
        raise SessionFileError(errno.EINVAL, f"{path} is not a ser-live session file (it has no t_s, speech, "
                                             "emotion, confidence, p_<emotion> and level_db columns)")
    return classes


def _columns(rows: list[list[str]], header: list[str], classes: tuple[str, ...], path: Path,
             *, cut_short: bool) -> tuple[dict[str, np.ndarray], list[str]]:
    """The numbers of the rows that read whole; reading stops at the first that does not."""
    index = {name: i for i, name in enumerate(header)}
    prob_at = [index[f"p_{c}"] for c in classes]
    t_s, speech, probs, level_db = [], [], [], []
    problems: list[str] = []
    for number, row in enumerate(rows, start=2):
        last_row_cut = cut_short and number == len(rows) + 1
        try:
            if len(row) != len(header) or last_row_cut:
                raise ValueError("cut short")
            values = (float(row[index["t_s"]]), int(row[index["speech"]]),
                      [float(row[i]) if row[i] else math.nan for i in prob_at], _float(row[index["level_db"]]))
        except (ValueError, IndexError):
            problems.append(f"{path}: line {number} is damaged (cut short?); showing the {len(t_s)} rows before it")
            break
        t_s.append(values[0])
        speech.append(values[1])
        probs.append(values[2])
        level_db.append(values[3])
    columns = {"t_s": np.array(t_s, float), "speech": np.array(speech, int),
               "probs": np.array(probs, float).reshape(len(t_s), len(classes)), "level_db": np.array(level_db, float)}
    return columns, problems


def _float(text: str) -> float:
    return float(text) if text else math.nan


def _audio_beside(path: Path, t_s: np.ndarray) -> tuple[Path | None, float | None, str | None]:
    """The session's WAV (the CSV's name ending .wav), its length, and a line if it cannot serve the rows."""
    audio_path = path.with_suffix(".wav")
    if audio_path == path or not audio_path.is_file():
        return None, None, None
    import soundfile as sf

    try:
        info = sf.info(str(audio_path))
    except (RuntimeError, OSError) as exc:
        return None, None, f"{audio_path}: the session's audio is damaged and cannot be played ({exc})"
    audio_s = info.frames / info.samplerate
    end_s = float(t_s[-1]) if t_s.size else 0.0
    if audio_s + 1.0 < end_s:  # a kill loses up to a second of audio: not worth a word
        return audio_path, audio_s, (f"{audio_path}: the audio ({audio_s:.1f} s) is shorter than the session "
                                     f"({end_s:.1f} s); playback ends at {audio_s:.1f} s")
    return audio_path, audio_s, None


def format_review_summary(recording: SessionRecording) -> str:
    """The session in a few lines of text: its length, its audio, and each emotion's share of the speech."""
    n, n_speech = recording.t_s.size, int(recording.speech.sum())
    audio = (f"audio kept: {recording.audio_path} ({recording.audio_s:.1f} s)" if recording.audio_path
             else "no audio kept")
    lines = [f"{recording.path}: {recording.duration_s:.1f} s, {n} windows, speech in {n_speech}; {audio}"]
    lines += [f"  {share.emotion:<10} {share.share:6.1%} of speech windows ({share.windows}), "
              f"mean probability {share.mean_probability:.2f}" for share in recording.summary()]
    return "\n".join(lines)


def audio_player(samples: np.ndarray, sample_rate_hz: int) -> Any:
    """A player of a kept session's audio, from any moment (:class:`ser_live.audio.playback.AudioPlayer`).

    Raises
    ------
    DeviceError
        No output device, or it cannot be opened.
    """
    from ..audio.playback import AudioPlayer

    return AudioPlayer(samples, sample_rate_hz)
