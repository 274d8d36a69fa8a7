"""``hydra/sweeper=basic`` in sweeplab (its default): Hydra's basic sweeper, jobs composed once.

Hydra's BasicSweeper composes every job of a batch before launching the first
(``validate_batch_is_legal``), and the launcher composes each again: 1,000 jobs waited 79 s
for their first. sweeplab's sweep callback has already checked, more cheaply, that every job
composes (sweeplab.sweep.parent.check_jobs_compose), so this sweeper skips Hydra's check, and its
launcher composes jobs from templates (sweeplab.sweep.compose). Settings and behaviour are otherwise
Hydra's: ``max_batch_size``, ``params``, the same jobs in the same order, except that a null
``max_batch_size`` launches DEFAULT_BATCH jobs at a time. The option that names it is a YAML
file in sweeplab's own config folder (sweeplab/conf/hydra/sweeper/basic.yaml): other Hydra apps
keep Hydra's.
"""

from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

# Jobs launched at a time when max_batch_size is null. A launcher keeps every job's config
# (~150 KB) until its batch ends: 1,000 jobs in one batch held ~150 MB more than 100 did.
DEFAULT_BATCH = 100


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper whose jobs are composed once, when launched, from templates.

    Unlike Hydra's, it launches at most DEFAULT_BATCH jobs at a time unless max_batch_size
    says otherwise: a batch's jobs' configs are composed and held only while it runs.
    """

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Hydra's setup, with a launcher that composes jobs through sweeplab.sweep.compose."""
        from sweeplab.sweep import compose

        super().setup(
            hydra_context=compose.fast(hydra_context), task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        """Launch the grid's jobs batch by batch; return each batch's JobReturns, as Hydra's."""
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size or DEFAULT_BATCH)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns: list[Sequence[JobReturn]] = []
        first = 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=first)
            for result in results:
                _ = result.return_value  # raises if the job raised, as in Hydra's
            returns.append(results)
            first += len(batch)
        return returns

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Check the batch composes, unless sweeplab's sweep callback has checked every job."""
        from sweeplab.sweep.parent import Sweep

        if Sweep.current is None or not Sweep.current.jobs_checked:  # callback removed
            super().validate_batch_is_legal(batch)
