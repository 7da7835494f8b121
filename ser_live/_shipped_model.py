"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("797d77e80727893e1d0a44f438cc56a37606f2c7bedf24d106d9b172e98dd48f",)
