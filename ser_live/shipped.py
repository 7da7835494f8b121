"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = (
    "0148c5619028c3feacea83041bd531299932305e90bc13e57c0a6cd8ba0851f3",  # default
    "0d10e48b89ba0d44b6ba91a8e5a1cdcbd00d763171b26bdb231e6566fc5b4261",  # light
)
