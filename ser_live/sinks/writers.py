"""Console consumers of predictions: text lines, JSON lines, the session CSV and audio, and the closing summary.

Each writer takes a :class:`~ser_live.engine.monitor.Prediction` per hop and writes one line at once,
flushed, so a pipe or a file always holds everything up to the last hop, even after a crash.
"""

from __future__ import annotations

import csv
import errno
import json
import os
from pathlib import Path
from typing import IO

from ..errors import SessionFileError
from ..results import ClipResult, Prediction, SessionSummary

__all__ = ["PREDICTION_JSON_FIELDS", "CLIP_JSON_FIELDS", "text_bar", "TextPrinter", "JsonPrinter", "CsvRecorder",
           "AudioRecorder", "audio_path_beside",
           "format_summary", "fields_markdown", "clip_header", "format_clip",
           "clip_json"]

#: Keys shared by both JSON outputs: name -> (JSON types, meaning). Every key is always present.
_EMOTION_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "emotion": (("string", "null"), "most probable emotion; null without speech, or for a file that failed"),
    "confidence": (("number", "null"), "its probability, 0 to 1; 0 without speech; null for a file that failed"),
    "probs": (("object", "null"),
              "probability of every class of the model (0 to 1, summing to 1), in display order; "
              "null without speech, or for a file that failed"),
}
#: The keys of one ``--print --json`` line, in order (the README's table is made from this).
PREDICTION_JSON_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "t": (("number",), "seconds of audio since the start, at the end of the window"),
    "speech": (("boolean",), "whether the speech gate heard speech in the window"),
    **_EMOTION_FIELDS,
    "level_db": (("number", "null"),
                 "RMS level of the window in dBFS (0 is full scale, -120 digital silence); null if not measurable"),
    "lost_s": (("number",), "audio lost so far in the session (input stalled or gone, analysis behind), seconds"),
}
#: The keys of one ``--classify --json`` line, in order (the README's table is made from this).
CLIP_JSON_FIELDS: dict[str, tuple[tuple[str, ...], str]] = {
    "path": (("string",), "the file (or the folder that could not be read)"),
    **_EMOTION_FIELDS,
    "duration_s": (("number", "null"), "length of the audio in seconds; null on error"),
    "speech_windows": (("integer", "null"),
                       "analysis windows with speech, whose probabilities were averaged; null on error"),
    "error": (("string", "null"), "why the file could not be classified; null when it was"),
}

# Eighths of a character cell, for horizontal bars with 8 steps per cell.
_EIGHTHS = " ▏▎▍▌▋▊▉"
_ABBREVIATION_LENGTH = 3


def _unique_prefix_length(classes: tuple[str, ...]) -> int:
    """The shortest abbreviation length, from three letters, at which no two classes look alike (a model of
    one's own classes may have ``calm`` and ``calming``)."""
    k = _ABBREVIATION_LENGTH
    while len({c[:k] for c in classes}) < len(classes) and k < max(map(len, classes)):
        k += 1
    return k


def text_bar(p: float, width: int) -> str:
    """A horizontal bar ``width`` cells wide, filled in proportion to ``p`` (0..1), in eighths of a cell.

    A probability too small to draw shows as ``·`` so that every class's column stays visible.
    """
    steps = int(round(min(max(p, 0.0), 1.0) * width * 8))
    if steps == 0:
        return "·".ljust(width)
    full, rest = divmod(steps, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


class TextPrinter:
    """One human-readable line per hop: time, top emotion and confidence, a bar per class, level.

    The columns line up with :meth:`header`; :meth:`legend` spells out the class abbreviations.

    Parameters
    ----------
    stream : file
        Where to write (stdout).
    classes : sequence of str
        Class order for the bars.
    bar_width : int
        Character cells per class bar (8 steps each).
    repeat_header_every : int, optional
        Repeat the column titles every this many lines (for a terminal, where they scroll away).
    """

    def __init__(
        self, stream: IO[str], classes: tuple[str, ...], *, bar_width: int = 5, repeat_header_every: int | None = None
    ) -> None:
        self.stream = stream
        self.classes = tuple(classes)
        self._abbreviation = _unique_prefix_length(self.classes)
        self.bar_width = max(bar_width, self._abbreviation)
        self.repeat_header_every = repeat_header_every
        self._lines = 0
        self._width = max(len("emotion"), *(len(c) for c in self.classes))

    def _row(self, time_s: str, emotion: str, confidence: str, bars: list[str], level: str) -> str:
        return f"{time_s:>8}  {emotion:<{self._width}}  {confidence:>4}  {' '.join(bars)}  {level:>9}".rstrip()

    def legend(self, width: int = 70) -> list[str]:
        """What the columns mean, with every class abbreviation spelled out, in lines of at most ``width``."""
        import textwrap

        k = self._abbreviation
        names = " ".join(f"{c[:k]}({c[k:]})" if len(c) > k else c for c in self.classes)
        text = f"bars: probability of {names}; conf: the top emotion's; level: window loudness"
        return textwrap.wrap(text, width=width, break_on_hyphens=False)

    def header(self) -> str:
        """The column titles, aligned with the lines."""
        titles = [c[: self._abbreviation].ljust(self.bar_width) for c in self.classes]
        return self._row("time", "emotion", "conf", titles, "level")

    def __call__(self, prediction: Prediction) -> None:
        time_s = f"{prediction.t_s:.1f}s"
        level = f"{prediction.level_db:.0f} dBFS"
        if prediction.speech and prediction.probs is not None:
            bars = [text_bar(prediction.probs[c], self.bar_width) for c in self.classes]
            line = self._row(time_s, prediction.emotion or "", f"{prediction.confidence:.0%}", bars, level)
        else:
            # Keep the level in its column so a glance down the right edge shows the room's loudness.
            bars_width = len(self.classes) * (self.bar_width + 1) - 1
            line = self._row(time_s, "·", "", ["(no speech)".ljust(bars_width)], level)
        if self.repeat_header_every and self._lines and self._lines % self.repeat_header_every == 0:
            line = self.header() + "\n" + line
        self._lines += 1
        self.stream.write(line + "\n")
        self.stream.flush()


class JsonPrinter:
    """One JSON object per hop (the keys of :data:`PREDICTION_JSON_FIELDS`)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, prediction: Prediction) -> None:
        self.stream.write(json.dumps(prediction.to_json_dict()) + "\n")
        self.stream.flush()


class CsvRecorder:
    """Session file: one CSV row per hop, written and flushed as it happens.

    Columns: ``t_s, speech, emotion, confidence``, one probability column per class, ``level_db``.
    A crash or kill loses at most the row being written. Use as a context manager or call
    :meth:`close`.

    Parameters
    ----------
    path : path-like
    classes : sequence of str
    """

    def __init__(self, path: str | os.PathLike[str], classes: tuple[str, ...], *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.classes = tuple(classes)
        if os.fspath(path).endswith(os.sep) or self.path.is_dir():
            raise SessionFileError(errno.EISDIR, f"session file {path} is a folder; give a file name inside it")
        # Never clobber an earlier recording unless the user said so (e.g. in a save dialog);
        # devices and pipes (/dev/null, a FIFO) are not recordings.
        if self.path.is_file() and not overwrite:
            raise SessionFileError(
                errno.EEXIST, f"session file {self.path} already exists; choose another name (nothing was overwritten)"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise SessionFileError(exc.errno, f"cannot create session file {self.path}: {exc.strerror or exc}") from exc
        self._writer = csv.writer(self._fh)
        self._write(["t_s", "speech", "emotion", "confidence", *[f"p_{c}" for c in self.classes], "level_db",
                     "lost_s"])
        self.rows = 0

    def _write(self, row: list) -> None:
        try:
            self._writer.writerow(row)
            self._fh.flush()
        except OSError as exc:
            raise self._write_error(exc) from exc

    def _write_error(self, exc: OSError) -> SessionFileError:
        return SessionFileError(exc.errno, f"cannot write session file {self.path}: {exc.strerror or exc}")

    def __call__(self, prediction: Prediction) -> None:
        probs = prediction.probs or {}
        self._write(
            [
                f"{prediction.t_s:.3f}",
                int(prediction.speech),
                prediction.emotion or "",
                f"{prediction.confidence:.4f}",
                *[f"{probs[c]:.4f}" if c in probs else "" for c in self.classes],
                f"{prediction.level_db:.1f}",
                f"{prediction.lost_s:.2f}",
            ]
        )
        self.rows += 1

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError as exc:
                raise self._write_error(exc) from exc

    def __enter__(self) -> CsvRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def audio_path_beside(csv_path: str | os.PathLike[str]) -> Path:
    """Where ``--record-audio`` keeps the audio of the session file ``csv_path``: the same name, ending ``.wav``."""
    return Path(csv_path).with_suffix(".wav")


class AudioRecorder:
    """The audio a monitor heard, as a 16-bit WAV written as it comes, on the session file's time base.

    Sample ``n`` of the file is the audio at stream time ``n / rate``: what the CSV's ``t_s`` counts. Audio the
    analysis could not keep (overwritten while it was behind) is written as silence of its length and counted in
    :attr:`silence_s`, so the two files stay aligned. The file is flushed at least every ``flush_s`` seconds
    (libsndfile then rewrites the WAV header), so a kill or power cut loses at most that much and the file opens.

    Parameters
    ----------
    path : path-like
    sample_rate_hz : int
    overwrite : bool
        Replace an existing file (a save dialog asked); otherwise an existing file is an error.
    flush_s : float
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate_hz: int, *, overwrite: bool = False,
                 flush_s: float = 1.0) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.sample_rate_hz = int(sample_rate_hz)
        self.flush_s = float(flush_s)
        if self.path.is_file() and not overwrite:
            raise SessionFileError(errno.EEXIST, f"audio file {self.path} already exists; choose another session "
                                                 "name (nothing was overwritten)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(str(self.path), "w", samplerate=self.sample_rate_hz, channels=1,
                                      format="WAV", subtype="PCM_16")
        except (OSError, RuntimeError) as exc:
            raise SessionFileError(errno.EIO, f"cannot create audio file {self.path}: {exc}") from exc
        self.samples_written = 0
        self.silence_s = 0.0
        self._unflushed = 0

    @property
    def seconds(self) -> float:
        """Seconds of audio in the file so far."""
        return self.samples_written / self.sample_rate_hz

    def write(self, samples, *, lost: int = 0) -> None:
        """Append ``lost`` samples of silence (audio that was not kept), then ``samples``."""
        import numpy as np

        try:
            if lost:
                self._file.write(np.zeros(lost, np.float32))
                self.silence_s += lost / self.sample_rate_hz
            self._file.write(np.asarray(samples, np.float32))
            added = lost + len(samples)
            self.samples_written += added
            self._unflushed += added
            if self._unflushed >= self.flush_s * self.sample_rate_hz:
                self._file.flush()
                self._unflushed = 0
        except (OSError, RuntimeError) as exc:
            raise SessionFileError(errno.EIO, f"cannot write audio file {self.path}: {exc}") from exc

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()


def format_summary(summary: SessionSummary) -> str:
    """The closing line: seconds heard, share of each emotion, dropped audio."""
    shares = summary.shares()
    mix = ", ".join(f"{e} {s:.0%}" for e, s in shares.items()) if shares else "no speech heard"
    dropped = f"dropped {summary.lost_s:.1f} s of audio"
    if summary.outage_s >= 0.05:
        dropped += f" (input device gone {summary.outage_s:.1f} s)"
    if summary.skipped_windows:
        dropped += f" and skipped {summary.skipped_windows} late windows"
    return (
        f"summary: heard {summary.heard_s:.1f} s, speech in {summary.n_speech} of {summary.n_windows} windows; "
        f"{mix}; {dropped}"
    )


def clip_json(path: str, result: ClipResult | None = None, error: str | None = None) -> dict:
    """The ``--classify --json`` object for one file (keys of :data:`CLIP_JSON_FIELDS`)."""
    if error is not None or result is None:
        return {"path": path, "emotion": None, "confidence": None, "probs": None, "duration_s": None,
                "speech_windows": None, "error": error or "no result"}
    return {
        "path": path,
        "emotion": result.emotion,
        "confidence": round(result.confidence, 4),
        "probs": {k: round(v, 4) for k, v in result.probs.items()} if result.probs else None,
        "duration_s": round(result.duration_s, 3),
        "speech_windows": result.n_speech_windows,
        "error": None,
    }


def fields_markdown(fields: dict[str, tuple[tuple[str, ...], str]]) -> str:
    """A JSON output's keys as the README's Markdown table (key, JSON type, meaning)."""
    rows = ["| key | type | meaning |", "|---|---|---|"]
    rows += [f"| `{key}` | {' or '.join(types)} | {meaning} |" for key, (types, meaning) in fields.items()]
    return "\n".join(rows)


def clip_header() -> str:
    """The column titles of the plain-text ``--classify`` lines (tab-separated, like the lines)."""
    return "path\temotion\tconfidence\tduration"


def format_clip(path: str, result: ClipResult | None = None, error: str | None = None) -> str:
    """The plain-text ``--classify`` line for one file."""
    if error is not None:
        return f"{path}\tERROR\t{error}"
    assert result is not None
    if result.emotion is None:
        return f"{path}\t(no speech)\t-\t{result.duration_s:.1f}s"
    return f"{path}\t{result.emotion}\t{result.confidence:.2f}\t{result.duration_s:.1f}s"
