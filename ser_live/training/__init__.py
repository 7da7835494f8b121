"""Training-time code: corpus readers, feature caching, augmentation, speaker-independent evaluation, shipping.

Nothing here is imported by the live path. Submodules are imported explicitly
(``from ser_live.training import corpora``) so that importing this package stays cheap.
"""
