"""sweeplab's basic launcher, found by Hydra's plugin discovery (the `hydra_plugins` namespace)."""
