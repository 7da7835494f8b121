#!/usr/bin/env python3
"""Convert a model file of ser-live before version 3 (a joblib pickle) into a model file of arrays and a manifest.

Example::

    python scripts/convert_model.py my-model.joblib my-model.npz
    python scripts/convert_model.py my-model.joblib my-model.npz --model-dir my-model/   # also its metrics.json

Old model files were pickles, and unpickling runs whatever code the file holds: convert only files you made
yourself or got from someone you trust. The converted file holds the same network arrays (format 2 files already
carried them beside the pickled estimator; a format 1 file's estimator is compiled to them), so it predicts the
same probabilities, and ser-live loads it without running anything. With ``--model-dir`` the directory's
``metrics.json`` and ``MODEL_CARD.md`` name the new file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _inference_of(entry: dict[str, Any], version: int) -> dict[str, Any]:
    """The arrays of an old file's classifier entry (``estimator`` and ``inference``)."""
    if version == 2:
        if entry.get("inference") is None:
            raise ValueError("its estimator has no compiled form (an estimator ser-live did not make)")
        return entry["inference"]
    from ser_live.model.forward import compile_checked

    inference, _, problem = compile_checked(entry["estimator"])
    if inference is None:
        raise ValueError(problem or "its estimator has no compiled form (an estimator ser-live did not make)")
    return inference


def _as_arrays(bundle: dict[str, Any], version: int) -> dict[str, Any]:
    """The bundle without its pickled estimators: their arrays instead, the adaptive variant's too."""
    converted = {k: v for k, v in bundle.items() if k != "estimator"}
    converted["inference"] = _inference_of(bundle, version)
    if bundle.get("adaptation") is not None:
        adaptation = {k: v for k, v in bundle["adaptation"].items() if k != "estimator"}
        converted["adaptation"] = {**adaptation, "inference": _inference_of(bundle["adaptation"], version)}
    return converted


def convert(old: Path, new: Path) -> tuple[str, int]:
    """Write ``old`` (format 1 or 2) as ``new`` (format 3); returns the new file's SHA-256 and size in bytes.

    Raises
    ------
    ValueError
        If ``old`` is not an old ser-live model that can be converted.
    """
    import joblib

    from ser_live.model.emotion_model import MODEL_FORMAT, MODEL_FORMAT_VERSION, EmotionModel

    bundle = joblib.load(old)  # a pickle: it runs whatever code it holds (see the module's docstring)
    old_format = isinstance(bundle, dict) and bundle.get("format") == MODEL_FORMAT
    if not old_format or bundle.get("format_version") not in (1, 2):
        raise ValueError(f"{old} is not a model file of an older ser-live (format 1 or 2)")
    converted = _as_arrays(bundle, bundle["format_version"])
    converted["format_version"] = MODEL_FORMAT_VERSION
    # Files before format 3 did not record the gate; training recorded its settings in the metadata (gate 1).
    trained_with = (bundle.get("metadata") or {}).get("training_config", {})
    converted["gate"] = {"version": 1, "params": dict(trained_with.get("gate_params") or {})}
    model = EmotionModel.from_bundle(converted)  # validated as any file is when it loads
    digest = model.save(new)
    probe = np.random.default_rng(0).normal(size=(16, model.extractor.dim))
    if not np.allclose(EmotionModel.load(new).predict_proba(probe), model.predict_proba(probe), rtol=0, atol=1e-12):
        raise ValueError("the converted file predicts otherwise than the original")  # the same arrays: never
    return digest, new.stat().st_size


def _update_model_dir(model_dir: Path, new: Path, digest: str, size_bytes: int) -> None:
    """Name the converted file in the directory's ``metrics.json`` and regenerate its card."""
    from ser_live.training.report import rewrite_model_card

    path = model_dir / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics.update(model_file=new.name, model_sha256=digest, model_size_bytes=size_bytes)
    path.write_text(json.dumps(metrics, indent=1) + "\n")
    rewrite_model_card(model_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the old model file (.joblib)")
    parser.add_argument("new", type=Path, help="the model file to write (.npz)")
    parser.add_argument("--model-dir", type=Path, help="a trained model directory whose metrics.json names the file")
    args = parser.parse_args(argv)
    try:
        digest, size_bytes = convert(args.old, args.new)
        if args.model_dir is not None:
            _update_model_dir(args.model_dir, args.new, digest, size_bytes)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.new} (SHA-256 {digest}, {size_bytes / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
