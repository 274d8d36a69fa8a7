"""One default `sweeplab` run against the tutorial's script, as whole processes.

All log to the same sqlite store, alternately, so machine noise hits them alike: `sweeplab`
with its tracking process (the default), `sweeplab` logging from its own process
(SWEEPLAB_TRACKING_PROCESS=off) and the tutorial's script. Prints each time, the medians, the
ratio sweeplab / tutorial (target: <= 0.45) and what the tracking process saves: tracking
process / in-process.

    .venv/bin/python benchmarks/single_run.py [--rounds 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    commands: dict[str, list[str]],
    rounds: int,
    cwd: Path,
    envs: dict[str, dict[str, str]],
    timer: Callable[[list[str], Path, dict[str, str]], float] = timed,
) -> dict[str, float]:
    """Time the commands in turn for ``rounds`` rounds, printing each; return their medians.

    ``timer`` takes one measurement of a command: by default, until its process ends.
    """
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(1, rounds + 1):
        for name, command in commands.items():
            times[name].append(timer(command, cwd, envs[name]))
        print(f"round {round_}: " + "  ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    """Alternate the three processes and print the ratios of their medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    # Set either way: a value in the caller's environment must not decide the default's.
    envs = {
        "sweeplab": {**env, "SWEEPLAB_TRACKING_PROCESS": "on"},
        "sweeplab in-process": {**env, "SWEEPLAB_TRACKING_PROCESS": "off"},
        "tutorial": env,
    }
    commands = {
        "sweeplab": [str(BIN / "sweeplab")],
        "sweeplab in-process": [str(BIN / "sweeplab")],
        "tutorial": [sys.executable, str(ROOT / "tests" / "tutorial_lab2.py")],
    }
    # Untimed: the first process creates the schema and the experiment.
    for name, command in commands.items():
        timed(command, work, envs[name])

    medians = alternate(commands, args.rounds, work, envs)
    ours, local, tutorial = (medians[n] for n in commands)
    print(f"median: sweeplab {ours:.2f}s  sweeplab in-process {local:.2f}s  "
          f"tutorial {tutorial:.2f}s")  # fmt: skip
    ratio = ours / tutorial
    print(f"ratio sweeplab/tutorial: {ratio:.2f}x (target <= {TARGET}x: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")  # fmt: skip
    print(f"ratio sweeplab in-process/tutorial: {local / tutorial:.2f}x")
    print(
        f"ratio tracking process/in-process: {ours / local:.2f}x (below 1: the tracking "
        "process saves time)"
    )


if __name__ == "__main__":
    main()
