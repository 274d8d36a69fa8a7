"""sweeplab's joblib launcher, found by Hydra's plugin discovery (the `hydra_plugins` namespace)."""
