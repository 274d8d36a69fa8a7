"""``hydra/launcher=joblib``: Hydra's joblib launcher, which goes on when a worker dies.

When a joblib (loky) worker process dies, from the kernel's out-of-memory killer or any other
SIGKILL, joblib raises TerminatedWorkerError and kills the pool's other workers too: Hydra's
launcher then stops the whole sweep with a 30-line traceback, and the jobs not yet started
never run. This launcher runs the same jobs with the same joblib settings and the steps of
Hydra's ``execute_job`` (with sweeplab.jobrun's ``run_job``), and when the pool breaks,
records each job that was running as FAILED with why (sweeplab.job.lost), then starts a new
pool for the jobs that had not started.
"""

import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_joblib_launcher import _core
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as HydraJoblib
from omegaconf import open_dict

from sweeplab.jobrun import run_job

TARGET = f"{__name__}.JoblibLauncher"

log = logging.getLogger(__name__)


@dataclass
class JoblibLauncherConf(JobLibLauncherConf):  # type: ignore[misc]  # untyped plugin
    """Hydra's joblib launcher settings (n_jobs, ...), with this launcher as the target."""

    _target_: str = TARGET


def store_configs() -> None:
    """Make ``hydra/launcher=joblib`` this launcher, over Hydra's entry of that name."""
    ConfigStore.instance().store(
        group="hydra/launcher", name="joblib", node=JoblibLauncherConf, provider="sweeplab"
    )


store_configs()


def why_lost(error: BaseException) -> str:
    """What a job whose worker died is told, from joblib's error (which names the signal)."""
    codes = re.search(r"exit codes of the workers are \{([^}]*)\}", str(error))
    how = f"killed ({codes.group(1)})" if codes else "lost"
    return (
        f"its worker process was {how}: the kernel's out-of-memory killer is the usual cause "
        "(joblib then stops the other workers too); rerun with sweep.skip_finished=true"
    )


def settings_of(joblib: dict[str, Any]) -> dict[str, Any]:
    """joblib.Parallel's arguments, as Hydra's launcher makes them from its config."""
    settings: dict[str, Any] = {**joblib, "backend": "loky"}
    _core.process_joblib_cfg(settings)
    return settings


# The warm-up under way (warm_up), until a launch waits for it.
_warming: Any = None


def warm_up(joblib: dict[str, Any]) -> None:
    """Start the pool's workers now, importing what a job needs; once per sweep.

    Each worker spends ~2.5 s importing scikit-learn, MLflow and skops before its first job.
    The sweep starts them as it starts (sweeplab.sweep), so that this overlaps its own start
    (its store, its parent run, composing its jobs) instead of following it. joblib keeps the
    pool for the launch, which asks for one with the same settings.
    """
    global _warming
    from joblib import Parallel, delayed, effective_n_jobs

    from sweeplab import runner

    if _warming is None:
        settings = settings_of(joblib)
        workers = effective_n_jobs(settings.get("n_jobs"))
        _warming = Parallel(**settings, return_as="generator_unordered")(
            delayed(runner.preload)() for _ in range(workers)
        )


def warmed() -> None:
    """Wait for the warm-up to end (a failed one only means cold workers)."""
    global _warming
    warming, _warming = _warming, None
    if warming is not None:
        try:
            for _ in warming:
                pass
        except Exception as e:  # the jobs will meet and report the same problem
            log.debug(f"warming the joblib workers failed: {e!r}")


def stop_workers() -> None:
    """End the pool's workers now, without waiting for them: the sweep is over.

    At exit joblib would wait for each idle worker to tear MLflow and scikit-learn down
    (~1 s). loky keeps the pool under a private name; without it, that wait stays.
    """
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)


class JoblibLauncher(HydraJoblib):  # type: ignore[misc]  # untyped plugin
    """Hydra's JoblibLauncher that starts its workers early, and goes on when one dies."""

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        """Keep Hydra's context, and have the workers start importing (unless they are)."""
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        warm_up(self.joblib)

    def _settings(self) -> dict[str, Any]:
        """joblib.Parallel's arguments, as Hydra's launcher makes them from its config."""
        return settings_of(self.joblib)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs on joblib's loky workers; return one JobReturn per job, in order."""
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        setup_globals()
        assert self.config is not None and self.task_function is not None
        assert self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        settings = self._settings()
        warmed()
        shown = ",".join(f"{k}={v}" for k, v in settings.items())
        log.info(f"Joblib.Parallel({shown}) is launching {len(job_overrides)} jobs")
        queue = {initial_job_idx + i: list(o) for i, o in enumerate(job_overrides)}
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
                        idx, overrides, self.hydra_context, self.config, self.task_function,
                        singleton_state,
                    )
                    for idx, overrides in queue.items()
                ):  # fmt: skip
                    returns[int(ret.hydra_cfg.hydra.job.num)] = ret
            except TerminatedWorkerError as e:
                returns.update(self._after_break(queue, returns, since, why_lost(e)))
            queue = {i: o for i, o in queue.items() if i not in returns}
        return [returns[i] for i in sorted(returns)]

    def _after_break(
        self, queue: dict[int, list[str]], returns: dict[int, JobReturn], since: float, why: str
    ) -> dict[int, JobReturn]:
        """Results for the jobs a broken pool ended: finished, or lost with ``why``.

        A job is lost if its run is RUNNING (a worker died under it), or if it had started
        (its folder is newer than this pool) without finishing or creating a run. Jobs that
        had not started are left to the next pool; one job is always settled, so that a job
        that kills its worker every time cannot loop.
        """
        from sweeplab import job

        waiting = [i for i in queue if i not in returns]
        running = job.running_jobs(waiting)
        settled: dict[int, JobReturn] = {}
        for idx in waiting:
            cfg = self._compose(idx, queue[idx])
            folder = job.output_dir_of(cfg)
            outcome = job.recorded_outcome(folder, since)
            if outcome is not None:  # finished, but its result was cut off with the pool
                settled[idx] = job.returned(cfg, queue[idx], outcome.get("value", math.nan))
            elif idx in running or _touched_since(folder, since):
                settled[idx] = job.lost(cfg, queue[idx], why)
        if not settled and waiting:
            first = waiting[0]
            settled[first] = job.lost(self._compose(first, queue[first]), queue[first], why)
        return settled

    def _compose(self, idx: int, overrides: list[str]) -> Any:
        """The job's config, as its worker composes it."""
        assert self.hydra_context is not None and self.config is not None
        return job_config(self.hydra_context, self.config, idx, overrides)


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
    between its jobs, so it keeps them. And the job runs with sweeplab.jobrun.run_job, which
    sets Hydra's view of the job's config itself (Hydra's execute_job sets it once more first).
    """
    from hydra.core.plugins import Plugins

    found = Singleton._instances.get(Plugins)
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
