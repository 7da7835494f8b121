"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("9b3d38ab0b5bbda0fd6c8670147f494f246a06eb8879b375fa9de100e9a838da",)
