"""``hydra/sweeper=optuna`` in sweeplab: sweeplab's Hydra sweeper on current Optuna (>= 4.9).

Hydra's own hydra-optuna-sweeper 1.3 needs optuna<3, whose RDB storage fails on the SQLAlchemy 2
MLflow needs. This plugin keeps that plugin's config surface (``sampler``, ``storage``,
``study_name``, ``n_trials``, ``n_jobs``, ``max_failure_rate``, ``params``,
``custom_search_space``), so moving to it once Hydra 1.4 is final is a config change. Its
settings are sweeplab.config.optuna_conf's; the option that names this class is a YAML file in
sweeplab's own config folder, so other Hydra apps never see it. Hydra's plugin scan imports
this module in every Hydra app: it imports sweeplab and Optuna only inside the methods.
"""

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """Asks Optuna for trials in batches, runs them through the chosen launcher, tells it back."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the config and build the launcher the trials run on.

        The launcher composes each trial from a template (sweeplab.sweep.compose): trials differ
        only in the values Optuna picked.
        """
        from sweeplab.sweep import compose

        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=compose.fast(hydra_context), task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        """Plan the study from the command line's ``arguments``, then run its remaining trials
        as one sweep it owns (sweeplab.sweep.optuna_search.run)."""
        from sweeplab.sweep import optuna_search, owner

        assert self.config is not None and self.launcher is not None
        config = self.config
        if not owner.runs_sweeplab(self.task_function):
            raise TypeError("sweeplab's Optuna sweeper runs sweeplab's own jobs only")
        search, plan = owner.checked(config, lambda: optuna_search.plan_sweep(config))
        with owner.owned(config, self.launcher, plan) as sweep:
            optuna_search.run(config, self.launcher, sweep, search)
