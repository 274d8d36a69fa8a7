"""sweeplab: Hydra-configured scikit-learn runs and sweeps, tracked in MLflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sweeplab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
