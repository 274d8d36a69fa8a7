"""Process-wide settings, made by sweeplab's entry points only, never by an import.

The entry points: ``sweeplab`` and ``sweeplab-tools``, the task function a launcher's worker
runs (sweeplab.app.main), and the tracking process (sweeplab.tracking.tracker).
"""

import os
import sys

from sweeplab.util import quiet

# How often a busy thread hands over the interpreter's lock (Python's default: 5 ms). A run is
# logged on a background thread (runner.Recorder) while the next one trains; the fits give the
# lock up in their C parts and the logging thread must win it back many times a tree. At 5 ms a
# 3x3 forest grid ran ~0.4 s (4%) slower than at 1 ms; short tracking requests waited on long
# ones ~0.1 s a run instead of ~20 ms.
SWITCH_INTERVAL = 0.001


def configure() -> None:
    """Silence the libraries' noise users cannot act on, hand the GIL over sooner, and keep
    child processes from importing the working directory."""
    quiet.install()
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    # A child started with `python -m` (the tracking process, joblib's loky workers, MLflow's
    # server) puts its working directory first on sys.path: a folder named `sweeplab` (a
    # checkout beside one's projects) or `mlflow` there would shadow the installed package.
    # This process has no such entry (a console script's is its bin folder); its children
    # should not either. PYTHONPATH still applies.
    os.environ["PYTHONSAFEPATH"] = "1"


def cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
