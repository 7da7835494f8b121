"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = ("61c666036cd409478576525c5e3563fef83055be332c503bbe52d784192a86dc",)
