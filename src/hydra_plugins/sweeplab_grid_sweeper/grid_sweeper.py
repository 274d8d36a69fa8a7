"""``hydra/sweeper=basic`` in sweeplab (its default): Hydra's basic sweeper, jobs composed once.

Hydra's BasicSweeper composes every job of a batch before launching the first
(``validate_batch_is_legal``), and the launcher composes each again: 1,000 jobs waited 79 s
for their first. For sweeplab's own jobs this sweeper opens their sweep (sweeplab.sweep.owner),
whose plan checks, more cheaply, that every job composes (sweeplab.sweep.parent.plan_grid), so
it skips Hydra's check; its launcher composes jobs from templates (sweeplab.sweep.compose).
Other apps' jobs (Hydra's contract suites) get Hydra's check. Settings and behaviour are otherwise
Hydra's: ``max_batch_size``, ``params``, the same jobs in the same order, except that a null
``max_batch_size`` launches DEFAULT_BATCH jobs at a time. The option that names it is a YAML
file in sweeplab's own config folder (sweeplab/conf/hydra/sweeper/basic.yaml): other Hydra apps
keep Hydra's.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:  # the plugin scan imports this module: nothing of sweeplab's at import
    from sweeplab.sweep.parent import Sweep

# Jobs launched at a time when max_batch_size is null. A launcher keeps every job's config
# (~150 KB) until its batch ends: 1,000 jobs in one batch held ~150 MB more than 100 did.
DEFAULT_BATCH = 100


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper whose jobs are composed once, when launched, from templates.

    Unlike Hydra's, it launches at most DEFAULT_BATCH jobs at a time unless max_batch_size
    says otherwise: a batch's jobs' configs are composed and held only while it runs. For
    sweeplab's own jobs, it owns the sweep they belong to (sweeplab.sweep.owner).
    """

    task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Hydra's setup, with a launcher that composes jobs through sweeplab.sweep.compose."""
        from sweeplab.sweep import compose

        self.task_function = task_function
        super().setup(
            hydra_context=compose.fast(hydra_context), task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        """Launch the grid's jobs batch by batch; return each batch's JobReturns, as Hydra's."""
        from sweeplab.sweep import owner, parent

        assert self.config is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size or DEFAULT_BATCH)
        if not owner.runs_sweeplab(self.task_function):
            return self._launch(checked=False)
        config = self.config
        jobs = [list(job) for batch in self.overrides for job in batch]
        plan = owner.checked(config, lambda: parent.plan_grid(config, jobs))
        with owner.owned(config, self.launcher, plan) as sweep:
            return self._launch(checked=plan.jobs_checked, sweep=sweep)

    def _launch(self, checked: bool, sweep: "Sweep | None" = None) -> list[Sequence[JobReturn]]:
        """Launch the batches in order, handing each job's outcome to ``sweep`` (if any).

        ``checked``: every job was composed once already.
        """
        assert self.config is not None and self.launcher is not None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns: list[Sequence[JobReturn]] = []
        first = 0
        while not self.is_done():
            batch = self.get_job_batch()
            if not checked:
                self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=first)
            if sweep is not None:
                sweep.launched(results)
            for result in results:
                _ = result.return_value  # raises if the job raised, as in Hydra's
            returns.append(results)
            first += len(batch)
        return returns
