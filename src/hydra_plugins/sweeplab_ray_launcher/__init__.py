"""sweeplab's Ray launcher, found by Hydra's plugin discovery (the `hydra_plugins` namespace)."""
