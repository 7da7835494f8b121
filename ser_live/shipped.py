"""SHA-256 of the model files shipped with this ser-live (written by scripts/train.py --ship)."""

SHIPPED_MODEL_SHA256: tuple[str, ...] = (
    "d1d6d840e28ed1b50c7c115fe1544a22496ed9520d6996816dd908ff34957e6c",  # default
    "0d10e48b89ba0d44b6ba91a8e5a1cdcbd00d763171b26bdb231e6566fc5b4261",  # light
)
