"""``hydra/sweeper=basic`` (the default): Hydra's basic sweeper, each job composed once.

Hydra's BasicSweeper composes every job of a batch before launching the first
(``validate_batch_is_legal``), and the launcher composes each again: 1,000 jobs waited 79 s
for their first. sweeplab's sweep callback has already checked, more cheaply, that every job
composes (sweeplab.sweep.check_jobs_compose), so this sweeper skips Hydra's check, and its
launcher composes jobs from templates (sweeplab.compose). Settings and behaviour are otherwise
Hydra's: ``max_batch_size``, ``params``, the same jobs in the same order, except that a null
``max_batch_size`` launches DEFAULT_BATCH jobs at a time.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from sweeplab import compose

TARGET = f"{__name__}.GridSweeper"


@dataclass
class GridSweeperConf:
    """Hydra's BasicSweeperConf, with this sweeper as its target."""

    _target_: str = TARGET
    # Jobs launched at a time; null: all of them in one batch.
    max_batch_size: int | None = None
    # Sweeps of the config's own (`key: 1,2,3`), as on the command line.
    params: dict[str, str] | None = None


def store_configs() -> None:
    """Make ``hydra/sweeper=basic`` this sweeper, over Hydra's entry of that name."""
    ConfigStore.instance().store(
        group="hydra/sweeper", name="basic", node=GridSweeperConf, provider="sweeplab"
    )


store_configs()


# Jobs launched at a time when max_batch_size is null. A launcher keeps every job's config
# (~150 KB) until its batch ends: 1,000 jobs in one batch held ~150 MB more than 100 did.
DEFAULT_BATCH = 100


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper whose jobs are composed once, when launched, from templates.

    Unlike Hydra's, it launches at most DEFAULT_BATCH jobs at a time unless max_batch_size
    says otherwise, and keeps no finished batch's results: memory stays flat however many
    jobs the grid has.
    """

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Hydra's setup, with a launcher that composes jobs through sweeplab.compose."""
        super().setup(
            hydra_context=compose.fast(hydra_context), task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        """Launch the grid's jobs batch by batch, as Hydra's basic sweeper does."""
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size or DEFAULT_BATCH)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        first = 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            for result in self.launcher.launch(batch, initial_job_idx=first):
                _ = result.return_value  # raises if the job raised, as in Hydra's
            first += len(batch)
        return []

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Check the batch composes, unless sweeplab's sweep callback has checked every job."""
        from sweeplab.sweep import Sweep

        if Sweep.current is None or not Sweep.current.jobs_checked:  # callback removed
            super().validate_batch_is_legal(batch)
