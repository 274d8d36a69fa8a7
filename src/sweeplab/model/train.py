"""Fit an estimator on a split's folds, score each fold, refit (no MLflow here)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeplab.model.estimators import fit_arguments
from sweeplab.model.splits import Split
from sweeplab.model.tasks import Task

if TYPE_CHECKING:
    import pandas as pd

# Called with each fold's number and metrics as soon as the fold is scored; it raises Pruned
# (an Optuna pruner's verdict) to stop the run between folds.
FoldReport = Callable[[int, dict[str, float]], None]


class Pruned(Exception):
    """A fold report stopped training: ``folds`` holds the metrics of the folds it finished."""

    def __init__(self, folds: list[dict[str, float]] | None = None, total: int = 0) -> None:
        self.folds, self.total = folds or [], total
        super().__init__(f"pruned after {len(self.folds)} of {total} folds")


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


# Estimator modules and classes that spread one fit over every core themselves (OpenMP):
# their folds run one after another, or the threads would fight for the cores.
_THREADED = ("lightgbm.", "xgboost.", "sklearn.ensemble._hist_gradient_boosting.")


def threads_itself(model: Any) -> bool:
    """Whether one fit of ``model`` already uses several cores (its own n_jobs, or OpenMP)."""
    steps = [model, *(step for _, step in getattr(model, "steps", []))]
    if any(type(step).__module__.startswith(_THREADED) for step in steps):
        return True
    params = model.get_params() if hasattr(model, "get_params") else {}
    return any(k.split("__")[-1] == "n_jobs" and v not in (None, 1) for k, v in params.items())


def fold_workers(model: Any, folds: int, cores: int) -> int:
    """How many folds of ``model`` to fit at once on ``cores`` idle cores (1: in turn)."""
    if folds < 2 or cores < 2 or threads_itself(model):
        return 1
    return min(folds, cores)


def _fold(
    model: Any, split: Split, i: int, task: Task, fitting: dict[str, Any]
) -> dict[str, float]:
    """Fit a clone of ``model`` on fold ``i``'s training rows (``fitting``: what its fit
    takes besides them) and score its validation rows."""
    from sklearn.base import clone

    X_train, X_val, y_train, y_val = split.fold(i)
    return score(clone(model).fit(X_train, y_train, **fitting), X_val, y_val, task)


def train(
    model: Any,
    split: Split,
    task: Task,
    *,
    report: FoldReport | None = None,
    cores: int = 1,
) -> Trained:
    """Fit ``model`` on each fold and score it; with k folds refit it on all the rows.

    A holdout's one fold model is the model (the tutorial's own steps). With k folds each
    fold fits a clone, ``report`` hears each fold's metrics in fold order as they come, and
    ``model`` itself is then fitted on every row of the split's ``X`` (GridSearchCV's refit).
    ``cores``: the cores this run may use; folds fit on threads, up to one a core, when the
    estimator does not spread its own fits (fold_workers). Scores do not depend on it.
    """
    fitting = fit_arguments(model)
    if not split.refit:
        X_train, X_val, y_train, y_val = split.fold(0)
        model.fit(X_train, y_train, **fitting)
        predictions, metrics = _scored(model, X_val, y_val, task)
        return Trained(model, predictions, metrics)
    k = len(split.folds)
    workers = fold_workers(model, k, cores)
    folds: list[dict[str, float]] = []
    scored: Iterator[dict[str, float]]
    if workers == 1:
        scored = (_fold(model, split, i, task, fitting) for i in range(k))
        pool, refit = None, None
    else:
        from concurrent.futures import ThreadPoolExecutor

        # Threads, not processes: scikit-learn's fits release the GIL, and the rows are
        # shared rather than copied to each worker.
        pool = ThreadPoolExecutor(workers, thread_name_prefix="sweeplab-fold")
        # The refit needs no fold's score: it runs beside them, first as the biggest fit,
        # unless a pruner may stop the run after any fold.
        refit = pool.submit(model.fit, split.X, split.y, **fitting) if report is None else None
        scored = pool.map(lambda i: _fold(model, split, i, task, fitting), range(k))
    try:
        for i, metrics in enumerate(scored):
            folds.append(metrics)
            if report is not None:
                try:
                    report(i, metrics)
                except Pruned:
                    raise Pruned(folds, k) from None
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if refit is not None:
        refit.result()
    else:
        model.fit(split.X, split.y, **fitting)
    return Trained(model, np.asarray(model.predict(split.X.head(5))), summary(folds), folds)
