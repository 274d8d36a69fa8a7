"""Test estimators whose fit (or log) waits for a file: timing windows the test opens and closes.

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
        self._wait()
        return self._learn(X, y)

    def _wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not Path(self.path).exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _learn(self, X: Any, y: Any) -> "WaitsForFile":
        self.mean_ = float(np.mean(y))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The training mean for every row."""
        return np.full(len(X), self.mean_)


class WaitsToBeSaved(WaitsForFile):
    """Fits at once; saved in a process it was sent to, it waits for ``path`` first.

    A run's model is pickled to sweeplab's tracking process, which logs it: there, and only
    there, serializing it (skops, as pickle, asks ``__getstate__``) waits, so a test can act
    while the model's log is under way.
    """

    def fit(self, X: Any, y: Any) -> "WaitsToBeSaved":
        """Learn the mean of ``y``, without waiting."""
        self._learn(X, y)
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__["_sent"] = True  # unpickled: this copy is the one the log saves

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if state.pop("_sent", False):
            self._wait()
        return state


def waiting_model(
    root: Path, estimator: str = "WaitsForFile"
) -> tuple[list[str], dict[str, str], Path]:
    """sweeplab's arguments and environment for a run of ``estimator`` (this module's
    WaitsForFile: its fit waits; WaitsToBeSaved: its log waits) and the file it waits for."""
    release = root / "release-the-fit"
    configs = root / "blocking-configs" / "model"
    configs.mkdir(parents=True)
    (configs / "waits.yaml").write_text(
        f"_target_: blocking.{estimator}\nname: waits\npath: {release}\ntimeout: 120.0\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).parent), "SWEEPLAB_ALLOW_TARGETS": "blocking"}
    return ["--config-dir", str(configs.parent), "model=waits"], env, release
