"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = (
    "993e68eeb447aad96c741133c36271f9a0e753c1d3162df89e43bbf52b271748",  # default
)
