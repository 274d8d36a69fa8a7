"""One job of a multirun, inside whichever process runs it: run, record, hand back.

A job never raises. Its run is the record of how it went (a job without one, refused or
reused, leaves a record on the parent run instead); its outcome (FINISHED, FAILED,
NOT_STARTED, REUSED, with the metric) is handed back once, as its task function's return,
to the sweep, which prints its progress line (sweeplab.sweep.parent.Sweep.said).
"""

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeplab.run.runner import Recorder, execute, exit_on_sigterm, scored
from sweeplab.sweep import optuna_search
from sweeplab.sweep.cluster import uses_ray
from sweeplab.sweep.parent import (
    PARENT_RUN_ENV,
    Outcome,
    Sweep,
    job_label,
    jobs_at_once,
    say,
)
from sweeplab.tracking import tracker
from sweeplab.tracking.places import require_answer
from sweeplab.tracking.tags import ERROR_TAG, JOB_TAG, OVERRIDES_TAG, TRIAL_TAG
from sweeplab.util import env, process
from sweeplab.util.errors import RunPruned, UserError, error_summary, warn
from sweeplab.util.redact import scrub_text

if TYPE_CHECKING:
    from concurrent.futures import Future

    from hydra.core.utils import JobReturn
    from mlflow.entities import Run

    from sweeplab.compare.results import JobRecord


def _record(cfg: DictConfig, parent_run_id: str | None, record: "JobRecord") -> None:
    """Leave a job's record on the parent run, for jobs the comparison finds no child run of."""
    if parent_run_id is None:
        return
    try:
        tracker.call(_log_record, str(cfg.tracking.uri), parent_run_id, record)
    except Exception as e:  # the job's outcome still goes back to the sweep
        warn(f"could not record job {record.job}: {error_summary(e)}")


def _log_record(tracking_uri: str, parent_run_id: str, record: "JobRecord") -> None:
    from sweeplab.compare.results import JOB_RECORDS
    from sweeplab.tracking.record import store_client

    require_answer(tracking_uri)  # seconds sooner than MLflow's retries
    store_client(tracking_uri).log_text(
        parent_run_id, record.to_json(), f"{JOB_RECORDS}/job-{record.job:05d}.json"
    )


def _in_order(recorder: Recorder | None) -> None:
    # Jobs logged in the background print when logged; let them go first, so that the
    # lines come in job order.
    if recorder is not None:
        recorder.drain()


def _scored(
    label: str, metric: str, value: float, note: str = "", spread: float | None = None
) -> str:
    """A finished job's line: what it trained, then its metric (± its spread over folds)."""
    return f"{label} -> {metric} {scored(value, spread, 6)}{note}"


def _hand_back(outcome: Outcome, parent: str | None, sweep: Sweep | None) -> Outcome:
    """Give the job's outcome to its sweep, which prints its line; or print it here.

    A job that ran in the sweep's process tells the sweep itself; one that ran elsewhere
    (a worker) is told by the launcher that gets its return; a job of no sweep says it.
    """
    if sweep is not None:
        sweep.said(outcome)
    elif parent is None:
        say(f"#{outcome.job} {outcome.text}")
    return outcome


def run_job(cfg: DictConfig, sweep: Sweep | None = None) -> Outcome:
    """Run one job of a multirun: record a failure instead of raising; return its outcome.

    ``sweep``: the sweep, when the job runs in its process (sweeplab's basic launcher); a job
    elsewhere finds its parent run in Hydra's ``env_set``. The outcome's ``value`` is the
    sweep's metric (NaN when the job did not finish), what optimising sweepers read.
    """
    from sweeplab.compare.results import NOT_STARTED, JobRecord

    hydra = HydraConfig.get()
    parent = hydra.job.env_set.get(PARENT_RUN_ENV)
    overrides = list(hydra.overrides.task)
    shown = [scrub_text(o) for o in overrides]
    num = int(hydra.job.num)
    # The same keys that name its run (run.plan), from the sweep's env_set on every launcher.
    label = job_label(cfg, shown, swept=env.swept_keys())
    outcome = Outcome(num, shown)

    if threading.current_thread() is threading.main_thread() and not uses_ray(hydra.launcher):
        # In worker processes (joblib) too, not only in the entry point's process. Ray's
        # workers are Ray's: it stops them with SIGTERM and cancels tasks with SIGINT.
        exit_on_sigterm()
    recorder = sweep.recorder if sweep is not None else None
    tags = {JOB_TAG: str(num), OVERRIDES_TAG: " ".join(shown)}
    if (trial := hydra.job.env_set.get(env.OPTUNA_TRIAL.name)) is not None:
        tags[TRIAL_TAG] = str(trial)
    try:
        report = optuna_search.fold_reporter(cfg, hydra)
        result = execute(
            cfg,
            overrides,
            parent_run_id=parent,
            extra_tags=tags,
            # MLflow loads the model again and predicts on an input example to check it
            # (~70 ms a model); in a sweep the signature alone describes the inputs.
            input_example=False,
            recorder=recorder,
            report=report,
            # Folds fit in parallel on the cores the launcher leaves this job.
            cores=max(1, process.cores() // jobs_at_once(hydra.launcher)),
        )
    except UserError as e:  # refused before any run was created
        _in_order(recorder)
        _record(cfg, parent, JobRecord(num, shown, NOT_STARTED, error=str(e)))
        # Optimising sweepers (Optuna) count a NaN result as a failed trial.
        return _hand_back(
            outcome.settle(NOT_STARTED, f"{label} -> not run: {e}", error=str(e)), parent, sweep
        )
    except RunPruned as e:  # its pruner stopped it between folds: not a failure
        _in_order(recorder)
        pruned = outcome.settle("PRUNED", f"{label} -> pruned after {e.done} of {e.total} folds",
                                run_id=e.run_id)  # fmt: skip
        return _hand_back(pruned, parent, sweep)
    except Exception as e:  # the run is FAILED with its traceback logged; go on to the next
        _in_order(recorder)
        why = error_summary(e)
        failed = outcome.settle("FAILED", f"{label} -> FAILED: {why}",
                                run_id=getattr(e, "run_id", None), error=why)  # fmt: skip
        return _hand_back(failed, parent, sweep)
    if result.reused:
        _record(cfg, parent, JobRecord(num, shown, "REUSED", run_id=result.run_id))
    value = result.metrics.get(result.metric, math.nan)
    reused = f" (reused run {result.run_id})" if result.reused else ""
    status = "REUSED" if result.reused else "FINISHED"

    # Settled once the run is logged (by the background recorder, if any), so the line is true.
    def logged(future: "Future[None] | None") -> None:
        error = None if future is None or future.cancelled() else future.exception()
        if error is None:
            spread = result.metrics.get(f"{result.metric}_std")
            outcome.settle(status, _scored(label, result.metric, value, reused, spread),
                           run_id=result.run_id, value=value)  # fmt: skip
        else:
            outcome.settle("FAILED", f"{label} -> FAILED: {error_summary(error)}",
                           run_id=result.run_id, error=error_summary(error))  # fmt: skip
        _hand_back(outcome, parent, sweep)

    if result.logged is None or recorder is None:
        _in_order(recorder)
        logged(result.logged)
    else:
        # After the run is logged, on the recorder's thread: drain() waits for the line too.
        recorder.then(result.logged, logged)
    return outcome


@dataclass(frozen=True)
class JobRuns:
    """Which of a sweep's jobs have a RUNNING run, and which a FINISHED one (run id, metric)."""

    running: set[int]
    finished: dict[int, tuple[str, float]]


def job_runs(sweep: Sweep | None, jobs: list[int]) -> JobRuns:
    """What the store holds of the sweep's ``jobs``: their RUNNING and FINISHED runs."""
    if sweep is None:
        return JobRuns(set(), {})
    found = tracker.call(
        _job_runs, sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id, sweep.metric
    )
    return JobRuns(
        found.running & set(jobs), {n: f for n, f in found.finished.items() if n in jobs}
    )


def _job_runs(tracking_uri: str, experiment_id: str, parent_run_id: str, metric: str) -> JobRuns:
    """A sweep's RUNNING and FINISHED children, by job number (two store queries)."""
    from sweeplab.compare.results import children_in
    from sweeplab.tracking.record import store_client

    client = store_client(tracking_uri)

    def numbered(status: str) -> dict[int, "Run"]:
        runs = children_in(client, experiment_id, parent_run_id, status)
        return {int(n): run for run in runs if (n := run.data.tags.get(JOB_TAG, "")).isdigit()}

    finished = {
        n: (str(run.info.run_id), run.data.metrics.get(metric, math.nan))
        for n, run in numbered("FINISHED").items()
    }
    return JobRuns(set(numbered("RUNNING")), finished)


def recovered(
    sweep: Sweep, cfg: DictConfig, overrides: list[str], run_id: str, value: float
) -> "JobReturn":
    """The JobReturn of a job whose run FINISHED but whose result was lost with its worker.

    The sweep is handed its outcome as the job would have handed it back.
    """
    shown = [scrub_text(o) for o in overrides]
    text = _scored(job_label(cfg, shown, swept=sweep.swept), sweep.metric, value)
    outcome = Outcome(int(cfg.hydra.job.num), shown, "FINISHED", text, run_id=run_id, value=value)
    sweep.said(outcome)
    return returned(cfg, overrides, outcome)


def lost(sweep: Sweep | None, cfg: DictConfig, overrides: list[str], why: str) -> "JobReturn":
    """Record a job of ``sweep`` whose worker process died under it as FAILED, with ``why``.

    Called in the sweep's process by the launcher that saw the worker die, with the job's
    composed config (hydra.job.num set); ``sweep`` is None for another app's job (no parent
    run to tell). The job's run, if it had created one, was left RUNNING; it ends FAILED
    with ``why`` as its error, and the sweep is handed the job's outcome as for any failed job.
    """
    from sweeplab.compare.results import JobRecord

    num = int(cfg.hydra.job.num)
    shown = [scrub_text(o) for o in overrides]
    parent = sweep.parent_run_id if sweep is not None else None
    run_id = None
    if sweep is not None:
        run_id = tracker.call(
            _fail_running, sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id, num, why
        )
        if run_id is None:  # it died before creating its run: the parent keeps its record
            _record(cfg, parent, JobRecord(num, shown, "FAILED", error=why))
    label = job_label(cfg, shown, swept=sweep.swept if sweep is not None else ())
    outcome = Outcome(num, shown, "FAILED", f"{label} -> FAILED: {why}",
                      run_id=run_id, error=why)  # fmt: skip
    _hand_back(outcome, parent, sweep)
    return returned(cfg, overrides, outcome)


def _fail_running(
    tracking_uri: str, experiment_id: str, parent_run_id: str, job: int, why: str
) -> str | None:
    """End job ``job``'s RUNNING run FAILED with ``why``; its id, or None if it has none."""
    from sweeplab.compare.results import running_children
    from sweeplab.tracking.record import store_client

    client = store_client(tracking_uri)
    running = running_children(client, experiment_id, parent_run_id, job=job)
    if not running:
        return None
    run_id = str(running[0].info.run_id)
    client.set_tag(run_id, ERROR_TAG, why)
    client.set_terminated(run_id, "FAILED")
    return run_id


def output_dir_of(cfg: DictConfig) -> Path:
    """The folder Hydra gives a job of a multirun (hydra.job.num set)."""
    return Path(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir))


def returned(cfg: DictConfig, overrides: list[str], outcome: Outcome) -> "JobReturn":
    """The JobReturn of a job whose worker could not send its own, as sweepers read them."""
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir_of(cfg))
    ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=cfg, status=JobStatus.COMPLETED)
    ret.return_value = outcome
    return ret
