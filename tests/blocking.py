"""A test estimator whose fit waits for a file: timing windows the test opens and closes.

A test that must act while a run trains (kill a process, send a signal) creates nothing until
it has acted, then creates the file; no model is made slow to leave it time.
"""

import time
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval


class WaitsForFile(RegressorMixin, BaseEstimator):
    """Predicts the training mean, once ``path`` exists (or ``timeout`` seconds have passed)."""

    # scikit-learn's own validation, which sweeplab runs before a job trains: a negative
    # timeout is a job refused for its value, as n_estimators=0 is for a forest.
    _parameter_constraints: ClassVar[dict] = {
        "path": [str],
        "timeout": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, path: str = "", timeout: float = 120.0) -> None:
        self.path = path
        self.timeout = timeout

    def fit(self, X: Any, y: Any) -> "WaitsForFile":
        """Wait for the file, then learn the mean of ``y``."""
        deadline = time.monotonic() + self.timeout
        while not Path(self.path).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.mean_ = float(np.mean(y))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The training mean for every row."""
        return np.full(len(X), self.mean_)


def waiting_model(root: Path) -> tuple[list[str], dict[str, str], Path]:
    """sweeplab's arguments and environment for a run whose fit waits for the returned file."""
    release = root / "release-the-fit"
    configs = root / "blocking-configs" / "model"
    configs.mkdir(parents=True)
    (configs / "waits.yaml").write_text(
        f"_target_: blocking.WaitsForFile\nname: waits\npath: {release}\ntimeout: 120.0\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).parent), "SWEEPLAB_ALLOW_TARGETS": "blocking"}
    return ["--config-dir", str(configs.parent), "model=waits"], env, release
