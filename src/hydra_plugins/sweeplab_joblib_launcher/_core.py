"""sweeplab's joblib launcher at work: imported by its launch, never by Hydra's plugin scan.

The same jobs with the same joblib settings as Hydra's joblib launcher, through the steps of
Hydra's ``execute_job`` (with sweeplab.sweep.jobrun's ``run_job``); when the pool breaks, each job
that was running is recorded FAILED with why (sweeplab.sweep.job.lost), and a new pool takes the
jobs that had not started.
"""

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError
from omegaconf import open_dict

from sweeplab.sweep import job
from sweeplab.sweep.joblib_pool import settings_of, warmed
from sweeplab.sweep.jobrun import run_job
from sweeplab.util import hydra_internals, process

log = logging.getLogger("hydra_plugins.sweeplab_joblib_launcher.joblib_launcher")


def why_lost(error: BaseException) -> str:
    """What a job whose worker died is told, from joblib's error (which names the signal)."""
    codes = re.search(r"exit codes of the workers are \{([^}]*)\}", str(error))
    how = f"killed ({codes.group(1)})" if codes else "lost"
    return (
        f"its worker process was {how}: the kernel's out-of-memory killer is the usual cause "
        "(joblib then stops the other workers too); rerun with sweep.skip_finished=true"
    )


def launch(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
) -> Sequence[JobReturn]:
    """Run the jobs on joblib's loky workers; return one JobReturn per job, in order."""

    setup_globals()
    assert launcher.config is not None and launcher.task_function is not None
    assert launcher.hydra_context is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    settings = settings_of(launcher.joblib)
    warmed(launcher.warming)
    launcher.warming = None
    queue = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}
    # A sweeplab sweep prints each job's line as it ends, and its count: Hydra's lines, as its
    # joblib launcher prints them, only for another sweeper's jobs.
    if launcher.sweep is None:
        shown = ",".join(f"{k}={v}" for k, v in settings.items())
        log.info(f"Joblib.Parallel({shown}) is launching {len(job_overrides)} jobs")
        for idx, overrides in queue.items():
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
    singleton_state = Singleton.get_state()
    returns: dict[int, JobReturn] = {}
    while queue:
        since = time.time()
        try:
            # As they finish, so that a broken pool loses no finished job's result.
            for ret in Parallel(**settings, return_as="generator_unordered")(
                delayed(execute_job)(
                    idx, overrides, launcher.hydra_context, launcher.config, launcher.task_function,
                    singleton_state,
                )
                for idx, overrides in queue.items()
            ):  # fmt: skip
                returns[int(ret.hydra_cfg.hydra.job.num)] = ret
                if launcher.sweep is not None:  # its line, as each job ends
                    launcher.sweep.launched([ret])
        except TerminatedWorkerError as e:
            returns.update(_after_break(launcher, queue, returns, since, why_lost(e)))
        queue = {i: o for i, o in queue.items() if i not in returns}
    return [returns[i] for i in sorted(returns)]


def _after_break(
    launcher: Any,
    queue: dict[int, list[str]],
    returns: dict[int, JobReturn],
    since: float,
    why: str,
) -> dict[int, JobReturn]:
    """Results for the jobs a broken pool ended: finished, or lost with ``why``.

    A job is finished if its run ended FINISHED; lost if its run is RUNNING (a worker died
    under it), or if it had started (its folder is newer than this pool) without a run. Jobs that
    had not started are left to the next pool; one job is always settled, so that a job
    that kills its worker every time cannot loop.
    """
    waiting = [i for i in queue if i not in returns]
    runs = job.job_runs(launcher.sweep, waiting)
    settled: dict[int, JobReturn] = {}
    for idx in waiting:
        cfg = _compose(launcher, idx, queue[idx])
        folder = job.output_dir_of(cfg)
        if idx in runs.finished:  # its run FINISHED, but its result was cut off with the pool
            assert launcher.sweep is not None  # (a store to find the run in)
            settled[idx] = job.recovered(launcher.sweep, cfg, queue[idx], *runs.finished[idx])
        elif idx in runs.running or _touched_since(folder, since):
            settled[idx] = job.lost(launcher.sweep, cfg, queue[idx], why)
    if not settled and waiting:
        first = waiting[0]
        cfg = _compose(launcher, first, queue[first])
        settled[first] = job.lost(launcher.sweep, cfg, queue[first], why)
    return settled


def _compose(launcher: Any, idx: int, overrides: list[str]) -> Any:
    """The job's config, as its worker composes it."""
    assert launcher.hydra_context is not None and launcher.config is not None
    return job_config(launcher.hydra_context, launcher.config, idx, overrides)


def job_config(hydra_context: Any, config: Any, idx: int, overrides: Sequence[str]) -> Any:
    """Job ``idx``'s config, numbered as Hydra's joblib workers number it (its execute_job)."""
    cfg = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(cfg):
        cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
        cfg.hydra.job.num = idx
    return cfg


def execute_job(
    idx: int,
    overrides: Sequence[str],
    hydra_context: Any,
    config: Any,
    task_function: Any,
    singleton_state: dict[str, Any],
) -> JobReturn:
    """Hydra's execute_job (its joblib plugin's ``_core``) in a worker, doing less per job.

    Hydra's singleton state leaves the plugin registry out, so each job would search the
    installed plugins again (~13 ms a job); the worker's installed plugins do not change
    between its jobs, so it keeps them. And the job runs with sweeplab.sweep.jobrun.run_job, which
    sets Hydra's view of the job's config itself (Hydra's execute_job sets it once more first).
    """
    from hydra.core.plugins import Plugins

    process.configure()  # this worker's entry into sweeplab, before the job is composed
    found = hydra_internals.known_instance(Plugins)
    if found is not None:
        instances = {**singleton_state["instances"], Plugins: found}
        singleton_state = {**singleton_state, "instances": instances}
    setup_globals()
    Singleton.set_state(singleton_state)
    return run_job(
        hydra_context=hydra_context,
        config=job_config(hydra_context, config, idx, overrides),
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def _touched_since(folder: Path, since: float) -> bool:
    try:
        return folder.stat().st_mtime >= since
    except OSError:
        return False
