"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = (
    "1034785c63274fa8ae88a6a8314decdb411155b21f9353db8b3ce5b37b1654cd",  # default
    "0d10e48b89ba0d44b6ba91a8e5a1cdcbd00d763171b26bdb231e6566fc5b4261",  # light
)
