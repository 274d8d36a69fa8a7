"""The Optuna sweeper's settings and its samplers': typed schemas for ``hydra.sweeper``.

They are stored in Hydra's ConfigStore under sweeplab's own names (``sweeplab_optuna_sweeper``,
``sweeplab_sampler_<name>``; sweeplab.config.schema.register_configs), and the options users pick,
``hydra/sweeper=optuna`` and ``hydra/sweeper/sampler=tpe|...``, are YAML files in sweeplab's
own config folder (sweeplab/conf/hydra/sweeper/) that extend them. So they exist for sweeplab
alone: another Hydra app in the same environment keeps Hydra's names as Hydra's.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from omegaconf import MISSING

from sweeplab.util.checks import Check, at_least

# The sweeper class the YAML option names (Hydra instantiates plugins from hydra_plugins only).
TARGET = "hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper"


@dataclass
class OptunaSweeperConf:
    """The sweeper's settings, ``hydra.sweeper.*`` (Hydra's Optuna plugin's, and no more)."""

    _target_: str = TARGET
    # The sampler reaches the sweeper as config, not as an object Hydra built: sweeplab
    # checks it first and seeds it for the study's progress.
    _recursive_: bool = False
    # An optuna.samplers class and its arguments.
    sampler: Any = MISSING
    # An optuna.pruners class and its arguments: with folds (split=kfold|time|group) each
    # trial reports each fold's score, and the pruner may stop it between folds.
    pruner: Any = MISSING
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


# ---------------------------------------------------------------- pruners
# hydra/sweeper/pruner=NAME picks one. A pruner stops a trial between its folds when its
# scores so far say it will not win: it needs a split with folds (split=kfold|time|group).


@dataclass
class NopPrunerConf:
    """No pruning: every trial runs all its folds."""

    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    """Stop a trial whose score after a fold is worse than the median of earlier trials'."""

    _target_: str = "optuna.pruners.MedianPruner"
    # Trials that run all their folds before any is pruned.
    n_startup_trials: int = 5
    # Folds every trial runs before it may be pruned.
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class WilcoxonPrunerConf:
    """Stop a trial whose fold scores lose to the best trial's on the same folds (Wilcoxon
    signed-rank test): Optuna's pruner made for k-fold scores."""

    _target_: str = "optuna.pruners.WilcoxonPruner"
    # Prune when the test's p-value that the trial is no worse than the best falls below it.
    p_threshold: float = 0.1
    # Folds every trial runs before it may be pruned.
    n_startup_steps: int = 2


@dataclass
class SuccessiveHalvingPrunerConf:
    """Asynchronous successive halving: keep the top 1/reduction_factor at each rung of folds."""

    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0


PRUNERS: dict[str, type] = {
    "none": NopPrunerConf,
    "median": MedianPrunerConf,
    "wilcoxon": WilcoxonPrunerConf,
    "successive_halving": SuccessiveHalvingPrunerConf,
}


def schema_name(sampler: str | None = None) -> str:
    """The ConfigStore name of the sweeper's schema, or of one sampler's."""
    return "sweeplab_optuna_sweeper" if sampler is None else f"sweeplab_sampler_{sampler}"


def pruner_schema_name(pruner: str) -> str:
    """The ConfigStore name of one pruner's schema."""
    return f"sweeplab_pruner_{pruner}"
