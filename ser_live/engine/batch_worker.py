"""One file's classification in a batch worker: which model the worker loads, and what it hands back.

Imported by the batch engines (:mod:`ser_live.engine.batch`'s local pool, :mod:`ser_live.engine.cluster`'s Dask tasks);
small and picklable, so that it travels to worker processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SerLiveError
from ..results import ClipResult

if TYPE_CHECKING:  # pragma: no cover
    from ..model.emotion_model import EmotionModel

__all__ = ["FileResult", "ModelSpec", "classify_path", "classify_paths"]


@dataclasses.dataclass(frozen=True)
class FileResult:
    """One file (or unreadable folder) of a batch: its result, or why it has none."""

    path: str
    result: ClipResult | None
    error: str | None = None

    @property
    def audio_s(self) -> float:
        """Seconds of audio classified (0 for a failure)."""
        return self.result.duration_s if self.result is not None else 0.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which model a worker loads: a shipped model's name or a model file.

    Small and picklable: it travels to worker processes and cluster workers, which load the model once each
    (:meth:`load`) from a path they share with the client.
    """

    name: str | None = None

    def load(self) -> EmotionModel:
        """The model, loaded once per process."""
        model = _MODELS.get(self)
        if model is None:
            from ..model.emotion_model import EmotionModel

            model = _MODELS[self] = EmotionModel.load(self.name)
        return model

    def preload(self, model: EmotionModel) -> None:
        """Use ``model`` (already loaded and checked) for this spec in this process and the workers it forks."""
        _MODELS[self] = model


_MODELS: dict[ModelSpec, Any] = {}


def classify_path(path: str, spec: ModelSpec) -> FileResult:
    """Classify one file with the model of ``spec`` (a worker's task); any failure becomes the result's ``error``."""
    from .monitor import classify_file

    try:
        return FileResult(path, classify_file(path, model=spec.load()))
    except SerLiveError as exc:
        return FileResult(path, None, str(exc))
    except Exception as exc:  # one bad file must not stop the batch
        return FileResult(path, None, f"{type(exc).__name__}: {exc}")


def classify_paths(paths: Sequence[str], spec: ModelSpec) -> list[FileResult]:
    """:func:`classify_path` for each of ``paths`` (a cluster task: a few files at a time cost less to schedule)."""
    return [classify_path(path, spec) for path in paths]
