"""``hydra/sweeper=basic`` (the default): Hydra's basic sweeper, each job composed once.

Hydra's BasicSweeper composes every job of a batch before launching the first
(``validate_batch_is_legal``), and the launcher composes each again: 1,000 jobs waited 79 s
for their first. sweeplab's sweep callback has already checked, more cheaply, that every job
composes (sweeplab.sweep.check_jobs_compose), so this sweeper skips Hydra's check, and its
launcher composes jobs from templates (sweeplab.compose). Settings and behaviour are otherwise
Hydra's: ``max_batch_size``, ``params``, the same jobs in the same order.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

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


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper whose jobs are composed once, when launched, from templates."""

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Hydra's setup, with a launcher that composes jobs through sweeplab.compose."""
        super().setup(
            hydra_context=compose.fast(hydra_context), task_function=task_function, config=config
        )

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Check the batch composes, unless sweeplab's sweep callback has checked every job."""
        from sweeplab.sweep import Sweep

        if Sweep.current is None or not Sweep.current.jobs_checked:  # callback removed
            super().validate_batch_is_legal(batch)
