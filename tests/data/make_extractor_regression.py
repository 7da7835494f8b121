"""Record the features and predictions tests/test_app.py compares the extractor seam against (run from the repo root).

Run once before a change that must not move a number; the test then asserts equality with this record.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from test_app import REGRESSION, SR, voice  # noqa: E402

from ser_live.gate import SpeechGate  # noqa: E402
from ser_live.model import EmotionModel  # noqa: E402
from ser_live.pipeline import Monitor, classify_signal, gated_window_features  # noqa: E402


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # as the test compares (and the ser-live command runs)
    y = voice(12.0)
    record = {}
    for name in ("light", "default"):
        model = EmotionModel.load(name)
        gated = gated_window_features([y], gate=SpeechGate(sample_rate_hz=SR), extractor=model.extractor,
                                      window_samples=int(model.window_s * SR), hop_samples=int(model.hop_s * SR))
        record[f"{name}_features"], record[f"{name}_ends"] = gated.features, gated.end_samples
        for adapt in (False, True):
            predictions = Monitor(model, adapt=adapt).feed(y)
            record[f"{name}_probs_adapt{int(adapt)}"] = np.array([[p.probs[c] for c in model.classes]
                                                                  for p in predictions])
        clip = classify_signal(y, sample_rate_hz=SR, model=model)
        record[f"{name}_clip_probs"] = np.array(list(clip.probs.values()))
    np.savez_compressed(REGRESSION, **record)
    print(f"wrote {REGRESSION}")


if __name__ == "__main__":
    main()
