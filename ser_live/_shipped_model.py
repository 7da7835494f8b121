"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("bad724d2b7fdc31aab85156ed843e6f2b2858a8cbbc7b8bb8ad2afc1fc580b26",)
