"""Record the features and predictions tests/test_extractor_regression.py compares against (run from the repo root).

Run once before a change that must not move a number, and after every retraining of the shipped models (``make
regression-record``; ``make train`` runs it): the record names the model files it was made with by their SHA-256,
and the test compares with it, each stage to the tolerance of its arithmetic (see that module's docstring).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from test_extractor_regression import REGRESSION, SR, SpyExtractor, gated, monitor_run, voice, with_extractor  # noqa: E402

from ser_live.engine.monitor import classify_signal  # noqa: E402
from ser_live.model.emotion_model import EmotionModel, file_sha256  # noqa: E402


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # as the ser-live command runs
    y = voice(12.0)
    record = {}
    for name in ("light", "default"):
        model = EmotionModel.load(name)
        record[f"{name}_model_sha256"] = np.array(file_sha256(model.path))
        batch = gated(model, y)
        record[f"{name}_features"], record[f"{name}_ends"] = batch.features, batch.end_samples
        spy = SpyExtractor(model.extractor)
        for adapt in (False, True):
            speech, record[f"{name}_probs_adapt{int(adapt)}"] = monitor_run(with_extractor(model, spy), y, adapt=adapt)
        # The live monitor featurises window by window; its vectors may differ from the batch's in the last bits.
        record[f"{name}_window_speech"] = speech
        record[f"{name}_window_features"] = np.array(spy.vectors[: int(speech.sum())])
        clip = classify_signal(y, sample_rate_hz=SR, model=model)
        record[f"{name}_clip_probs"] = np.array(list(clip.probs.values()))
    np.savez_compressed(REGRESSION, **record)
    print(f"wrote {REGRESSION}")


if __name__ == "__main__":
    main()
