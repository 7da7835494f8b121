import sys; sys.path.insert(0, "tests")
import numpy as np
from conftest import tone
from ser_live.model import EmotionModel
from ser_live.pipeline import Monitor, classify_signal, gated_window_features
from ser_live.gate import SpeechGate
SR = 16000

def voice(seconds, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    while sum(p.size for p in parts) < seconds * SR:
        parts.append(tone(float(rng.uniform(110, 240)), float(rng.uniform(0.8, 1.6)), vibrato_hz=3.0, seed=len(parts)))
        parts.append(np.zeros(int(rng.uniform(0.3, 0.9) * SR), np.float32))
    return np.concatenate(parts)[: int(seconds * SR)]

y = voice(12.0)
res = {}
for name in ("light", None):
    model = EmotionModel.load(name)
    key = name or "default"
    g = gated_window_features([y], gate=SpeechGate(sample_rate_hz=SR), extractor=model.extractor,
                              window_samples=int(model.window_s*SR), hop_samples=int(model.hop_s*SR))
    res[f"{key}_features"] = g.features
    res[f"{key}_ends"] = g.end_samples
    for adapt in (False, True):
        m = Monitor(model, adapt=adapt)
        preds = m.feed(y)
        res[f"{key}_probs_adapt{int(adapt)}"] = np.array([[p.probs[c] for c in model.classes] if p.speech else [np.nan]*len(model.classes) for p in preds])
    clip = classify_signal(y, sample_rate_hz=SR, model=model)
    res[f"{key}_clip_probs"] = np.array(list(clip.probs.values()))
    print(key, g.features.shape, clip.emotion, np.isnan(res[f"{key}_probs_adapt1"][:,0]).sum(), len(preds))
np.savez_compressed("tests/data/extractor_regression.npz", **res)
