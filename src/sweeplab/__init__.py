"""sweeplab: Hydra-configured scikit-learn runs and sweeps, tracked in MLflow."""

import time
from importlib.metadata import PackageNotFoundError, version

# When this process loaded sweeplab: deadlines a user waits for count from here.
LOADED_AT = time.monotonic()

try:
    __version__ = version("sweeplab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
