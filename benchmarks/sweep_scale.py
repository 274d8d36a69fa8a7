"""A big ridge sweep against a hand-written MLflow loop that logs the same runs: the per-job cost.

In the same run, alternately, each a whole process on its own fresh sqlite store:
- the baseline: one Python process that builds the apple data once and logs N nested runs
  under a parent, each with the ridge's params, the four metrics and the skops model with its
  signature (`serialization_format="skops"`, explicit `pip_requirements`), as a user would
  write it by hand;
- `sweeplab -m model=ridge 'model.alpha=range(1,N+1)'` with the basic launcher (or, with
  `--launcher joblib`, 2 joblib workers), which also logs the datasets, config artifacts, tags
  and the comparison;
- the same sweep with SWEEPLAB_TRACKING_PROCESS=off: no tracking process, every run logged
  from sweeplab's own process (the same code, through tracker.Local).

Prints wall seconds, seconds until the first job started (Hydra made its folder) and until its
progress line (it is trained and logged), peak RSS, ms a job, the ratio to the loop (issue
14's bars: <= 1.5x at 100 jobs; the first job within 5 s) and what the tracking process saves
(tracking process / in-process).

    .venv/bin/python benchmarks/sweep_scale.py [--jobs 100] [--rounds 1] [--launcher joblib]
        [--server]

With ``--server`` both log to a fresh `sweeplab-tools server` on a free loopback port (sqlite
behind it, one worker) instead of a sqlite file.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from mlflow import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# The tests' helpers for real local services.
from services import free_port, start_server, stop_group

BIN = Path(sys.executable).parent
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
# What each sweeplab variant sets SWEEPLAB_TRACKING_PROCESS to (always set: a value in the
# caller's environment must not decide the default's).
SWITCH = {"sweeplab": "on", "in-process": "off"}

# The baseline, run as its own process: what a careful hand-written loop logs per run.
LOOP = textwrap.dedent(
    """
    import sys

    import mlflow
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split

    from sweeplab.data.apple_sales import NOT_FEATURES, TARGET, apple_sales

    jobs = int(sys.argv[1])
    mlflow.set_tracking_uri(sys.argv[2])
    mlflow.set_experiment("hand_loop")
    frame = apple_sales(n_rows=5000, base_demand=1000, seed=9999, end_date="2023-11-01")
    X = frame.drop(columns=[TARGET, *NOT_FEATURES])
    y = frame[TARGET]
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=42)
    requirements = mlflow.sklearn.get_default_pip_requirements(include_skops=True)
    with mlflow.start_run(run_name="hand loop"):
        for alpha in range(1, jobs + 1):
            with mlflow.start_run(run_name=f"alpha={alpha}", nested=True):
                model = Ridge(alpha=float(alpha)).fit(X_train, y_train)
                predictions = model.predict(X_val)
                mlflow.log_params(model.get_params())
                mse = mean_squared_error(y_val, predictions)
                mlflow.log_metrics({
                    "mae": mean_absolute_error(y_val, predictions), "mse": mse,
                    "rmse": float(np.sqrt(mse)), "r2": r2_score(y_val, predictions),
                })
                mlflow.sklearn.log_model(
                    model, name="model", serialization_format="skops",
                    signature=infer_signature(X_val.head(5), predictions[:5]),
                    pip_requirements=requirements,
                )
    print("first job done", flush=True)
    """
)


def timed(command: list[str], cwd: Path, env: dict[str, str], first_line: str) -> dict[str, float]:
    """Wall seconds, seconds until the first job started and until a stdout line starts with
    ``first_line``, and peak RSS (MB).

    A job has started when Hydra has made its folder (``outputs/multirun/<day>/<time>/0``),
    before it composes, trains and logs. The peak is wait4's: the largest of the process and
    the workers it waited for.
    """
    start = time.perf_counter()
    first = started = float("nan")
    # stderr to a file: read only at the end, a pipe would fill with warnings and stall it.
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed below, after its read)
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=errors, text=True)  # fmt: skip
    assert process.stdout is not None

    def watch() -> None:
        nonlocal started
        while process.poll() is None:
            if next(cwd.glob("outputs/multirun/*/*/0"), None) is not None:
                started = time.perf_counter() - start
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for line in process.stdout:
        if first != first and line.startswith(first_line):
            first = time.perf_counter() - start
    errors.seek(0)
    stderr = errors.read()
    errors.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    watcher.join()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return {"wall": wall, "first": first, "started": started, "peak_mb": usage.ru_maxrss / 1024}


def children_of(uri: str, experiment: str) -> int:
    """How many FINISHED nested runs with a model the experiment has (parents aside: a
    sweep's parent carries its best job's model too)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'",
                              max_results=50000)  # fmt: skip
    nested = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return sum(bool(r.outputs and r.outputs.model_outputs) for r in nested)


def main() -> None:
    """Alternate the loop and the two sweeps; print medians, per-job costs and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="timed pairs")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="basic")
    parser.add_argument("--server", action="store_true", help="log to a tracking server")
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {"loop": [], "sweeplab": [], "in-process": []}
    for round_ in range(1, args.rounds + 1):
        for name in results:
            work = Path(tempfile.mkdtemp(prefix="sweeplab-scale-"))
            server = None
            if args.server:  # started untimed; it migrates its store's schema
                port = free_port()
                server = start_server(work, port)
                uri = f"http://127.0.0.1:{port}"
            else:
                uri = f"sqlite:///{work}/mlflow.db"
            env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
            if name in SWITCH:
                env["SWEEPLAB_TRACKING_PROCESS"] = SWITCH[name]
            # Untimed: the store's schema, so both start from a migrated file.
            MlflowClient(uri).search_experiments()
            if name == "loop":
                command = [sys.executable, "-c", LOOP, str(args.jobs), uri]
                got = timed(command, work, env, "first job done")
                got["first"] = float("nan")  # the loop has no progress lines
                experiment = "hand_loop"
            else:
                alphas = f"model.alpha=range(1,{args.jobs + 1})"
                command = [str(BIN / "sweeplab"), "-m", "model=ridge", alphas,
                           "experiment.name=scale", *LAUNCHERS[args.launcher]]  # fmt: skip
                if args.server:
                    command += ["tracking=server", f"tracking.uri={uri}"]
                got = timed(command, work, env, "[1/")
                experiment = "scale"
            try:
                logged = children_of(uri, experiment)
            finally:
                if server is not None:
                    stop_group(server)
            assert logged == args.jobs, f"{name}: {logged} of {args.jobs} runs logged a model"
            results[name].append(got)
            after = (
                ""
                if name == "loop"
                else (
                    f", first job started after {got['started']:.1f} s, its line after "
                    f"{got['first']:.1f} s"
                )
            )
            print(f"round {round_} {name:>10}: {got['wall']:.1f} s{after}, "
                  f"peak RSS {got['peak_mb']:.0f} MB", flush=True)  # fmt: skip
    # Each variant's median of each measure.
    med = {name: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
           for name, rounds in results.items()}  # fmt: skip
    loop, ours, local = (med[name]["wall"] for name in ("loop", "sweeplab", "in-process"))
    store = "a tracking server" if args.server else "sqlite"
    sweep = med["sweeplab"]
    print(
        f"{args.jobs} jobs ({args.launcher} launcher, {store}, "
        f"peak RSS {sweep['peak_mb']:.0f} MB): "
        f"hand loop {loop:.1f} s ({loop / args.jobs * 1000:.0f} ms a run), "
        f"sweeplab {ours:.1f} s ({ours / args.jobs * 1000:.0f} ms a job) = {ours / loop:.2f}x "
        f"the loop (bar <= 1.5x); sweeplab's first job started after {sweep['started']:.1f} s "
        f"(bar: within 5 s), its progress line after {sweep['first']:.1f} s"
    )
    here = med["in-process"]
    print(
        f"in-process (SWEEPLAB_TRACKING_PROCESS=off, peak RSS {here['peak_mb']:.0f} MB): "
        f"{local:.1f} s ({local / args.jobs * 1000:.0f} ms a job) = {local / loop:.2f}x the "
        f"loop; its first job started after {here['started']:.1f} s, its progress line after "
        f"{here['first']:.1f} s; tracking process / in-process = {ours / local:.2f}x (below 1: "
        "the tracking process saves time)"
    )


if __name__ == "__main__":
    main()
