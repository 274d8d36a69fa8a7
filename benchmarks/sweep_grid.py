"""The 3x3 grid (max_depth 3,6,9 x n_estimators 50,100,200) as a sweeplab multirun.

Times, in the same run: the nine fits alone (data generation, split, fit and predict in this
process, no MLflow), then whole `sweeplab -m` processes with Hydra's basic launcher and with
`hydra/launcher=joblib` on 2 workers, alternately. Checks that every sweep logged 9 FINISHED
children with a model each, and prints the medians and the ratios to the fits' time
(targets: sequential <= 2.0x, joblib <= 1.6x).

    .venv/bin/python benchmarks/sweep_grid.py [--rounds 3] [--rows 5000]

With more rows (--rows 20000) the fits dominate, which is where parallel workers pay off.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from single_run import timed  # benchmarks/ is on sys.path when a script here runs
from sklearn.ensemble import RandomForestRegressor

from sweeplab.data.apple_sales import NOT_FEATURES, TARGET, apple_sales
from sweeplab.data.base import describe
from sweeplab.model import splits, train
from sweeplab.model.tasks import TASKS

BIN = Path(sys.executable).parent
GRID = {"max_depth": (3, 6, 9), "n_estimators": (50, 100, 200)}
TARGETS = {"sequential": 2.0, "joblib": 1.6}
SWEEP = [f"model.{k}={','.join(map(str, v))}" for k, v in GRID.items()]
LAUNCHERS = {
    "sequential": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def fits_alone(rows: int, grid: dict[str, tuple[int, ...]] = GRID) -> float:
    """Seconds to generate the data and fit and predict the grid's configs, nothing logged."""
    start = time.perf_counter()
    for depth in grid["max_depth"]:
        for trees in grid["n_estimators"]:
            # The tutorial's other five parameters, as conf/model/random_forest.yaml sets them.
            model = RandomForestRegressor(
                n_estimators=trees, max_depth=depth, min_samples_split=10, min_samples_leaf=4,
                bootstrap=True, oob_score=False, random_state=888,
            )  # fmt: skip
            frame = apple_sales(n_rows=rows, base_demand=1000, seed=9999, end_date="2023-11-01")
            data = describe(frame, target=TARGET, drop=NOT_FEATURES, task="regression",
                            name="apple_sales", source=None, digest="", where="")  # fmt: skip
            train.train(model, splits.holdout(data, 0.2, 42), TASKS["regression"])
    return time.perf_counter() - start


def sweep(launcher: str, work: Path, env: dict[str, str], experiment: str, rows: int) -> float:
    """Wall seconds of one `sweeplab -m` process over the grid, which must succeed."""
    command = [str(BIN / "sweeplab"), "-m", *SWEEP, *LAUNCHERS[launcher]]
    command += [f"experiment.name={experiment}", f"dataset.n_rows={rows}"]
    return timed(command, work, env)


def check_logged(client: MlflowClient, experiment: str) -> None:
    """Every sweep in ``experiment`` has 9 FINISHED children, each with a logged model."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        finished = [r for r in children if r.info.status == "FINISHED"]
        assert len(finished) == 9, f"{parent.info.run_id}: {len(finished)} children finished"
        for child in finished:
            assert child.outputs and child.outputs.model_outputs, f"no model: {child.info.run_id}"


def main() -> None:
    """Time the fits, then alternate the launchers; print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed sweeps per launcher")
    parser.add_argument("--rows", type=int, default=5000, help="dataset.n_rows (the default's)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))
    uri = f"sqlite:///{work}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    # Untimed: a one-job sweep creates the schema; a first fit warms up scikit-learn.
    subprocess.run(
        [str(BIN / "sweeplab"), "-m", "model.n_estimators=5", "experiment.name=warmup"],
        cwd=work, env=env, check=True, capture_output=True,
    )  # fmt: skip
    fits_alone(args.rows)

    fits: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    for round_ in range(1, args.rounds + 1):
        fits.append(fits_alone(args.rows))
        for name in LAUNCHERS:
            times[name].append(sweep(name, work, env, f"grid_{name}", args.rows))
        shown = "  ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items())
        print(f"round {round_}: fits alone {fits[-1]:.2f}s  {shown}", flush=True)

    client = MlflowClient(uri)
    for name in LAUNCHERS:
        check_logged(client, f"grid_{name}")
    base = statistics.median(fits)
    print(f"median fits alone: {base:.2f}s (9 models, {args.rows} rows)")
    for name, t in times.items():
        ratio = statistics.median(t) / base
        verdict = "met" if ratio <= TARGETS[name] else "NOT met"
        print(
            f"{name:>10}: median {statistics.median(t):.2f}s = {ratio:.2f}x the fits "
            f"(target <= {TARGETS[name]}x: {verdict}); 9 models logged per sweep"
        )


if __name__ == "__main__":
    main()
