"""``hydra/launcher=ray``: the official Ray launcher's jobs, and a dead worker's job recorded.

Hydra's Ray launcher waits for each job's result in turn, and the first job whose worker
died (Ray's WorkerCrashedError: a SIGKILL, the out-of-memory killer) raises out of the sweep,
leaving its run RUNNING and the results of the jobs after it unread. This launcher submits
the jobs exactly as the official one does (its own ``launch_job_on_ray``, the same
``hydra.launcher.ray`` settings), then reads their results as they end, handing each job's
outcome to the sweep, and records a job whose worker died as FAILED, saying why
(sweeplab.sweep.job.lost). sweeplab's ray.yaml sets
``max_retries: 0``: Ray would otherwise run such a job again, as a second run.

Ray is imported only when a sweep launches: Hydra's plugin scan imports this module even
where the ray extra is not installed.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

if TYPE_CHECKING:
    from sweeplab.sweep.parent import Sweep

TARGET = f"{__name__}.RayLauncher"

log = logging.getLogger(__name__)


def store_configs() -> None:
    """Nothing to store: sweeplab's conf/hydra/launcher/ray.yaml names this launcher."""


def why_lost(error: BaseException) -> str:
    """What a job whose Ray worker died is told, from Ray's error."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    kind = type(error).__name__
    return (
        f"its Ray worker process died ({kind}: {first[:160]}): a SIGKILL from the kernel's "
        "out-of-memory killer is the usual cause; rerun with sweep.skip_finished=true"
    )


class RayLauncher(Launcher):
    """The official Ray launcher's way of running jobs, which survives a dead worker."""

    in_process = False

    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None
        # The sweeplab sweep its jobs belong to (sweeplab.sweep.owner.SweepLauncher).
        self.sweep: Sweep | None = None

    def join(self, sweep: "Sweep") -> None:
        """Run the coming jobs as ``sweep``'s."""
        self.sweep = sweep

    def leave(self) -> None:
        """The sweep is over."""
        self.sweep = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep what launching needs, as the official launcher does."""
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Submit every job as a Ray task, then collect each result or record its loss."""
        import ray
        from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray, start_ray

        from sweeplab.sweep import job

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            f"Ray Launcher is launching {len(job_overrides)} jobs, sweep output dir: {sweep_dir}"
        )
        # sweeplab.sweep.cluster has joined the cluster already (without the official launcher's
        # object_store_memory, which Ray refuses when joining one); this is a no-op then.
        start_ray(self.ray_cfg.init)
        submitted = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = f"job_id_for_{idx}"
                cfg.hydra.job.num = idx
                ref = launch_job_on_ray(
                    self.hydra_context, self.ray_cfg.remote, cfg, self.task_function,
                    Singleton.get_state(),
                )  # fmt: skip
            submitted.append((cfg, list(overrides), ref))
        died = _worker_deaths()
        returns: dict[int, JobReturn] = {}
        pending = {ref: (i, cfg, overrides) for i, (cfg, overrides, ref) in enumerate(submitted)}
        while pending:
            # As they end, so that each job's line comes when it ends.
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, cfg, overrides = pending.pop(ref)
            try:
                returns[i] = ray.get(ref)
            except died as e:
                returns[i] = job.lost(self.sweep, cfg, overrides, why_lost(e))
                continue
            if self.sweep is not None:
                self.sweep.launched([returns[i]])
        return [returns[i] for i in range(len(submitted))]


def _worker_deaths() -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker process, or its node, went away."""
    import ray.exceptions

    names = ("WorkerCrashedError", "OutOfMemoryError", "NodeDiedError", "LocalRayletDiedError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))
