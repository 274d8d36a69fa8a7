"""Where the user launched sweeplab from, even after Hydra changed into a run directory."""

import os

from hydra.core.hydra_config import HydraConfig


def launch_dir() -> str:
    """The directory the user launched from, even if Hydra changed into a run directory."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.cwd)
    return os.getcwd()
