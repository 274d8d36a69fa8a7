"""The tutorial "Logging your first model" as one script: the reference sweeplab must match.

Kept as close to the tutorial as MLflow 3 and pandas 3 allow. The only changes, each forced:
- ``fillna(method="bfill", inplace=True)`` on a column is gone in pandas 3 -> ``bfill()``;
- ``log_model`` takes ``name=`` (``artifact_path`` is deprecated) and skops needs the
  tree type trusted to load the model back;
- the tracking URI comes from ``MLFLOW_TRACKING_URI`` so the benchmark can point it at a
  sqlite store (the tutorial hard-codes its server).
The tests import the generator, ``PARAMS`` and ``train`` from here; the benchmark runs this
file as a whole process.
"""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd


def generate_apple_sales_data_with_promo_adjustment(base_demand: int = 1000, n_rows: int = 5000):
    # Set seed for reproducibility
    np.random.seed(9999)

    # Create date range
    dates = [datetime.now() - timedelta(days=i) for i in range(n_rows)]
    dates.reverse()

    # Generate features
    df = pd.DataFrame(
        {
            "date": dates,
            "average_temperature": np.random.uniform(10, 35, n_rows),
            "rainfall": np.random.exponential(5, n_rows),
            "weekend": [(date.weekday() >= 5) * 1 for date in dates],
            "holiday": np.random.choice([0, 1], n_rows, p=[0.97, 0.03]),
            "price_per_kg": np.random.uniform(0.5, 3, n_rows),
            "month": [date.month for date in dates],
        }
    )

    # Introduce inflation over time (years)
    df["inflation_multiplier"] = 1 + (df["date"].dt.year - df["date"].dt.year.min()) * 0.03

    # Incorporate seasonality due to apple harvests
    df["harvest_effect"] = np.sin(2 * np.pi * (df["month"] - 3) / 12) + np.sin(
        2 * np.pi * (df["month"] - 9) / 12
    )

    # Modify the price_per_kg based on harvest effect
    df["price_per_kg"] = df["price_per_kg"] - df["harvest_effect"] * 0.5

    # Adjust promo periods to coincide with periods lagging peak harvest by 1 month
    peak_months = [4, 10]  # months following the peak availability
    df["promo"] = np.where(
        df["month"].isin(peak_months),
        1,
        np.random.choice([0, 1], n_rows, p=[0.85, 0.15]),
    )

    # Generate target variable based on features
    base_price_effect = -df["price_per_kg"] * 50
    seasonality_effect = df["harvest_effect"] * 50
    promo_effect = df["promo"] * 200

    df["demand"] = (
        base_demand
        + base_price_effect
        + seasonality_effect
        + promo_effect
        + df["weekend"] * 300
        + np.random.normal(0, 50, n_rows)
    ) * df["inflation_multiplier"]  # adding random noise

    # Add previous day's demand
    df["previous_days_demand"] = df["demand"].shift(1)
    # pandas 3: fillna(method=...) is gone and chained inplace does nothing
    df["previous_days_demand"] = df["previous_days_demand"].bfill()  # fill the first row

    # Drop temporary columns
    df.drop(columns=["inflation_multiplier", "harvest_effect", "month"], inplace=True)

    return df


# The tutorial's hyperparameters.
PARAMS = {
    "n_estimators": 100,
    "max_depth": 6,
    "min_samples_split": 10,
    "min_samples_leaf": 4,
    "bootstrap": True,
    "oob_score": False,
    "random_state": 888,
}


def train(data: pd.DataFrame):
    """The tutorial's training cell: split, fit, predict, score; returns (model, X_val, metrics)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split

    X = data.drop(columns=["date", "demand"])
    y = data["demand"]
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=42)
    rf = RandomForestRegressor(**PARAMS)
    rf.fit(X_train, y_train)
    y_pred = rf.predict(X_val)
    mae = mean_absolute_error(y_val, y_pred)
    mse = mean_squared_error(y_val, y_pred)
    rmse = np.sqrt(mse)
    r2 = r2_score(y_val, y_pred)
    metrics = {"mae": mae, "mse": mse, "rmse": rmse, "r2": r2}
    return rf, X_val, metrics


def main() -> None:
    """Run the tutorial's cells as written: experiment, data, training, logging."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_description = (
        "This is the grocery forecasting project. "
        "This experiment contains the produce models for apples."
    )
    experiment_tags = {
        "project_name": "grocery-forecasting",
        "store_dept": "produce",
        "team": "stores-ml",
        "project_quarter": "Q3-2023",
        "mlflow.note.content": experiment_description,
    }
    if client.get_experiment_by_name("Apple_Models") is None:
        client.create_experiment(name="Apple_Models", tags=experiment_tags)

    data = generate_apple_sales_data_with_promo_adjustment(base_demand=1_000, n_rows=5_000)

    mlflow.set_experiment("Apple_Models")
    run_name = "apples_rf_test"
    artifact_path = "rf_apples"
    rf, X_val, metrics = train(data)

    with mlflow.start_run(run_name=run_name):
        mlflow.log_params(PARAMS)
        mlflow.log_metrics(metrics)
        mlflow.sklearn.log_model(
            sk_model=rf,
            input_example=X_val,
            name=artifact_path,
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )


if __name__ == "__main__":
    main()
