"""ser-live: real-time speech emotion recognition from the microphone or from files.

The small public API::

    import ser_live
    model = ser_live.load_model()                      # the shipped model (or load_model("light"))
    result = ser_live.classify_signal(samples, sample_rate_hz=44100, model=model)
    result.emotion, result.probs

    monitor = ser_live.Monitor(model, on_prediction=print)
    monitor.run_file("speech.wav")                     # or monitor.listen(); ...; monitor.stop()
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import AudioFileError, DeviceError, ModelError, SerLiveError, UntrustedModelError
from .extractor import EncoderFeatures, FeatureExtractor, HandcraftedFeatures
from .features import FeatureConfig, extract_features
from .model import EMOTIONS, EmotionModel
from .pipeline import ClipResult, Monitor, Prediction, classify_file, classify_signal

__all__ = [
    "__version__",
    "EMOTIONS",
    "AudioFileError",
    "ClipResult",
    "DeviceError",
    "EmotionModel",
    "EncoderFeatures",
    "FeatureConfig",
    "FeatureExtractor",
    "HandcraftedFeatures",
    "ModelError",
    "Monitor",
    "Prediction",
    "SerLiveError",
    "UntrustedModelError",
    "classify_file",
    "classify_signal",
    "extract_features",
    "load_model",
]


def load_model(path: str | None = None, *, trust: bool = False) -> EmotionModel:
    """Load the shipped model, the shipped model called ``path`` (``"light"``), or the model file at ``path``
    (which needs ``trust=True``).

    See :meth:`EmotionModel.load`.
    """
    return EmotionModel.load(path, trust=trust)
