"""sweeplab's grid sweeper, found by Hydra's plugin discovery (the `hydra_plugins` namespace)."""
