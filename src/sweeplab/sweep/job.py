"""One job of a multirun, inside whichever process runs it: run, record, report progress.

A job never raises: its outcome (FINISHED, FAILED, NOT_STARTED, REUSED) is written beside
Hydra's files for the job, printed as one progress line, and returned to the sweeper as the
metric (NaN when it did not finish). The sweep it belongs to is sweeplab.sweep's.
"""

import json
import math
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeplab.run.runner import Recorder, execute, exit_on_sigterm
from sweeplab.sweep.cluster import uses_ray
from sweeplab.sweep.parent import JOBS_ENV, OUTCOME_FILE, PARENT_RUN_ENV, Sweep, job_label
from sweeplab.tracking import tracker
from sweeplab.tracking.tags import ERROR_TAG, JOB_TAG, OVERRIDES_TAG, TRIAL_TAG
from sweeplab.util import env, oslock
from sweeplab.util.errors import UserError, error_summary, warn
from sweeplab.util.redact import scrub_text

if TYPE_CHECKING:
    from concurrent.futures import Future

    from hydra.core.utils import JobReturn

    from sweeplab.compare.results import JobRecord


def _record(cfg: DictConfig, parent_run_id: str | None, record: "JobRecord") -> None:
    """Leave a job's record on the parent run, for jobs the comparison finds no child run of."""
    if parent_run_id is None:
        return
    try:
        tracker.call(_log_record, str(cfg.tracking.uri), parent_run_id, record)
    except Exception as e:  # the job's own outcome is printed already
        warn(f"could not record job {record.job}: {error_summary(e)}")


def _log_record(tracking_uri: str, parent_run_id: str, record: "JobRecord") -> None:
    from sweeplab.compare.results import JOB_RECORDS
    from sweeplab.tracking.record import store_client

    store_client(tracking_uri).log_text(
        parent_run_id, record.to_json(), f"{JOB_RECORDS}/job-{record.job:05d}.json"
    )


def _in_order(recorder: Recorder | None) -> None:
    # Jobs logged in the background print when logged; let them go first, so that the
    # lines come in job order.
    if recorder is not None:
        recorder.drain()


def _write_outcome(output_dir: str, outcome: dict[str, Any]) -> None:
    # Beside Hydra's own files for the job: the sweep's summary falls back on these when
    # the tracking store is gone by the time the sweep ends.
    Path(output_dir, OUTCOME_FILE).write_text(json.dumps(outcome))


_say_lock = threading.Lock()


def _say(line: str) -> None:
    """Print ``line`` whole: one write, which Hydra's log lines and other threads cannot split."""
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _finished(sweep_dir: Path, parent: str | None, on_ray: bool) -> int | None:
    """Count this job as finished and return how many of the sweep's jobs have, or None.

    Jobs finish out of order on parallel launchers, so the count is kept in a file of the
    sweep's folder, under an OS lock: right for the jobs of one machine or shared folder.
    Ray's workers may sit on other machines, each with its own folder: no count there.
    """
    if on_ray or parent is None:
        return None
    counter = sweep_dir / f".sweeplab_finished_{parent}"
    with oslock.held(counter.with_suffix(".lock")):
        count = int(counter.read_text() or 0) + 1 if counter.exists() else 1
        counter.write_text(str(count))
    return count


def _report_job(
    output_dir: str,
    outcome: dict[str, Any],
    text: str,
    parent: str | None,
    total: str | None,
    on_ray: bool,
    sweep: Sweep | None,
) -> None:
    """Record the job's outcome beside its files (and with its sweep) and print its line."""
    _write_outcome(output_dir, outcome)
    if sweep is not None:  # the job ran in the sweep's own process
        sweep.outcomes[int(outcome["job"])] = outcome
    count = _finished(Path(output_dir).parent, parent, on_ray)
    done = f"[{count}/{total}] " if count and total else f"[{count}] " if count else ""
    _say(f"{done}#{outcome['job']} {text}")


def run_job(cfg: DictConfig, sweep: Sweep | None = None) -> float:
    """Run one job of a multirun: record a failure instead of raising; return its metric.

    ``sweep``: the sweep, when the job runs in its process (sweeplab's basic launcher); a job
    elsewhere finds its parent run in Hydra's ``env_set``.
    """
    from sweeplab.compare.results import NOT_STARTED, JobRecord

    hydra = HydraConfig.get()
    parent = hydra.job.env_set.get(PARENT_RUN_ENV)
    total = hydra.job.env_set.get(JOBS_ENV)
    overrides = list(hydra.overrides.task)
    shown = [scrub_text(o) for o in overrides]
    num = int(hydra.job.num)
    label = job_label(cfg, shown)
    outcome: dict[str, Any] = {"job": num, "overrides": shown, "run_id": None, "error": ""}
    output_dir = str(hydra.runtime.output_dir)

    # Read now: a job logged in the background reports after Hydra has moved to the next.
    on_ray = uses_ray(hydra.launcher)

    # A count of finished jobs, then Hydra's own job number (its log's #N, the job's folder).
    def report(status: str, text: str, **fields: Any) -> None:
        outcome_now = {**outcome, "status": status, **fields}
        _report_job(output_dir, outcome_now, text, parent, total, on_ray, sweep)

    if threading.current_thread() is threading.main_thread() and not on_ray:
        # In worker processes (joblib) too, not only in the entry point's process. Ray's
        # workers are Ray's: it stops them with SIGTERM and cancels tasks with SIGINT.
        exit_on_sigterm()
    recorder = sweep.recorder if sweep is not None else None
    tags = {JOB_TAG: str(num), OVERRIDES_TAG: " ".join(shown)}
    if (trial := hydra.job.env_set.get(env.OPTUNA_TRIAL.name)) is not None:
        tags[TRIAL_TAG] = str(trial)
    try:
        result = execute(
            cfg,
            overrides,
            parent_run_id=parent,
            extra_tags=tags,
            # MLflow loads the model again and predicts on an input example to check it
            # (~70 ms a model); in a sweep the signature alone describes the inputs.
            input_example=False,
            recorder=recorder,
        )
    except UserError as e:  # refused before any run was created
        _in_order(recorder)
        report(NOT_STARTED, f"{label} -> not run: {e}", error=str(e))
        _record(cfg, parent, JobRecord(num, shown, NOT_STARTED, error=str(e)))
        # Optimising sweepers (Optuna) count a NaN result as a failed trial.
        return math.nan
    except Exception as e:  # the run is FAILED with its traceback logged; go on to the next
        _in_order(recorder)
        run_id = getattr(e, "run_id", None)
        report("FAILED", f"{label} -> FAILED: {error_summary(e)}", run_id=run_id,
               error=error_summary(e))  # fmt: skip
        return math.nan
    if result.reused:
        _record(cfg, parent, JobRecord(num, shown, "REUSED", run_id=result.run_id))
    value = result.metrics.get(result.metric, math.nan)
    reused = f" (reused run {result.run_id})" if result.reused else ""
    status = "REUSED" if result.reused else "FINISHED"

    # Printed once the run is logged (by the background recorder, if any), so the line is true.
    def logged(future: "Future[None] | None") -> None:
        error = None if future is None or future.cancelled() else future.exception()
        if error is None:
            report(status, f"{label} -> {result.metric} {value:.6g}{reused}",
                   run_id=result.run_id, value=value)  # fmt: skip
        else:
            report("FAILED", f"{label} -> FAILED: {error_summary(error)}",
                   run_id=result.run_id, error=error_summary(error))  # fmt: skip

    if result.logged is None or recorder is None:
        _in_order(recorder)
        logged(result.logged)
    else:
        # After the run is logged, on the recorder's thread: drain() waits for the line too.
        recorder.then(result.logged, logged)
    return value


def running_jobs(sweep: Sweep | None, jobs: list[int]) -> set[int]:
    """Which of the sweep's ``jobs`` have a RUNNING run (one store query)."""
    if sweep is None:
        return set()
    running = tracker.call(
        _running_numbers, sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id
    )
    return running & set(jobs)


def _running_numbers(tracking_uri: str, experiment_id: str, parent_run_id: str) -> set[int]:
    """The job numbers of a sweep's RUNNING children."""
    from sweeplab.compare.results import running_children
    from sweeplab.tracking.record import store_client

    runs = running_children(store_client(tracking_uri), experiment_id, parent_run_id)
    return {int(n) for run in runs if (n := run.data.tags.get(JOB_TAG, "")).isdigit()}


def recorded_outcome(output_dir: Path, since: float) -> dict[str, Any] | None:
    """The outcome a job wrote in ``output_dir`` after ``since`` (a time.time()), if any."""
    path = output_dir / OUTCOME_FILE
    try:
        if path.stat().st_mtime >= since:
            return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    return None


def lost(sweep: Sweep | None, cfg: DictConfig, overrides: list[str], why: str) -> "JobReturn":
    """Record a job of ``sweep`` whose worker process died under it as FAILED, with ``why``.

    Called in the sweep's process by the launcher that saw the worker die, with the job's
    composed config (hydra.job.num set); ``sweep`` is None for another app's job (no parent
    run to tell). The job's run, if it had created one, was left
    RUNNING; it ends FAILED with ``why`` as its error, and the job's line and outcome file
    say so as for any failed job.
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
    output_dir = output_dir_of(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    outcome = {"job": num, "overrides": shown, "run_id": run_id, "error": why, "status": "FAILED"}
    total = os.environ.get(JOBS_ENV)  # the sweep's start set it for its jobs
    _report_job(
        str(output_dir),
        outcome,
        f"{job_label(cfg, shown)} -> FAILED: {why}",
        parent,
        total,
        uses_ray(cfg.hydra.launcher),
        sweep,
    )
    return returned(cfg, overrides, math.nan)


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


def returned(cfg: DictConfig, overrides: list[str], value: float) -> "JobReturn":
    """The JobReturn of a job whose worker could not send its own, as sweepers read them."""
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir_of(cfg))
    ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=cfg, status=JobStatus.COMPLETED)
    ret.return_value = value
    return ret
