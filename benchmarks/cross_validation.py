"""Cross-validated runs and sweeps against scikit-learn doing the same by hand, in one run.

Three comparisons, each against its baseline in the same run (processes alternate, so machine
noise hits both alike):

1. one 5-fold run: `sweeplab split=kfold` vs a script that makes the same folds, fits the five
   folds and the refit with scikit-learn and nothing else (target: <= 1.5x); and, in this
   process, what fitting the folds on idle cores saves: train(cores=all) vs train(cores=1);
2. the 3x3 grid (max_depth x n_estimators), 5-fold, sequential: `sweeplab -m split=kfold ...`
   vs GridSearchCV(cv=5, refit=True) on the same estimator and rows, its best logged to
   MLflow by hand (target: <= 1.3x);
3. a 30-trial TPE search, 5-fold, with a pruner vs the same search without: the fits each
   made, counted from the store (target: >= 40% fewer), and whether the pruned search's best
   is within the tie band of the unpruned best (the paired test on the same folds).

    .venv/bin/python benchmarks/cross_validation.py [--rounds 3] [--trials 30] [--skip search]

The search needs Optuna: `make install EXTRAS=optuna` first (or --skip search).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from single_run import alternate, timed  # benchmarks/ is on sys.path when a script here runs
from sklearn.base import clone

from sweeplab.util import process

BIN = Path(sys.executable).parent
FOREST = ("n_estimators=100, max_depth=6, min_samples_split=10, min_samples_leaf=4, "
          "bootstrap=True, oob_score=False, random_state=888")  # fmt: skip
DATA = """
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold
from sweeplab.data.apple_sales import apple_sales
frame = apple_sales(n_rows=5000, base_demand=1000, seed=9999, end_date="2023-11-01")
X, y = frame.drop(columns=["date", "demand"]), frame["demand"]
folds = KFold(n_splits=5, shuffle=True, random_state=42)
"""
# The five fold fits and the refit, in turn, as cross_validate and a refit do them.
FITS_ALONE = (
    DATA
    + f"""
from sklearn.base import clone
model = RandomForestRegressor({FOREST})
for train, val in folds.split(X, y):
    clone(model).fit(X.iloc[train], y.iloc[train]).predict(X.iloc[val])
model.fit(X, y)
"""
)
# What a data scientist writes by hand: GridSearchCV, then the best logged to MLflow.
GRID_BY_HAND = (
    DATA
    + f"""
import mlflow
from sklearn.model_selection import GridSearchCV
search = GridSearchCV(
    RandomForestRegressor({FOREST}),
    {{"max_depth": [3, 6, 9], "n_estimators": [50, 100, 200]}},
    cv=folds, scoring="neg_root_mean_squared_error", refit=True,
).fit(X, y)
mlflow.set_experiment("grid_by_hand")
with mlflow.start_run():
    mlflow.log_params(search.best_params_)
    mlflow.log_metric("rmse", -search.best_score_)
    mlflow.log_metric("rmse_std", search.cv_results_["std_test_score"][search.best_index_])
    mlflow.sklearn.log_model(search.best_estimator_, name="model",
                             pip_requirements=["scikit-learn", "mlflow"],
                             skops_trusted_types=["sklearn.tree._tree.Tree"])
"""
)
GRID = ["model.max_depth=3,6,9", "model.n_estimators=50,100,200"]
SEARCH = [
    "hydra/sweeper=optuna", "model.max_depth=int(interval(2,12))",
    "model.n_estimators=int(interval(20,200))", "model.min_samples_leaf=int(interval(1,40))",
]  # fmt: skip


def fits_of(client: MlflowClient, experiment: str) -> tuple[int, list[float], float]:
    """Fits a sweep's jobs made (folds run, plus a refit each finished one), and its best's
    fold scores and rmse."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    fits, best = 0, None
    for run in children:
        folds = client.get_metric_history(run.info.run_id, "rmse_fold")
        fits += len(folds) + (run.info.status == "FINISHED")
        rmse = run.data.metrics.get("rmse")
        if run.info.status == "FINISHED" and rmse is not None and (best is None or rmse < best[1]):
            best = ([m.value for m in sorted(folds, key=lambda m: m.step)], rmse)
    assert best is not None, f"no finished trial in {experiment}"
    return fits, best[0], best[1]


def folds_on_cores(rounds: int) -> tuple[float, float]:
    """Median seconds of one 5-fold run's fits and refit on this process's cores, and in turn."""
    from hydra import compose, initialize_config_module

    from sweeplab.config.schema import register_configs
    from sweeplab.model import train
    from sweeplab.run import plan

    register_configs()
    with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["split=kfold", "tracking.uri=sqlite://"])
    planned = plan.make(cfg)
    times: dict[int, list[float]] = {process.cores(): [], 1: []}
    for _ in range(rounds):
        for cores, seen in times.items():
            start = time.perf_counter()
            train.train(clone(planned.estimator), planned.split, planned.task, cores=cores)
            seen.append(time.perf_counter() - start)
    threads, in_turn = (statistics.median(t) for t in times.values())
    return threads, in_turn


def main() -> None:
    """Run the three comparisons and print each one's ratio against its target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each")
    parser.add_argument("--trials", type=int, default=30, help="trials of each search")
    parser.add_argument("--pruner", default="median", help="hydra/sweeper/pruner option")
    parser.add_argument("--skip", nargs="*", default=[], choices=["run", "grid", "search"])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))
    uri = f"sqlite:///{work}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    envs = {"sweeplab": env, "by hand": env}
    timed([str(BIN / "sweeplab"), "model.n_estimators=5"], work, env)  # the store, untimed

    if "run" not in args.skip:
        print("one 5-fold run (random forest, the tutorial's settings, 5,000 rows)")
        medians = alternate(
            {"sweeplab": [str(BIN / "sweeplab"), "split=kfold"],
             "by hand": [sys.executable, "-c", FITS_ALONE]},
            args.rounds, work, envs,
        )  # fmt: skip
        threads, in_turn = folds_on_cores(args.rounds)
        print(f"folds on {process.cores()} cores {threads:.2f}s, in turn {in_turn:.2f}s: "
              f"{in_turn / threads:.2f}x faster (medians, this process)")  # fmt: skip
        ratio = medians["sweeplab"] / medians["by hand"]
        print(f"one run: sweeplab {medians['sweeplab']:.2f}s, the 5 fits and the refit alone "
              f"{medians['by hand']:.2f}s: {ratio:.2f}x (target <= 1.5x: "
              f"{'met' if ratio <= 1.5 else 'NOT met'})\n")  # fmt: skip

    if "grid" not in args.skip:
        print("3x3 grid, 5-fold, sequential")
        medians = alternate(
            {"sweeplab": [str(BIN / "sweeplab"), "-m", "split=kfold", *GRID,
                          "experiment.name=grid_sweeplab"],
             "by hand": [sys.executable, "-c", GRID_BY_HAND]},
            args.rounds, work, envs,
        )  # fmt: skip
        ratio = medians["sweeplab"] / medians["by hand"]
        verdict = "met" if ratio <= 1.3 else "NOT met"
        print(f"grid: sweeplab {medians['sweeplab']:.2f}s (9 runs logged, each refit), "
              f"GridSearchCV and its best logged by hand {medians['by hand']:.2f}s: "
              f"{ratio:.2f}x (target <= 1.3x: {verdict})\n")  # fmt: skip

    if "search" not in args.skip:
        from sweeplab.compare import ties

        print(f"{args.trials}-trial TPE search, 5-fold, hydra/sweeper/pruner={args.pruner} "
              "vs none")  # fmt: skip
        seconds = {}
        for name, pruner in (("pruned", args.pruner), ("unpruned", "none")):
            seconds[name] = timed(
                [str(BIN / "sweeplab"), "-m", "split=kfold", *SEARCH,
                 f"hydra.sweeper.n_trials={args.trials}", f"hydra/sweeper/pruner={pruner}",
                 f"experiment.name=search_{name}"],
                work, env,
            )  # fmt: skip
        client = MlflowClient(uri)
        pruned_fits, pruned_folds, pruned_best = fits_of(client, "search_pruned")
        full_fits, full_folds, full_best = fits_of(client, "search_unpruned")
        fewer = 1 - pruned_fits / full_fits
        p = ties.p_value(pruned_folds, full_folds, ties.validation_ratio("kfold", 5))
        tied = pruned_best <= full_best or p >= ties.ALPHA
        print(f"search: pruned {pruned_fits} fits in {seconds['pruned']:.1f}s, unpruned "
              f"{full_fits} fits in {seconds['unpruned']:.1f}s: {fewer:.0%} fewer fits "
              f"(target >= 40%: {'met' if fewer >= 0.4 else 'NOT met'}); best rmse "
              f"{pruned_best:.3f} vs {full_best:.3f}, paired p={p:.3f}: "
              f"{'within' if tied else 'NOT within'} the tie band")  # fmt: skip
    print(f"stores in {work}")


if __name__ == "__main__":
    main()
