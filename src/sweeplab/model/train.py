"""Split a dataset, fit an estimator, and score it on the held-out rows (no MLflow here)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sweeplab.data import Data
from sweeplab.model.tasks import Task
from sweeplab.util.checks import ConfigError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, eq=False)
class Split:
    """Training and validation rows, features and target apart (equal only to itself)."""

    X_train: "pd.DataFrame"
    X_val: "pd.DataFrame"
    y_train: "pd.Series"
    y_val: "pd.Series"


def split(data: Data, test_size: float, seed: int, *, stratify: bool = False) -> Split:
    """Hold out ``test_size`` of the rows, as the tutorial does with train_test_split.

    Classification keeps each class's share in both parts (``stratify``). A split that
    cannot be made is a ConfigError naming the setting.
    """
    from sklearn.model_selection import train_test_split

    X = data.frame[data.features]
    y = data.frame[data.target]
    if stratify:
        counts = y.value_counts()
        single = [str(c) for c, n in counts.items() if n < 2]
        if single:
            raise ConfigError(
                "dataset.target",
                data.target,
                f"class(es) {single[:10]} of {data.name} have a single row; a stratified split "
                "needs two of each: drop those rows or merge the classes",
            )
    try:
        X_train, X_val, y_train, y_val = train_test_split(
            X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
        )
    except ValueError as e:
        raise ConfigError("dataset.test_size", test_size, str(e).splitlines()[0]) from None
    return Split(X_train, X_val, y_train, y_val)


@dataclass
class Trained:
    """A fitted model, its validation predictions and its scores."""

    estimator: Any
    predictions: np.ndarray
    metrics: dict[str, float]


def fit(model: Any, data: Split) -> np.ndarray:
    """Fit on the training rows and return predictions for the validation rows."""
    model.fit(data.X_train, data.y_train)
    return np.asarray(model.predict(data.X_val))


def train(model: Any, data: Split, task: Task) -> Trained:
    """Fit ``model``, predict the validation rows and compute the task's metrics."""
    predictions = fit(model, data)
    proba, classes = None, None
    if task.proba and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(data.X_val))
        classes = list(model.classes_)
    metrics = task.evaluate(data.y_val.to_numpy(), predictions, proba, classes)
    return Trained(model, predictions, metrics)
