"""What kind of prediction a run makes: its metrics, the metric a sweep ranks by, its split."""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np


class Metric(Enum):
    """Every validation metric a run can log (which ones, by task: see TASKS)."""

    mae = "mae"
    mse = "mse"
    rmse = "rmse"
    r2 = "r2"
    accuracy = "accuracy"
    f1_macro = "f1_macro"
    log_loss = "log_loss"
    roc_auc = "roc_auc"


class Direction(Enum):
    """Whether a smaller or a larger metric is better."""

    minimize = "minimize"
    maximize = "maximize"


METRICS = tuple(m.value for m in Metric)
# Each metric's own sense: errors and losses shrink, scores grow.
DIRECTIONS = {
    "mae": "minimize",
    "mse": "minimize",
    "rmse": "minimize",
    "r2": "maximize",
    "accuracy": "maximize",
    "f1_macro": "maximize",
    "log_loss": "minimize",
    "roc_auc": "maximize",
}


def regression_metrics(y_true: Any, y_pred: Any, proba: Any, classes: Any) -> dict[str, float]:
    """The tutorial's validation metrics: mae, mse, rmse and r2."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        # R² needs two rows; scikit-learn would warn and return NaN, which the logger reports.
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else float("nan"),
    }


def classification_metrics(y_true: Any, y_pred: Any, proba: Any, classes: Any) -> dict[str, float]:
    """accuracy and f1_macro; log_loss and roc_auc too when class probabilities are known."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }
    if proba is not None:
        metrics["log_loss"] = float(log_loss(y_true, proba, labels=classes))
        try:
            if len(classes) == 2:
                score = roc_auc_score(y_true == classes[1], proba[:, 1])
            else:
                score = roc_auc_score(
                    y_true, proba, multi_class="ovr", average="macro", labels=classes
                )
            metrics["roc_auc"] = float(score)
        except ValueError:  # a class absent from the validation rows: AUC is undefined
            metrics["roc_auc"] = float("nan")
    return metrics


def _is_regressor(estimator: Any) -> bool:
    from sklearn.base import is_regressor

    return bool(is_regressor(estimator))


def _is_classifier(estimator: Any) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


@dataclass(frozen=True)
class Task:
    """One kind of prediction: how it is scored and which estimators fit it."""

    name: str
    # What the task may log; a classifier without predict_proba logs the first two only.
    metrics: tuple[str, ...]
    # What a sweep ranks by when sweep.metric is null.
    default_metric: str
    # Keep each class's share in both parts of the split.
    stratify: bool
    # Scored on class probabilities too, when the estimator gives them (predict_proba).
    proba: bool
    evaluate: Callable[[Any, Any, Any, Any], dict[str, float]]
    # Whether an estimator declares itself for the other task (undeclared ones may try).
    other: Callable[[Any], bool]
    # What an estimator for this task is called: "regressor", "classifier".
    kind: str


TASKS = {
    "regression": Task(
        "regression",
        ("mae", "mse", "rmse", "r2"),
        "rmse",
        stratify=False,
        proba=False,
        evaluate=regression_metrics,
        other=_is_classifier,
        kind="regressor",
    ),
    "classification": Task(
        "classification",
        ("accuracy", "f1_macro", "log_loss", "roc_auc"),
        "accuracy",
        stratify=True,
        proba=True,
        evaluate=classification_metrics,
        other=_is_regressor,
        kind="classifier",
    ),
}


def ranking(
    metric: str | None,
    direction: str | None = None,
    *,
    task: Task | None = None,
    earlier: tuple[str | None, str | None] = (None, None),
    fallback: str = "rmse",
) -> tuple[str, str]:
    """The metric and direction that rank runs, chosen the one way sweeplab chooses them.

    The metric: the one given, else an earlier ranking's (a sweep parent's tags), else the
    task's default, else ``fallback``. The direction: the one given, else the earlier
    ranking's when it ranked by the same metric, else the metric's own sense.
    """
    earlier_metric, earlier_direction = earlier
    chosen = metric or earlier_metric or (task.default_metric if task else fallback)
    if direction is None:
        same = earlier_direction is not None and chosen == earlier_metric
        direction = earlier_direction if same else DIRECTIONS.get(chosen, "minimize")
    assert direction is not None
    return chosen, direction
