"""How long `sweeplab-tools server` takes to answer, against MLflow's own `mlflow server`.

Both serve the same migrated sqlite store with one worker; each is timed from its start until
/health answers, alternated round by round (this machine drifts within minutes). sweeplab's
command does more than MLflow's (the port check, the store migrated under sweeplab's lock), so
its ratio is the cost of that: 1.0x would be none at all.

    .venv/bin/python benchmarks/server_start.py [--rounds 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from single_run import alternate  # benchmarks/ is on sys.path when a script here runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# The tests' helpers for real local services.
from services import free_port, stop_group, wait_until_healthy

BIN = Path(sys.executable).parent


def started(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds from starting ``command`` until its server on ``--port`` answers /health."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    begun = time.perf_counter()
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--workers", "1"],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server, 120, log)
        return time.perf_counter() - begun
    finally:
        stop_group(server)


def main() -> None:
    """Print each command's start time round by round, their medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # As sweeplab-tools does by default: MLflow's GenAI job workers would start with it.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        store = work / "outputs" / "mlflow.db"
        # Made and migrated once, by the first start; every timed start finds it so.
        started([str(BIN / "sweeplab-tools"), "server"], work, env)
        commands = {
            "sweeplab-tools server": [str(BIN / "sweeplab-tools"), "server"],
            "mlflow server": [
                str(BIN / "mlflow"), "server", "--host", "127.0.0.1",
                "--backend-store-uri", f"sqlite:///{store}",
                "--artifacts-destination", str(work / "outputs" / "artifacts"),
            ],
        }  # fmt: skip
        medians = alternate(commands, args.rounds, work, dict.fromkeys(commands, env), started)
    ours, theirs = medians["sweeplab-tools server"], medians["mlflow server"]
    print(f"median: sweeplab-tools server {ours:.1f}s  mlflow server {theirs:.1f}s")
    print(f"sweeplab-tools server / mlflow server: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
