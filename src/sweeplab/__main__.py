"""`sweeplab` and `python -m sweeplab`: start the tracking process, then run (sweeplab.run).

The tracking process (sweeplab.tracker) starts before this process imports anything heavy,
so that its imports (MLflow, skops) overlap these (Hydra, scikit-learn, pandas) from the start.
"""

import sys

from sweeplab import tracker


def main() -> None:
    """Console entry point: run the command line, its MLflow work in the tracking process."""
    if tracker.wanted(sys.argv[1:]):
        tracker.start(models=tracker.trains_here(sys.argv[1:]))
    try:
        from sweeplab.run import cli

        cli()
    finally:
        tracker.stop()


if __name__ == "__main__":
    main()
