"""What sweeplab tells the user: errors they can fix, failed runs, and warnings."""

import sys

from sweeplab.util.redact import scrub_text

# Tags a run that raised carries; MLflow keeps tag values up to 8,000 characters.
TRACEBACK_ARTIFACT = "error/traceback.txt"
_MAX_ERROR_CHARS = 2000


class UserError(Exception):
    """A problem the user can fix from its message alone (bad config, unreachable store)."""


class TrackingError(UserError):
    """The tracking store cannot be used; the message says why and what to do."""


class RunFailed(Exception):
    """Training or logging raised; the run is FAILED with the error and traceback logged."""

    def __init__(self, run_id: str, error: BaseException) -> None:
        self.run_id, self.error = run_id, error
        super().__init__(error_summary(error))

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in the tracking process (sweeplab.tracking.tracker) and sent back pickled.
        return (type(self), (self.run_id, self.error))


class RunPruned(Exception):
    """An Optuna pruner stopped the run between folds; it ended with the folds it finished."""

    def __init__(self, run_id: str, done: int, total: int) -> None:
        self.run_id, self.done, self.total = run_id, done, total
        super().__init__(f"pruned after {done} of {total} folds")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.run_id, self.done, self.total))


# How sweeplab exits on Ctrl-C, and on SIGTERM (sweeplab.run.runner.exit_on_sigterm raises
# SystemExit(143)): the shell's 128 + the signal's number.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def interruption(error: BaseException) -> str | None:
    """What ``error`` says when it is Ctrl-C or SIGTERM stopping the process; else None."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, SystemExit) and error.code == EXIT_TERMINATED:
        return "terminated (SIGTERM)"
    return None


def error_summary(error: BaseException) -> str:
    """The exception as one bounded line: its type and the first line of its message."""
    if isinstance(error, RunFailed):
        return str(error)
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return scrub_text(text[:_MAX_ERROR_CHARS])


def install_extra(extra: str) -> str:
    """How to install one of sweeplab's extras, as installed from a package or as a checkout."""
    return f"pip install 'sweeplab[{extra}]' (in sweeplab's checkout: make install EXTRAS={extra})"


def warn(message: str) -> None:
    """Print ``sweeplab: warning: <message>`` on stderr."""
    print(f"sweeplab: warning: {message}", file=sys.stderr, flush=True)


def error_lines(program: str, error: BaseException) -> str:
    """``program: error: <line>`` for each line of ``error`` (several problems found at once)."""
    return "\n".join(f"{program}: error: {line}" for line in str(error).splitlines() or [""])
