"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = (
    "213556b0f6b35ed6fd6124a6a95985e88ddd6353e2fc7abca4a2c6950c05e0a6",  # default
    "32a48c63efbfc8374d771cb64454530196325be74a1821f887395feeeac6299e",  # light
)
