"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("997230e7cacb55acb4f6378a643c3708839923605c109e9a4d8342af9b416050",)
