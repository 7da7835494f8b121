"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("4d9feec252510da832eee9ba92edf6cac3a7c30fb5488dcd47a2d187d471728e",)
