"""``hydra/sweeper=optuna``: sweeplab's Hydra sweeper on current Optuna (>= 4.9).

Hydra's own hydra-optuna-sweeper 1.3 needs optuna<3, whose RDB storage fails on the SQLAlchemy 2
MLflow needs. This plugin keeps that plugin's config surface (``sampler``, ``storage``,
``study_name``, ``n_trials``, ``n_jobs``, ``max_failure_rate``, ``params``,
``custom_search_space``), so moving to it once Hydra 1.4 is final is a config change. Hydra
instantiates plugins only from this namespace; the work is in ``sweeplab.optuna_search``, which
imports Optuna only once a sweep uses it (Hydra imports this module on every start).

Hydra's plugin, when installed too, registers configs of the same names (``hydra/sweeper/optuna``
and its samplers) for optuna<3; ``store_configs`` replaces them, so ``hydra/sweeper=optuna``
means this sweeper whatever the import order. Hydra's plugin stays reachable only by naming its
``_target_``.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig

from sweeplab.checks import Check, at_least

TARGET = f"{__name__}.OptunaSweeper"


@dataclass
class OptunaSweeperConf:
    """The sweeper's settings, ``hydra.sweeper.*`` (Hydra's Optuna plugin's, and no more)."""

    _target_: str = TARGET
    # The sampler reaches the sweeper as config, not as an object Hydra built: sweeplab
    # checks it first and seeds it for the study's progress.
    _recursive_: bool = False
    # The sampler option (hydra/sweeper/sampler=tpe|random|grid|cmaes|gp|qmc) comes first.
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    # An optuna.samplers class and its arguments.
    sampler: Any = MISSING
    # sweeplab ranks by sweep.metric and sweep.direction; set this only to the same value.
    direction: Any = None
    # Where the study is kept: an RDB URL; null: a sqlite file beside a sqlite tracking store.
    storage: Any = None
    # null: derived from the experiment, the ranking and the search space.
    study_name: str | None = None
    # Trials the study gets in all, counting earlier runs of the same study.
    n_trials: int = 20
    # Trials asked for, and run, at a time; null: the launcher's parallelism.
    n_jobs: int | None = None
    # The share of n_trials that may fail before the sweep stops asking for more.
    max_failure_rate: float = 0.25
    # Hydra 1.1's form of `params`; refused with a pointer to `params`.
    search_space: Any = None
    # Search space, key: sweep expression (interval, int(interval), tag(log, ...), choice, range).
    params: dict[str, str] | None = None
    # A function (config, trial) that suggests more values; allowed only from the environment.
    custom_search_space: str | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        "n_trials": at_least(1),
        "n_jobs": at_least(1, optional=True),
        "max_failure_rate": Check(lambda v, _: 0 <= v <= 1, "must be from 0 to 1"),
    }


# ---------------------------------------------------------------- samplers
# hydra/sweeper/sampler=NAME picks one; any argument of the class can be overridden or added
# (hydra.sweeper.sampler.n_startup_trials=5, +hydra.sweeper.sampler.ARG=...). A fixed seed
# makes a sweep repeatable; a resumed study offsets it by the trials it already has, so the
# sampler does not suggest the first run's startup values again.


@dataclass
class TPESamplerConf:
    """Tree-structured Parzen estimator: the default; handles ints, floats and choices."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = 42
    # Random trials before TPE starts modelling.
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    # Model the parameters jointly; null: Optuna's default.
    multivariate: bool | None = None
    # Trials in flight (n_jobs > 1) count as bad results while TPE picks the next ones,
    # so a batch spreads out instead of suggesting one point n_jobs times.
    constant_liar: bool = True


@dataclass
class RandomSamplerConf:
    """Independent uniform draws: the baseline TPE is measured against."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = 42


@dataclass
class GridSamplerConf:
    """Every combination of the search space once (choices, and ranges with steps only)."""

    _target_: str = "optuna.samplers.GridSampler"
    # The search space is filled in from hydra.sweeper.params and the command line.
    _partial_: bool = True
    seed: int | None = 42


@dataclass
class CmaEsSamplerConf:
    """CMA-ES for ints and floats; choices fall back to random draws (Optuna warns)."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = 42
    n_startup_trials: int = 1
    sigma0: float | None = None
    # null | ipop | bipop
    restart_strategy: str | None = None
    popsize: int | None = None
    use_separable_cma: bool = False
    with_margin: bool = False


@dataclass
class GPSamplerConf:
    """Gaussian-process Bayesian optimisation; needs PyTorch (pip install torch)."""

    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = 42
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class QMCSamplerConf:
    """Quasi-random low-discrepancy points (Sobol or Halton): a space-filling start."""

    _target_: str = "optuna.samplers.QMCSampler"
    seed: int | None = 42
    # sobol | halton | lhs
    qmc_type: str = "sobol"
    scramble: bool = True


SAMPLERS: dict[str, type] = {
    "tpe": TPESamplerConf,
    "random": RandomSamplerConf,
    "grid": GridSamplerConf,
    "cmaes": CmaEsSamplerConf,
    "gp": GPSamplerConf,
    "qmc": QMCSamplerConf,
}


def store_configs() -> None:
    """Put this sweeper's configs in Hydra's ConfigStore, over any of the same names.

    Hydra's plugin registers ``hydra/sweeper/optuna`` and these samplers too, when installed,
    and Hydra's plugin scan runs every plugin module again; sweeplab calls this once more after
    that scan (sweeplab.config.register_configs), so these entries are the ones that stay.
    """
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="sweeplab")
    for name, node in SAMPLERS.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="sweeplab")


store_configs()


class OptunaSweeper(Sweeper):
    """Asks Optuna for trials in batches, runs them through the chosen launcher, tells it back."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the config and build the launcher the trials run on.

        The launcher composes each trial from a template (sweeplab.compose): trials differ
        only in the values Optuna picked.
        """
        from sweeplab import compose

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=compose.fast(hydra_context), task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        """Run the study's remaining trials (see sweeplab.optuna_search.run).

        ``arguments`` are the command line's overrides, from which the sweep's callback has
        planned the search already (sweeplab.sweep.start).
        """
        from sweeplab import optuna_search

        assert self.config is not None and self.launcher is not None
        optuna_search.run(self.config, self.launcher)
