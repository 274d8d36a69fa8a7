"""Reliability under concurrency: many processes logging at once, counting runs lost.

1. sqlite: ``--processes`` sweeplab sweeps of ``--runs`` jobs each, all at once, against one
   sqlite store (its schema created first, as a sweep's parent does).
2. server: the same against a real `sweeplab-tools server` on 127.0.0.1, ``--server-runs``
   runs in all.

Prints, for each: runs expected, FINISHED, lost (must be 0), lock errors seen in the
processes' output, and runs per second.

    .venv/bin/python benchmarks/stress.py [--processes 4] [--runs 25] [--server-runs 200]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# The tests' helpers for real local services.
from services import free_port, start_server, stop_group

BIN = Path(sys.executable).parent
LOCK_ERRORS = re.compile(r"database is locked|OperationalError|deadlock", re.IGNORECASE)


def sweep_command(first_seed: int, runs: int, experiment: str, *extra: str) -> list[str]:
    """A sweep of ``runs`` small ridge jobs (one per seed), the fastest real runs there are."""
    return [
        str(BIN / "sweeplab"), "-m", "model=ridge", "dataset.n_rows=300",
        f"dataset.seed=range({first_seed},{first_seed + runs})",
        f"experiment.name={experiment}", *extra,
    ]  # fmt: skip


def hammer(processes: int, runs: int, work: Path, env: dict[str, str], *extra: str) -> dict:
    """Start the sweeps at once; wait; return wall time, exit codes and lock errors."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            sweep_command(i * runs, runs, "stress", *extra),
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(processes)
    ]
    outputs = [p.communicate()[0] for p in procs]
    return {
        "seconds": time.perf_counter() - start,
        "exit_codes": [p.returncode for p in procs],
        "lock_errors": sum(len(LOCK_ERRORS.findall(out)) for out in outputs),
    }


def count(client: MlflowClient) -> dict[str, int]:
    """The stress experiment's child runs by status."""
    exp = client.get_experiment_by_name("stress")
    runs = client.search_runs(
        [exp.experiment_id], "tags.`sweeplab.sweep.job` != ''", max_results=50000
    )
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.info.status] = counts.get(run.info.status, 0) + 1
    return counts


def report(name: str, expected: int, result: dict, counts: dict[str, int]) -> None:
    """One line of figures."""
    finished = counts.get("FINISHED", 0)
    print(
        f"{name}: {expected} runs expected, {finished} FINISHED, lost {expected - finished}, "
        f"other statuses { ({k: v for k, v in counts.items() if k != 'FINISHED'}) }, "
        f"lock errors {result['lock_errors']}, exit codes {result['exit_codes']}, "
        f"{result['seconds']:.1f}s ({finished / result['seconds']:.1f} runs/s)",
        flush=True,
    )


def main() -> None:
    """Run both stress tests and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=25, help="runs per process (sqlite)")
    parser.add_argument("--server-runs", type=int, default=200, help="runs in all (server)")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    work = Path(tempfile.mkdtemp(prefix="sweeplab-stress-sqlite-"))
    # The schema first, as a sweep's parent creates it before its workers start.
    subprocess.run(
        sweep_command(0, 1, "warmup"), cwd=work, env=env, check=True, capture_output=True
    )
    result = hammer(args.processes, args.runs, work, env)
    counts = count(MlflowClient(f"sqlite:///{work}/outputs/mlflow.db"))
    report(f"sqlite, {args.processes} processes", args.processes * args.runs, result, counts)

    work = Path(tempfile.mkdtemp(prefix="sweeplab-stress-server-"))
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(work, port, workers=2, env=env)
    try:
        per_process = args.server_runs // args.processes
        result = hammer(
            args.processes, per_process, work, env, "tracking=server", f"tracking.uri={uri}"
        )
        report(
            f"server, {args.processes} processes",
            args.processes * per_process, result, count(MlflowClient(uri)),
        )  # fmt: skip
    finally:
        stop_group(server)


if __name__ == "__main__":
    main()
