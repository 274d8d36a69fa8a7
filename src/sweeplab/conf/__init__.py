"""The default configs; a package so Hydra finds them as pkg://sweeplab.conf once installed."""
