#!/usr/bin/env python3
"""Whether the default model says the same on ONNX Runtime as on numpy: its answers on every speech window of corpus
recordings, computed by both encoder runtimes, compared window by window.

Example::

    python scripts/runtime_agreement.py --data ../shared/data --per-corpus 200

Prints, per corpus, the windows compared, the share whose top class is the same, the largest difference of a
probability, and the largest difference of a feature relative to that feature's spread over the windows.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, metavar="DIR", help="corpus directories")
    parser.add_argument("--per-corpus", type=int, default=200, metavar="N",
                        help="recordings per corpus, spread evenly over its sorted list (default 200)")
    parser.add_argument("--model", default="default", help="the model (default: the shipped default)")
    return parser.parse_args(argv)


def features_on(runtime: str, recordings: list[np.ndarray], model) -> np.ndarray:
    """The model's features of every speech window of the recordings (gated and cut as --classify does), with the
    encoder on ``runtime``."""
    from ser_live.engine.monitor import gated_window_features
    extractor = model.extractor.on_runtime(runtime)
    rate = model.sample_rate_hz
    return np.concatenate([gated_window_features([y], gate=model.make_gate(), extractor=extractor,
                                                 window_samples=int(model.window_s * rate),
                                                 hop_samples=int(model.hop_s * rate)).features for y in recordings])


def compare(recordings: list[np.ndarray], model) -> dict[str, float]:
    """How far apart the two runtimes' features and the model's probabilities of them are."""
    f_np, f_ort = (features_on(runtime, recordings, model) for runtime in ("numpy", "onnxruntime"))
    p_np, p_ort = model.predict_proba(f_np), model.predict_proba(f_ort)
    spread = np.maximum(f_np.std(axis=0), 1e-12)
    return {"windows": len(f_np), "same_top_class": float(np.mean(p_np.argmax(1) == p_ort.argmax(1))),
            "max_probability_difference": float(np.abs(p_np - p_ort).max()),
            "max_feature_difference_over_spread": float((np.abs(f_np - f_ort) / spread).max())}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ser_live.app.runtime import prepare_process
    from ser_live.audio.files import read_audio
    from ser_live.model.emotion_model import EmotionModel
    from ser_live.training.corpora import scan_corpora

    prepare_process()
    model = EmotionModel.load(args.model)
    if model.extractor.kind != "whisper-encoder":
        print("error: the model has no speech encoder; its features have one runtime", file=sys.stderr)
        return 1
    scan = scan_corpora(args.data)
    by_corpus: dict[str, list] = {}
    for utterance in scan.utterances:
        by_corpus.setdefault(utterance.corpus, []).append(utterance)
    print("| corpus | recordings | windows | same top class | largest probability difference | "
          "largest feature difference / spread |\n|---|---|---|---|---|---|")
    for corpus, utterances in sorted(by_corpus.items()):
        picked = [utterances[i] for i in np.linspace(0, len(utterances) - 1, min(args.per_corpus, len(utterances)))
                  .astype(int)]
        row = compare([read_audio(u.path, sample_rate_hz=model.sample_rate_hz) for u in picked], model)
        print(f"| {corpus} | {len(picked)} | {row['windows']} | {row['same_top_class']:.2%} | "
              f"{row['max_probability_difference']:.1e} | {row['max_feature_difference_over_spread']:.1e} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
