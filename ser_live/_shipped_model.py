"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("5437afc7c4032112bfdd19be06ce842314cc0eafadca4f2edcff83d6a64cea2e",)
