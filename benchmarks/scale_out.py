"""Scale-out figures: the Ray launcher against joblib, and a tracking server on PostgreSQL.

In one run, on this machine, each against a baseline measured the same way:

1. Server start: `sweeplab-tools server` until /health answers, on a fresh PostgreSQL database
   (its schema created by MLflow's migrations) against a fresh sqlite file; and the server's
   memory (its process tree) with MLflow's job-execution workers off (sweeplab's default) and on.
2. Runs per second that each server accepts from ``--processes`` sweeplab processes at once
   (``--runs`` runs each), and runs lost (must be 0).
3. One 8-job sweep (max_depth 2,3,4,5 x n_estimators 50,100) with the basic launcher, joblib
   (2 workers), Ray joined to a running head, and Ray starting its own instance; the eight
   fits alone as the floor. Per-job overhead = (wall time - fits alone) / 8. And the memory of
   the Ray head.

    .venv/bin/python benchmarks/scale_out.py [--rounds 2] [--processes 8] [--runs 5]

Needs PostgreSQL's server programs and `pip install -e '.[ray,postgres]'`.
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
from stress import count, hammer
from sweep_grid import fits_alone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# The tests' helpers for real local services.
from services import (
    free_port,
    session_rss_mb,
    start_postgres,
    start_ray_head,
    start_server,
    stop_group,
    tree_rss_mb,
)

BIN = Path(sys.executable).parent
GRID = {"max_depth": (2, 3, 4, 5), "n_estimators": (50, 100)}
SWEEP = [f"model.{k}={','.join(map(str, v))}" for k, v in GRID.items()]
JOBS = len(GRID["max_depth"]) * len(GRID["n_estimators"])
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "ray (joined head)": ["hydra/launcher=ray"],
    "ray (own instance)": ["hydra/launcher=ray"],
}


def timed_server(
    work: Path, env: dict[str, str], *extra: str
) -> tuple[subprocess.Popen, str, float]:
    """`sweeplab-tools server` on a free port; (process, URI, seconds until /health answered)."""
    port = free_port()
    start = time.perf_counter()
    server = start_server(work, port, *extra, workers=2, env=env)
    return server, f"http://127.0.0.1:{port}", time.perf_counter() - start


def servers(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Start time, memory and runs/s of a PostgreSQL-backed server against a sqlite-backed one."""
    postgres = start_postgres()
    try:
        results = {}
        for name in ("sqlite", "postgresql"):
            work = Path(tempfile.mkdtemp(prefix=f"sweeplab-scale-{name}-"))
            store = ["--backend-store-uri", postgres.uri] if name == "postgresql" else []
            store += ["--artifacts-destination", str(work / "artifacts")]
            server, uri, seconds = timed_server(work, env, *store)
            try:
                idle = tree_rss_mb(server.pid)
                result = hammer(
                    args.processes, args.runs, work, env, "tracking=server", f"tracking.uri={uri}"
                )
                counts = count(MlflowClient(uri))
                busy = tree_rss_mb(server.pid)
            finally:
                stop_group(server)
            finished = counts.get("FINISHED", 0)
            expected = args.processes * args.runs
            results[name] = finished / result["seconds"]
            print(
                f"server on {name}: up in {seconds:.1f}s, {idle:.0f} MB idle, {busy:.0f} MB after "
                f"load; {args.processes} processes x {args.runs} runs: {finished}/{expected} "
                f"FINISHED, lost {expected - finished}, exit codes {set(result['exit_codes'])}, "
                f"{result['seconds']:.1f}s = {results[name]:.2f} runs/s",
                flush=True,
            )
        print(f"runs/s, postgresql / sqlite: {results['postgresql'] / results['sqlite']:.2f}x")

        # MLflow's own default: job-execution workers on (for GenAI scorers), on a new database.
        fresh = start_postgres("mlflow_jobs")
        work = Path(tempfile.mkdtemp(prefix="sweeplab-scale-jobs-"))
        jobs_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
        try:
            server, _, seconds = timed_server(
                work, jobs_env, "--backend-store-uri", fresh.uri,
                "--artifacts-destination", str(work / "artifacts"),
            )  # fmt: skip
            time.sleep(5)  # its job workers start after /health answers
            with_jobs = tree_rss_mb(server.pid)
            stop_group(server)
            print(f"server on postgresql with job execution on: up in {seconds:.1f}s, "
                  f"{with_jobs:.0f} MB idle")  # fmt: skip
        finally:
            fresh.stop()
    finally:
        postgres.stop()


def launchers(args: argparse.Namespace, env: dict[str, str]) -> None:
    """The 8-job sweep with each launcher, alternately; medians and per-job overhead."""
    work = Path(tempfile.mkdtemp(prefix="sweeplab-scale-launchers-"))
    env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    subprocess.run(  # the schema first; warms the disk cache
        [str(BIN / "sweeplab"), "-m", "model.n_estimators=5", "experiment.name=warmup"],
        cwd=work, env=env, check=True, capture_output=True,
    )  # fmt: skip
    fits_alone(args.rows, GRID)
    head = start_ray_head(num_cpus=2, cwd=work)
    try:
        head_idle = session_rss_mb(head.process.pid)
        joined = {**env, "RAY_ADDRESS": head.address, **head.env}
        fits: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
        for round_ in range(1, args.rounds + 1):
            fits.append(fits_alone(args.rows, GRID))
            for name, extra in LAUNCHERS.items():
                experiment = f"experiment.name=launch_{name.split()[0]}"
                command = [str(BIN / "sweeplab"), "-m", *SWEEP, *extra, experiment]
                command.append(f"dataset.n_rows={args.rows}")
                times[name].append(timed(command, work, joined if "joined" in name else env))
            shown = "  ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items())
            print(f"round {round_}: fits alone {fits[-1]:.2f}s  {shown}", flush=True)
        head_busy = session_rss_mb(head.process.pid)
    finally:
        head.stop()
    base = statistics.median(fits)
    print(f"median fits alone: {base:.2f}s ({JOBS} models, {args.rows} rows)")
    basic = statistics.median(times["basic"])
    for name, t in times.items():
        wall = statistics.median(t)
        print(
            f"{name:>18}: median {wall:.2f}s = {wall / base:.2f}x the fits, {wall / basic:.2f}x "
            f"basic; overhead {(wall - base) / JOBS:.2f}s per job"
        )
    print(f"Ray head (`ray start --head`, no dashboard): {head_idle:.0f} MB idle, "
          f"{head_busy:.0f} MB after the sweeps (its workers included)")  # fmt: skip


def main() -> None:
    """Measure the servers, then the launchers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed sweeps per launcher")
    parser.add_argument("--rows", type=int, default=5000, help="dataset.n_rows")
    parser.add_argument("--processes", type=int, default=8, help="processes logging at once")
    parser.add_argument("--runs", type=int, default=5, help="runs per process")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    servers(args, env)
    launchers(args, env)


if __name__ == "__main__":
    main()
