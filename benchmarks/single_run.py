"""One default `sweeplab` run against the tutorial's script, as whole processes.

Both log to the same sqlite store, alternately, so machine noise hits both alike. Prints each
time, the medians and the ratio sweeplab / tutorial (target: <= 0.45).

    .venv/bin/python benchmarks/single_run.py [--rounds 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET = 0.45


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one process, which must succeed (else exit with what it printed)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def alternate(
    commands: dict[str, list[str]], rounds: int, cwd: Path, env: dict[str, str]
) -> dict[str, float]:
    """Time the commands in turn for ``rounds`` rounds, printing each; return their medians."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(1, rounds + 1):
        for name, command in commands.items():
            times[name].append(timed(command, cwd, env))
        print(f"round {round_}: " + "  ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    """Alternate the two processes and print the ratio of their medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    commands = {
        "sweeplab": [str(BIN / "sweeplab")],
        "tutorial": [sys.executable, str(ROOT / "tests" / "tutorial_lab2.py")],
    }
    # Untimed: the first process creates the schema and the experiment.
    for command in commands.values():
        timed(command, work, env)

    medians = alternate(commands, args.rounds, work, env)
    ratio = medians["sweeplab"] / medians["tutorial"]
    print(f"median: sweeplab {medians['sweeplab']:.2f}s  tutorial {medians['tutorial']:.2f}s")
    print(f"ratio sweeplab/tutorial: {ratio:.2f}x (target <= {TARGET}x: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
