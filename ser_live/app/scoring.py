"""Batch scoring as the front-ends ask for it: many recordings through a model, on local workers or a Dask cluster.

The engine is :mod:`ser_live.engine.batch`; ``--classify`` reaches it through :func:`classify_batch` here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.batch import Batch

__all__ = ["classify_batch"]


def classify_batch(paths: Sequence[str | os.PathLike[str]], *, model: str | None = None, workers: int = 0,
                   scheduler: str | None = None, out: str | os.PathLike[str] | None = None) -> Batch:
    """Classify files and folders (recursively); see :func:`ser_live.engine.batch.classify_batch`."""
    from ..engine import batch

    return batch.classify_batch(paths, model=model, workers=workers, scheduler=scheduler, out=out)
