"""Split a dataset, fit an estimator, and score it on the held-out rows."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

from sweeplab.datasets import DatasetSpec


@dataclass(frozen=True)
class Split:
    """Training and validation rows, features and target apart."""

    X_train: pd.DataFrame
    X_val: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series


def split(frame: pd.DataFrame, spec: DatasetSpec, test_size: float, seed: int) -> Split:
    """Hold out ``test_size`` of the rows, as the tutorial does with train_test_split."""
    X = frame.drop(columns=[*spec.not_features, spec.target])
    y = frame[spec.target]
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=test_size, random_state=seed)
    return Split(X_train, X_val, y_train, y_val)


def evaluate(y_true: pd.Series, y_pred: np.ndarray) -> dict[str, float]:
    """The tutorial's validation metrics: mae, mse, rmse and r2."""
    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        # R² needs two rows; scikit-learn would warn and return NaN, which the logger reports.
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) >= 2 else float("nan"),
    }


def fit(model: RegressorMixin, data: Split) -> np.ndarray:
    """Fit on the training rows and return predictions for the validation rows."""
    model.fit(data.X_train, data.y_train)
    return np.asarray(model.predict(data.X_val))
