"""Fit an estimator on a split's folds, score each fold, refit (no MLflow here)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeplab.model.splits import Split
from sweeplab.model.tasks import Task

if TYPE_CHECKING:
    import pandas as pd

# Called with each fold's number and metrics as soon as the fold is scored; it may raise
# (an Optuna pruner's verdict) to stop the run between folds.
FoldReport = Callable[[int, dict[str, float]], None]


@dataclass
class Trained:
    """A fitted model, its predictions for the first rows it is shown with, and its scores."""

    # The model to log: the holdout's fold model, or with k folds one refit on all of X.
    estimator: Any
    # Its predictions for the example rows (a holdout's validation rows; with k folds, X).
    predictions: np.ndarray
    # Holdout: the validation metrics. k folds: each metric's mean over the folds, and its
    # spread as <metric>_std (np.std, as GridSearchCV's std_test_score).
    metrics: dict[str, float]
    # Each fold's metrics, in fold order (k folds only).
    folds: list[dict[str, float]] = field(default_factory=list)


def score(model: Any, X: "pd.DataFrame", y: "pd.Series", task: Task) -> dict[str, float]:
    """The task's metrics of a fitted ``model`` on rows ``X`` with target ``y``."""
    return _scored(model, X, y, task)[1]


def _scored(
    model: Any, X: "pd.DataFrame", y: "pd.Series", task: Task
) -> tuple[np.ndarray, dict[str, float]]:
    predictions = np.asarray(model.predict(X))
    proba, classes = None, None
    if task.proba and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        classes = list(model.classes_)
    return predictions, task.evaluate(y.to_numpy(), predictions, proba, classes)


def summary(folds: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over ``folds``, then each one's spread as ``<metric>_std``."""
    names = list(folds[0])
    values = {name: np.array([fold[name] for fold in folds], dtype=float) for name in names}
    return {
        **{name: float(np.mean(v)) for name, v in values.items()},
        **{f"{name}_std": float(np.std(v)) for name, v in values.items()},
    }


def train(model: Any, split: Split, task: Task, *, report: FoldReport | None = None) -> Trained:
    """Fit ``model`` on each fold and score it; with k folds refit it on all the rows.

    A holdout's one fold model is the model (the tutorial's own steps). With k folds each
    fold fits a clone, ``report`` hears each fold's metrics as they come, and ``model`` itself
    is then fitted on every row of the split's ``X`` (GridSearchCV's refit).
    """
    from sklearn.base import clone

    if not split.refit:
        X_train, X_val, y_train, y_val = split.fold(0)
        model.fit(X_train, y_train)
        predictions, metrics = _scored(model, X_val, y_val, task)
        return Trained(model, predictions, metrics)
    folds = []
    for i in range(len(split.folds)):
        X_train, X_val, y_train, y_val = split.fold(i)
        fitted = clone(model).fit(X_train, y_train)
        folds.append(score(fitted, X_val, y_val, task))
        if report is not None:
            report(i, folds[-1])
    model.fit(split.X, split.y)
    return Trained(model, np.asarray(model.predict(split.X.head(5))), summary(folds), folds)
