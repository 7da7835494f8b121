"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = (
    "b0f4b94a92574eef3a28ab67b0be3960d41aeab82faa52ac23f87249c4f3c44e",  # default
    "163d2d406e1dee0187a920257fb3ea9607011f46b481dfcb55fde2c9784a25b5",  # light
)
