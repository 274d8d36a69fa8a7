"""`sweeplab` and `python -m sweeplab`: start the tracking process, then run (sweeplab.app).

The tracking process (sweeplab.tracking.tracker) starts before this process imports anything heavy,
so that its imports (MLflow, skops) overlap these (Hydra, scikit-learn, pandas) from the start.
With SWEEPLAB_TRACKING_PROCESS=off none starts: the same functions run here (tracker.Local).
"""

import sys

from sweeplab.tracking import tracker
from sweeplab.util import env, process
from sweeplab.util.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, UserError, error_lines


def main() -> None:
    """Console entry point: run the command line, its MLflow work in a tracking process or here."""
    process.configure()
    try:
        separate = env.tracking_process()
    except UserError as e:  # before anything is composed or logged, as app.cli reports errors
        print(error_lines("sweeplab", e), file=sys.stderr)
        sys.exit(2)
    # The environment decides whether a helper exists; the command line, what it gets ready for.
    if separate and tracker.wanted(sys.argv[1:]):
        tracker.start(models=tracker.trains_here(sys.argv[1:]))
    finish = True
    try:
        from sweeplab.app import cli

        cli()
    except KeyboardInterrupt:  # before cli() handles it (importing, composing): no run yet
        finish = False
        print("\nsweeplab: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as e:
        # The runs an interrupt stopped are ended KILLED already: what the tracking process
        # still does for them (a big model's log) is not worth waiting for.
        finish = e.code not in (EXIT_INTERRUPTED, EXIT_TERMINATED)
        raise
    finally:
        tracker.stop(finish=finish)


if __name__ == "__main__":
    main()
