"""Console consumers of predictions: text lines, JSON lines, the session CSV and the closing summary.

Each writer takes a :class:`~ser_live.pipeline.Prediction` per hop and writes one line at once,
flushed, so a pipe or a file always holds everything up to the last hop, even after a crash.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO

from .pipeline import ClipResult, Prediction, SessionSummary

__all__ = ["TextPrinter", "JsonPrinter", "CsvRecorder", "format_summary", "format_clip", "clip_json"]

_BARS = " ▁▂▃▄▅▆▇█"


def _bar(p: float) -> str:
    return _BARS[min(len(_BARS) - 1, int(round(p * (len(_BARS) - 1))))]


class TextPrinter:
    """One human-readable line per hop: time, top emotion and confidence, a bar per class, level.

    Parameters
    ----------
    stream : file
        Where to write (stdout).
    classes : sequence of str
        Class order for the bars.
    """

    def __init__(self, stream: IO[str], classes: tuple[str, ...]) -> None:
        self.stream = stream
        self.classes = classes
        self._width = max(len(c) for c in classes)

    def header(self) -> str:
        """A legend line naming the bars."""
        return "   time  emotion" + " " * (self._width - 7) + "  conf  " + " ".join(c[:3] for c in self.classes)

    def __call__(self, prediction: Prediction) -> None:
        t = f"{prediction.t_s:7.1f}s"
        level = f"{prediction.level_db:6.1f} dBFS"
        if prediction.speech and prediction.probs is not None:
            bars = " ".join(f" {_bar(prediction.probs[c])} " for c in self.classes)
            line = f"{t}  {prediction.emotion:<{self._width}}  {prediction.confidence:4.0%}  {bars}  {level}"
        else:
            line = f"{t}  {'·':<{self._width}}        (no speech){' ' * (4 * len(self.classes) - 11)}  {level}"
        self.stream.write(line + "\n")
        self.stream.flush()


class JsonPrinter:
    """One JSON object per hop (keys ``t, speech, emotion, confidence, [probs,] level_db``)."""

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

    def __init__(self, path: str | os.PathLike[str], classes: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.classes = tuple(classes)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(["t_s", "speech", "emotion", "confidence", *[f"p_{c}" for c in self.classes], "level_db"])
        self._fh.flush()
        self.rows = 0

    def __call__(self, prediction: Prediction) -> None:
        probs = prediction.probs or {}
        self._writer.writerow(
            [
                f"{prediction.t_s:.3f}",
                int(prediction.speech),
                prediction.emotion or "",
                f"{prediction.confidence:.4f}",
                *[f"{probs[c]:.4f}" if c in probs else "" for c in self.classes],
                f"{prediction.level_db:.1f}",
            ]
        )
        self._fh.flush()
        self.rows += 1

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()

    def __enter__(self) -> CsvRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def format_summary(summary: SessionSummary) -> str:
    """The closing line: seconds heard, share of each emotion, dropped audio."""
    shares = summary.shares()
    mix = ", ".join(f"{e} {s:.0%}" for e, s in shares.items()) if shares else "no speech heard"
    dropped = f"dropped {summary.dropped_s:.1f} s of audio"
    if summary.skipped_windows:
        dropped += f" and skipped {summary.skipped_windows} late windows"
    return (
        f"summary: heard {summary.heard_s:.1f} s, speech in {summary.n_speech} of {summary.n_windows} windows; "
        f"{mix}; {dropped}"
    )


def clip_json(path: str, result: ClipResult | None = None, error: str | None = None) -> dict:
    """The ``--classify --json`` object for one file."""
    if error is not None:
        return {"path": path, "error": error}
    assert result is not None
    return {
        "path": path,
        "emotion": result.emotion,
        "confidence": round(result.confidence, 4),
        "probs": {k: round(v, 4) for k, v in result.probs.items()} if result.probs else None,
        "duration_s": round(result.duration_s, 3),
    }


def format_clip(path: str, result: ClipResult | None = None, error: str | None = None) -> str:
    """The plain-text ``--classify`` line for one file."""
    if error is not None:
        return f"{path}\tERROR\t{error}"
    assert result is not None
    if result.emotion is None:
        return f"{path}\t(no speech)\t-\t{result.duration_s:.1f}s"
    return f"{path}\t{result.emotion}\t{result.confidence:.2f}\t{result.duration_s:.1f}s"
