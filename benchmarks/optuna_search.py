"""hydra/sweeper=optuna: what a trial costs over a grid job, and what TPE finds in 30 trials.

1. Overhead, in the same run: 20 ridge jobs (fits take milliseconds) as a grid
   (`model.alpha=range(1,21)`) and as 20 Optuna trials (`model.alpha=interval(1,20)`, TPE),
   whole `sweeplab -m` processes with the basic launcher, alternately; prints the medians and
   the Optuna sweeper's cost per trial over a grid job's.
2. Search quality on the apple data over max_depth, n_estimators and min_samples_leaf: the best
   rmse of 30 TPE trials and of 30 random trials, three sampler seeds each, against the best of
   a 4x4x3 grid over the same ranges (one grid: it has no seed). Lower is better.

    .venv/bin/python benchmarks/optuna_search.py [--rounds 3] [--trials 30] [--seeds 1 2 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow import MlflowClient
from single_run import timed  # benchmarks/ is on sys.path when a script here runs

BIN = Path(sys.executable).parent
JOBS = 20
OVERHEAD = {
    "grid": ["model=ridge", f"model.alpha=range(1,{JOBS + 1})"],
    "optuna": [
        "model=ridge",
        "hydra/sweeper=optuna",
        f"hydra.sweeper.n_trials={JOBS}",
        f"model.alpha=interval(1,{JOBS})",
    ],
}
# The ranges the samplers search, and the 4x4x3 grid over the same ranges.
SPACE = [
    "model.max_depth=int(interval(2,12))",
    "model.n_estimators=int(interval(10,200))",
    "model.min_samples_leaf=int(interval(1,20))",
]
GRID = ["model.max_depth=3,6,9,12", "model.n_estimators=25,50,100,200",
        "model.min_samples_leaf=1,5,20"]  # fmt: skip


def best_of(client: MlflowClient, experiment: str) -> tuple[float, int]:
    """The sweep's best rmse and how many of its jobs FINISHED (or were reused)."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    finished = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
                and r.info.status == "FINISHED"]  # fmt: skip
    return parent.data.metrics["best_rmse"], len(finished)


def overhead(work: Path, env: dict[str, str], rounds: int, client: MlflowClient) -> None:
    """Time grid and Optuna sweeps of JOBS ridge jobs alternately; print the per-trial cost."""
    times: dict[str, list[float]] = {name: [] for name in OVERHEAD}
    for round_ in range(1, rounds + 1):
        for name, args in OVERHEAD.items():
            experiment = f"overhead_{name}_{round_}"
            command = [str(BIN / "sweeplab"), "-m", *args, f"experiment.name={experiment}"]
            times[name].append(timed(command, work, env))
            _, finished = best_of(client, experiment)
            assert finished == JOBS, f"{experiment}: {finished} of {JOBS} jobs finished"
        print(f"round {round_}: " + "  ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()),
              flush=True)  # fmt: skip
    grid, optuna = (statistics.median(times[n]) for n in OVERHEAD)
    print(
        f"overhead: {JOBS} jobs, median grid {grid:.2f}s ({grid / JOBS * 1000:.0f} ms a job), "
        f"optuna {optuna:.2f}s ({optuna / JOBS * 1000:.0f} ms a trial) = {optuna / grid:.2f}x "
        f"the grid; {(optuna - grid) / JOBS * 1000:+.0f} ms a trial over a grid job"
    )


def quality(work: Path, env: dict[str, str], trials: int, seeds: list[int],
            client: MlflowClient) -> None:  # fmt: skip
    """Best rmse of TPE and random search (per seed) and of the 4x4x3 grid."""
    command = [str(BIN / "sweeplab"), "-m"]
    subprocess.run([*command, *GRID, "experiment.name=quality_grid"], cwd=work, env=env,
                   check=True, capture_output=True)  # fmt: skip
    grid_best, grid_jobs = best_of(client, "quality_grid")
    found: dict[str, list[float]] = {"tpe": [], "random": []}
    for seed in seeds:
        for sampler in found:
            experiment = f"quality_{sampler}_{seed}"
            args = ["hydra/sweeper=optuna", f"hydra/sweeper/sampler={sampler}",
                    f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweeper.n_trials={trials}",
                    *SPACE, f"experiment.name={experiment}"]  # fmt: skip
            subprocess.run([*command, *args], cwd=work, env=env, check=True, capture_output=True)
            best, finished = best_of(client, experiment)
            assert finished == trials, f"{experiment}: {finished} of {trials} trials finished"
            found[sampler].append(best)
            print(f"seed {seed} {sampler:>6}: best rmse {best:.3f} in {trials} trials", flush=True)
    print(f"grid 4x4x3: best rmse {grid_best:.3f} in {grid_jobs} jobs")
    for sampler, bests in found.items():
        shown = ", ".join(f"{b:.3f}" for b in bests)
        print(
            f"{sampler:>6}: best rmse per seed {shown}; median {statistics.median(bests):.3f} "
            f"({statistics.median(bests) - grid_best:+.3f} vs the grid's best, "
            f"{trials} trials vs {grid_jobs} jobs)"
        )


def main() -> None:
    """Measure the overhead, then the search quality."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed sweeps of each kind")
    parser.add_argument("--trials", type=int, default=30, help="trials per TPE/random search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--skip-quality", action="store_true", help="only the overhead")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))
    uri = f"sqlite:///{work}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    # Untimed: a small sweep of each kind creates the stores' schemas.
    warmups = [["model=ridge", "model.alpha=1,2"],
               ["model=ridge", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                "model.alpha=interval(1,2)"]]  # fmt: skip
    for warmup in warmups:
        subprocess.run([str(BIN / "sweeplab"), "-m", *warmup, "experiment.name=warmup"],
                       cwd=work, env=env, check=True, capture_output=True)  # fmt: skip
    client = MlflowClient(uri)
    overhead(work, env, args.rounds, client)
    if not args.skip_quality:
        quality(work, env, args.trials, args.seeds, client)


if __name__ == "__main__":
    main()
