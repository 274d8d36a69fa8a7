"""Who owns a sweep: the sweeper that runs sweeplab's jobs opens it, hands it down, and ends it.

sweeplab's sweepers (hydra_plugins.sweeplab_grid_sweeper, ..._optuna_sweeper) call ``owned``
around their launches, as Hydra's Optuna plugin builds its own ``OptunaSweeperImpl``: the parent
run exists before the first job, the launcher's jobs belong to it, and whatever stops the
sweep (its end, Ctrl-C, SIGTERM, an error) ends it, its parent run and the runs it left
RUNNING. Nothing here is kept between sweeps, and nothing is read from elsewhere.
"""

import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar, runtime_checkable

from hydra.errors import HydraException
from omegaconf import DictConfig

from sweeplab.config.preflight import describe
from sweeplab.sweep.parent import Sweep, SweepPlan, outcomes_report, start
from sweeplab.tracking import tracker
from sweeplab.tracking.places import is_server
from sweeplab.util import env
from sweeplab.util.errors import UserError, error_lines, error_summary, interruption
from sweeplab.util.redact import redact_uri

T = TypeVar("T")

# Hydra hands sweepers and launchers the function @hydra.main decorates: sweeplab's is this.
_TASK = ("sweeplab.app", "main")


def runs_sweeplab(task_function: Any) -> bool:
    """Whether Hydra's task function is sweeplab's own, whose jobs belong to a sweep.

    sweeplab's plugins also run other apps' jobs (Hydra's contract suites run them so): those
    get Hydra's behaviour, with no parent run.
    """
    names = (getattr(task_function, "__module__", None), getattr(task_function, "__name__", None))
    return names == _TASK


@runtime_checkable
class SweepLauncher(Protocol):
    """What sweeplab's launchers add to Hydra's: the sweep their jobs belong to, if any.

    A protocol, not a base class: Hydra's plugin scan imports the launchers' modules in every
    Hydra app, and those import sweeplab only once they run its jobs.
    """

    # Whether the jobs run in the sweep's own process (their runs are then logged by its
    # recorder, in the background).
    in_process: bool

    def join(self, sweep: Sweep) -> None:
        """Run the coming jobs as ``sweep``'s."""

    def leave(self) -> None:
        """The sweep is over, or stopped: let go of it and of what its jobs ran on."""


def checked(config: DictConfig, step: Callable[[], T]) -> T:
    """``step()``, a sweep's planning or start: what it refuses is one line and exit 2."""
    try:
        return step()
    except UserError as e:
        print(error_lines("sweeplab", e), file=sys.stderr)
        raise SystemExit(2) from None
    except HydraException as e:
        print(f"sweeplab: error: {describe(e, config.hydra.overrides.task)}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        traceback.print_exc()
        print("sweeplab: error: could not start the sweep (above)", file=sys.stderr)
        raise SystemExit(1) from None


@contextlib.contextmanager
def owned(config: DictConfig, launcher: Any, plan: SweepPlan) -> Iterator[Sweep]:
    """Open the planned sweep for the ``with`` block's launches, then end it, however it ends.

    At the block's end the jobs are compared, the report printed, and a sweep with failed
    jobs exits 1; an exception or an interrupt ends the parent and the runs left RUNNING
    (KILLED for Ctrl-C and SIGTERM, else FAILED) and goes on up.
    """
    joins = isinstance(launcher, SweepLauncher)
    in_process = joins and launcher.in_process
    # MLflow takes its client settings (timeouts, retries) only from the environment: the
    # config's, for this process, its tracking process and the workers it starts.
    tracker.set_environ(env.mlflow_client(config.tracking))
    sweep = checked(config, lambda: start(config, plan, in_process))
    if joins:
        launcher.join(sweep)
    try:
        try:
            yield sweep
        finally:
            if joins:
                launcher.leave()
    except BaseException as e:
        _stopped(sweep, e)
        raise
    try:
        report = sweep.finish()
    except Exception as e:  # the jobs ran; comparing them in the store failed
        _report_without_store(sweep, e)
        raise SystemExit(1) from None
    except BaseException as e:  # Ctrl-C or SIGTERM while comparing
        _stopped(sweep, e)
        raise
    print(report, flush=True)
    if sweep.failed:
        raise SystemExit(1)


def _stopped(sweep: Sweep, error: BaseException) -> None:
    """End a sweep that ``error`` stopped: KILLED for an interrupt, else FAILED."""
    if why := interruption(error):
        sweep.end("KILLED", why)
    elif isinstance(error, SystemExit):
        sweep.end("FAILED", f"the sweep stopped (exit {error.code})")
    else:
        sweep.end("FAILED", f"the sweep stopped: {type(error).__name__}: {error}")


def _store_option(sweep: Sweep) -> str:
    """The option that points `sweeplab-tools` at the sweep's store, when it is a server."""
    uri = sweep.tracking_uri
    return f" --tracking-uri {redact_uri(uri)}" if is_server(uri) else ""


def _report_without_store(sweep: Sweep, error: Exception) -> None:
    """Say what happened from the jobs' handed-back outcomes when the store cannot be read."""
    # The store is what failed, most likely; the report below matters more.
    with contextlib.suppress(Exception):
        sweep.end("FAILED", f"the comparison failed: {error_summary(error)}")
    print(
        f"sweeplab: error: the sweep's jobs ended, but the tracking store failed while "
        f"comparing them ({error_summary(error)}).\n"
        f"What each job handed back:\n{outcomes_report(sweep)}\n"
        "Jobs not FINISHED were not logged. Once the store is back, run the same command "
        "with sweep.skip_finished=true to train only those; "
        f"`sweeplab-tools mark-killed {sweep.experiment_name!r}{_store_option(sweep)}` ends "
        "runs left RUNNING "
        f"(this sweep's parent is {sweep.parent_run_id}).",
        file=sys.stderr,
    )
