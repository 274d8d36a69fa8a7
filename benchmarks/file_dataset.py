"""A run on the user's own file: what sweeplab adds beyond reading the CSV and fitting.

Writes a 200,000-row, 20-column CSV (18 numbers, 2 text columns) once, then alternately times:
- baseline: a plain Python process that reads the CSV with pandas, one-hot encodes the two text
  columns in front of HistGradientBoostingRegressor (the Pipeline sweeplab builds), splits
  80/20 with the same seed, fits and predicts: no MLflow;
- sweeplab: `sweeplab dataset=table dataset.path=... model=hist_gradient_boosting`, a whole
  process that also validates, hashes the file, logs params, metrics, both splits as datasets,
  the config and the skops model.
Prints each round, the medians, what sweeplab adds in seconds and the ratio.

    .venv/bin/python benchmarks/file_dataset.py [--rounds 3] [--rows 200000]
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from single_run import alternate, timed  # benchmarks/ is on sys.path when a script here runs

BIN = Path(sys.executable).parent

BASELINE = """
import sys
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

frame = pd.read_csv(sys.argv[1])
X, y = frame.drop(columns="target"), frame["target"]
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=42)
onehot = OneHotEncoder(
    handle_unknown="infrequent_if_exist", max_categories=1000, sparse_output=False
)
encode = ColumnTransformer(
    [("onehot", onehot, ["region", "channel"])],
    remainder="passthrough", verbose_feature_names_out=False,
)
model = Pipeline([("encode", encode), ("model", HistGradientBoostingRegressor(random_state=888))])
model.fit(X_train, y_train)
model.predict(X_val)
"""


def write_csv(path: Path, rows: int) -> None:
    """18 numeric features, a 12-value and a 4-value text column, and a numeric target."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 18)).round(4), columns=[f"x{i}" for i in range(18)])
    frame["region"] = rng.choice([f"region_{i}" for i in range(12)], rows)
    frame["channel"] = rng.choice(["web", "store", "phone", "partner"], rows)
    effect = frame["region"].str[-1].astype(int) * 0.3 + (frame["channel"] == "web") * 2
    frame["target"] = (
        frame[["x0", "x1", "x2"]].sum(axis=1) + effect + rng.normal(size=rows)
    ).round(4)
    frame.to_csv(path, index=False)


def main() -> None:
    """Alternate baseline and sweeplab processes; print the medians and the difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the generated CSV")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-file-"))
    csv = work / "sales.csv"
    write_csv(csv, args.rows)
    print(f"{csv}: {args.rows:,} rows x 21 columns, {csv.stat().st_size / 1e6:.1f} MB")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    commands = {
        "baseline": [sys.executable, "-c", BASELINE, str(csv)],
        "sweeplab": [
            str(BIN / "sweeplab"), "dataset=table", f"dataset.path={csv}",
            "dataset.target=target", "model=hist_gradient_boosting", "experiment.name=FileBench",
        ],
    }  # fmt: skip
    # Untimed: the first sweeplab process creates the store's schema and the experiment.
    timed(commands["sweeplab"], work, env)
    medians = alternate(commands, args.rounds, work, dict.fromkeys(commands, env))
    added = medians["sweeplab"] - medians["baseline"]
    print(f"median: baseline {medians['baseline']:.2f}s  sweeplab {medians['sweeplab']:.2f}s")
    print(f"sweeplab adds {added:.2f}s to reading and fitting "
          f"(ratio {medians['sweeplab'] / medians['baseline']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
