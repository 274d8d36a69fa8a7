"""``hydra/launcher=basic`` in sweeplab (its default): Hydra's basic launcher, copying less.

The same jobs, one after another in this process, with the same logging and folders as
Hydra's own; each runs through sweeplab.sweep.jobrun.run_job, Hydra's ``run_job`` without its
copies of the whole config (~30 ms a job). The option that names it is a YAML file in sweeplab's
own config folder (sweeplab/conf/hydra/launcher/basic.yaml): other Hydra apps keep Hydra's.
"""

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher as HydraBasic
from hydra._internal.core_plugins.basic_launcher import log  # its lines, under Hydra's name
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from omegaconf import open_dict

if TYPE_CHECKING:
    from sweeplab.sweep.parent import Sweep


class BasicLauncher(HydraBasic):
    """Hydra's BasicLauncher, with sweeplab.sweep.jobrun.run_job for each job.

    A sweeplab sweep's jobs run here, in its process (sweeplab.sweep.owner.SweepLauncher): each
    gets the sweep, whose recorder logs its run in the background while the next one trains.
    """

    in_process = True

    def __init__(self) -> None:
        super().__init__()
        self.sweep: Sweep | None = None

    def join(self, sweep: "Sweep") -> None:
        """Run the coming jobs as ``sweep``'s."""
        self.sweep = sweep

    def leave(self) -> None:
        """The sweep is over."""
        self.sweep = None

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs one by one in this process; return one JobReturn per job, in order."""
        # Hydra's BasicLauncher.launch, line for line, but for the run_job it calls.
        from sweeplab.sweep.jobrun import run_job  # the implementation: imported when jobs run

        setup_globals()
        assert self.hydra_context is not None
        assert self.config is not None
        assert self.task_function is not None
        task: Callable[..., Any] = self.task_function
        if self.sweep is not None:  # sweeplab's task function takes it
            task = functools.partial(task, sweep=self.sweep)

        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        # A sweeplab sweep prints each job's line as it ends, and its count: Hydra's lines for
        # each batch (an Optuna trial's batch of one) and each job would only repeat them.
        quiet = self.sweep is not None
        if not quiet:
            log.info(f"Launching {len(job_overrides)} jobs locally")
        runs: list[JobReturn] = []
        for idx, overrides in enumerate(job_overrides):
            idx = initial_job_idx + idx
            if not quiet:
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = idx
                sweep_config.hydra.job.num = idx
            ret = run_job(
                hydra_context=self.hydra_context,
                task_function=task,
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
            runs.append(ret)
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return runs
