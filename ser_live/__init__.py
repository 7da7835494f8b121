"""ser-live: real-time speech emotion recognition from the microphone or from files.

The small public API::

    import ser_live
    model = ser_live.load_model()                      # the shipped model (or load_model("light"))
    result = ser_live.classify_signal(samples, sample_rate_hz=44100, model=model)
    result.emotion, result.probs

    monitor = ser_live.Monitor(model, on_prediction=print)
    monitor.run_file("speech.wav")                     # or monitor.listen(); ...; monitor.stop()

    # What the console and the window run on: one validated config, one session.
    with ser_live.open_session(ser_live.SessionConfig(model="light")) as session:
        session.monitor(on_prediction=print).run_file("speech.wav")

Names are imported when first used, so ``import ser_live.results`` (the result types) does not load
numpy, the feature code or the model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use).
_EXPORTS: dict[str, str] = {
    "AudioFileError": "errors", "ConfigError": "errors", "DeviceError": "errors", "ModelError": "errors",
    "SerLiveError": "errors",
    "EncoderFeatures": "features.extractor", "FeatureExtractor": "features.extractor",
    "HandcraftedFeatures": "features.extractor",
    "FeatureConfig": "features.handcrafted", "extract_features": "features.handcrafted",
    "EmotionModel": "model.emotion_model",
    "EMOTIONS": "results", "ClipResult": "results", "Prediction": "results", "SessionSummary": "results",
    "StatusEvent": "results", "StatusKind": "results",
    "Monitor": "engine.monitor", "classify_file": "engine.monitor", "classify_signal": "engine.monitor",
    "Batch": "engine.batch", "FileResult": "engine.batch", "classify_batch": "engine.batch",
    "MonitorSettings": "app.session", "Session": "app.session", "SessionConfig": "app.session",
    "open_session": "app.session",
}

__all__ = ["__version__", "load_model", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from .app.session import MonitorSettings, Session, SessionConfig, open_session  # noqa: F401
    from .engine.batch import Batch, FileResult, classify_batch  # noqa: F401
    from .engine.monitor import Monitor, classify_file, classify_signal  # noqa: F401
    from .errors import (  # noqa: F401
        AudioFileError,
        ConfigError,
        DeviceError,
        ModelError,
        SerLiveError,
    )
    from .features.extractor import EncoderFeatures, FeatureExtractor, HandcraftedFeatures  # noqa: F401
    from .features.handcrafted import FeatureConfig, extract_features  # noqa: F401
    from .model.emotion_model import EmotionModel
    from .results import EMOTIONS, ClipResult, Prediction, SessionSummary, StatusEvent, StatusKind  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ser_live' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def load_model(path: str | None = None) -> EmotionModel:
    """Load the shipped model, the shipped model called ``path`` (``"light"``), or the model file at ``path``.

    See :meth:`EmotionModel.load`.
    """
    from .model.emotion_model import EmotionModel

    return EmotionModel.load(path)
