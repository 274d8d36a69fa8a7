"""Optuna sweeps: a search space from Hydra's sweep syntax, a study kept beside the store, and
trials asked in batches, run through any launcher as a sweep's jobs, and told back once logged.

``plan`` checks everything a config says (before any run exists) and opens the study;
``run`` is the sweeper's loop (hydra_plugins.sweeplab_optuna_sweeper). Each trial is one job
of the sweep (sweeplab.sweep): one child run of its parent, tagged with the trial's number.
"""

import contextlib
import hashlib
import importlib
import importlib.util
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from sweeplab.config.optuna_conf import OptunaSweeperConf
from sweeplab.sweep.parent import (
    Outcome,
    Sweep,
    SweepPlan,
    check_jobs_compose,
    check_sweep,
    jobs_at_once,
    ranking,
)
from sweeplab.tracking.tags import PRUNER_TAG, SAMPLER_TAG, STORAGE_TAG, STUDY_TAG
from sweeplab.util import allow, env
from sweeplab.util.checks import ConfigError
from sweeplab.util.errors import UserError, install_extra
from sweeplab.util.redact import redact_uri

if TYPE_CHECKING:
    import optuna
    from hydra.conf import HydraConf
    from hydra.plugins.launcher import Launcher


SAMPLERS_MODULE = "optuna.samplers"
PRUNERS_MODULE = "optuna.pruners"

# Beside Hydra's files in the sweep's folder, as Hydra's own Optuna plugin writes it, and on
# the parent run under OPTUNA_DIR with the plots.
RESULTS_FILE = "optimization_results.yaml"
OPTUNA_DIR = "optuna"
# Trial attributes: which job and run a trial was, and trials an interrupt ended.
RUN_ATTR, PARENT_ATTR, STATUS_ATTR = "sweeplab.run_id", "sweeplab.parent_run_id", "sweeplab.status"
INTERRUPTED_ATTR = "sweeplab.interrupted"

# In the sweep's own overrides, so each trial's `hydra.job.env_set.<name>=N` changes a key.
TRIAL_ENV_PLACEHOLDER = f"++hydra.job.env_set.{env.OPTUNA_TRIAL.name}=''"

_RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def target_name(node: DictConfig) -> str:
    """A sampler's or pruner's class name, as its ``_target_`` ends."""
    return str(node.get("_target_", "")).rsplit(".", 1)[-1]


def _choice(cfg: DictConfig, group: str, node: DictConfig) -> str:
    """The option the user picked for ``group`` (``median``), else its class's name."""
    choices = cfg.hydra.get("runtime", {}).get("choices", {})
    return str(choices.get(group) or target_name(node))


def require_optuna() -> None:
    """Raise UserError, saying which extra to install, when Optuna is not importable."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UserError(
            f"hydra/sweeper=optuna needs Optuna, which is not installed: {install_extra('optuna')}"
        ) from None


# ---------------------------------------------------------------- the search space


def _key(override: Override) -> str:
    return override.get_key_element()


def _distribution(override: Override, where: str) -> Any:
    """The Optuna distribution a sweep expression stands for (Hydra's Optuna plugin's rules).

    ``choice`` is categorical; ``range`` an int (or float) with its step; ``interval`` a
    float, or an int when both bounds are (``int(interval(2, 12))``), log-scaled with
    ``tag(log, ...)``.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    shown = str(override.input_line).partition("=")[2]
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices: list[Any] = list(override.sweep_iterator(transformer=Transformer.encode))
        if not all(isinstance(c, str | int | float | bool | type(None)) for c in choices):
            raise ConfigError(where, shown, "choices must be plain values (no lists or dicts)")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        assert value.start is not None and value.stop is not None
        values: list[Any] = list(override.sweep_iterator(transformer=Transformer.identity))
        if not values or value.step <= 0:
            raise ConfigError(where, shown, "must be an increasing, non-empty range")
        # range(a, b, s) stops before b, as Python's and Hydra's grid do.
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        log = "log" in value.tags
        if log and value.start <= 0:
            raise ConfigError(where, shown, "a log-scaled interval must start above 0")
        if value.start >= value.end:
            raise ConfigError(where, shown, "an interval's start must be below its end")
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigError(
        where, shown, "Optuna sweeps take choice(...), range(...), interval(...), "
        "int(interval(...)) or tag(log, interval(...)); a glob selects no values",
    )  # fmt: skip


def search_space(cfg: DictConfig, arguments: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The swept keys' distributions, and the overrides every trial shares.

    ``hydra.sweeper.params`` first, then the command line (``arguments``), which wins for a
    key given in both.
    """
    params = cfg.hydra.sweeper.get("params") or {}
    parser = OverridesParser.create()
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    lines = [(f"hydra.sweeper.params.{k}", f"{k}={v}") for k, v in params.items()]
    lines += [(str(line).partition("=")[0], str(line)) for line in arguments]
    for where, line in lines:
        try:
            override = parser.parse_override(line)
        except HydraException as e:
            key, _, value = line.partition("=")
            raise ConfigError(
                where, value, f"is not a sweep expression Hydra can read: {e}"
            ) from None
        key = _key(override)
        if override.is_sweep_override():
            space[key] = _distribution(override, where)
            fixed.pop(key, None)
        else:
            fixed[key] = line
            space.pop(key, None)
    return space, list(fixed.values())


def probe_jobs(space: dict[str, Any], fixed: list[str]) -> list[list[str]]:
    """Overrides that compose every choice once (the rest at their lowest): the early check."""
    from optuna.distributions import CategoricalDistribution

    low = {k: _value(d.low) for k, d in space.items() if not isinstance(d, CategoricalDistribution)}
    choices = {k: d.choices for k, d in space.items() if isinstance(d, CategoricalDistribution)}
    first = {k: _value(c[0]) for k, c in choices.items()}
    jobs = [[*fixed, *(f"{k}={v}" for k, v in {**low, **first}.items())]]
    for key, values in choices.items():
        for value in values[1:]:
            picked = {**low, **first, key: _value(value)}
            jobs.append([*fixed, *(f"{k}={v}" for k, v in picked.items())])
    return jobs


def _value(value: Any) -> str:
    """A suggested value as an override's right-hand side.

    Floats keep 6 significant digits (0.0420705, not 0.042070539502879395): the runs' names,
    params and the leaderboard stay readable, and the model cannot tell the difference.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):  # repr keeps it a float: 1.0, not 1
        return repr(float(f"{value:.6g}"))
    return str(value)


def grid_of(space: dict[str, Any]) -> dict[str, list[Any]]:
    """Each key's values for Optuna's GridSampler; ConfigError for a continuous interval."""
    from optuna.distributions import CategoricalDistribution

    grid: dict[str, list[Any]] = {}
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            grid[key] = list(dist.choices)
        elif getattr(dist, "step", None) is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            grid[key] = [type(dist.low)(dist.low + i * dist.step) for i in range(count)]
        else:
            raise ConfigError(
                "hydra/sweeper/sampler", "grid", f"needs discrete values: {key} is an interval; "
                "use choice(...) or range(...), or another sampler",
            )  # fmt: skip
    return grid


# ---------------------------------------------------------------- checks and the study


def _storage(cfg: DictConfig) -> str:
    """The study's storage URL: the user's, else a sqlite file beside a sqlite tracking store."""
    return storage_of(cfg.hydra.sweeper, str(cfg.tracking.uri))


def storage_of(settings: DictConfig, tracking_uri: str) -> str:
    """The storage URL of the sweeper ``settings`` (hydra.sweeper) for a ``tracking_uri``."""
    given = settings.get("storage")
    if given is not None:
        scheme = str(given).partition(":")[0].split("+")[0]
        if not isinstance(given, str) or scheme not in _RDB_SCHEMES:
            raise ConfigError(
                "hydra.sweeper.storage", given, "must be a database URL Optuna can keep a "
                "study in, like sqlite:///path/optuna.db or postgresql://user@host/db",
            )  # fmt: skip
        return given
    from sweeplab.tracking.store import sqlite_path

    tracking = sqlite_path(tracking_uri)
    if tracking is None:
        raise ConfigError(
            "hydra.sweeper.storage", None, f"must be set when tracking.uri is not a sqlite file "
            f"({redact_uri(tracking_uri)}): a database URL for the study, like "
            "postgresql://user@host/optuna, or sqlite:///optuna.db for a file on this machine",
        )  # fmt: skip
    # Never MLflow's own file: Optuna keeps its own schema (and alembic_version table).
    return f"sqlite:///{tracking.with_name(tracking.stem + '.optuna.db').resolve()}"


def _n_jobs(cfg: DictConfig) -> int:
    """Trials per batch: hydra.sweeper.n_jobs, else what the launcher runs at once."""
    if (given := cfg.hydra.sweeper.get("n_jobs")) is not None:
        return int(given)
    return jobs_at_once(cfg.hydra.launcher)


def _optuna_class(node: DictConfig, setting: str, module: str) -> str:
    """``hydra.sweeper.<setting>``'s ``_target_``, checked to be a class of Optuna's ``module``
    (``optuna.samplers``, ``optuna.pruners``) or of a module allowed from the environment."""
    target = str(node.get("_target_", ""))
    key = f"hydra.sweeper.{setting}._target_"
    if not allow.under(target, (module, *allow.user_prefixes())):
        raise allow.TargetRefused(key, target, f"a {setting} must be a class of {module}")
    if target.startswith(module + "."):
        classes = importlib.import_module(module)
        if not isinstance(getattr(classes, target.removeprefix(module + "."), None), type):
            known = sorted(
                n for n in dir(classes)
                if n.endswith(setting.capitalize()) and not n.startswith(("Base", "PartialFixed"))
            )  # fmt: skip
            raise ConfigError(key, target, f"must be one of the classes {module} has: {known}")
    return target


def _sampler_target(cfg: DictConfig) -> str:
    """The sampler class's dotted name, checked to be one of optuna.samplers' (or allowed)."""
    target = _optuna_class(cfg.hydra.sweeper.sampler, "sampler", SAMPLERS_MODULE)
    if target.endswith(".GPSampler") and importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "hydra/sweeper/sampler", "gp", "needs PyTorch, which is not installed: "
            "pip install torch (or pick tpe, random, grid, cmaes or qmc)",
        )  # fmt: skip
    if target.endswith(".CmaEsSampler") and importlib.util.find_spec("cmaes") is None:
        raise ConfigError(
            "hydra/sweeper/sampler", "cmaes", f"needs cmaes: {install_extra('optuna')}"
        )
    return target


def pruner(settings: DictConfig) -> "optuna.pruners.BasePruner":
    """The pruner ``hydra.sweeper.pruner`` names, checked to be one of optuna.pruners' (or
    allowed) and built; ConfigError naming the key otherwise."""
    import optuna.pruners
    from hydra.utils import instantiate

    node = settings.get("pruner")
    if node is None:
        return optuna.pruners.NopPruner()
    target = _optuna_class(node, "pruner", PRUNERS_MODULE)
    arguments = OmegaConf.to_container(node, resolve=True)
    try:
        made = instantiate(arguments)
    except Exception as e:
        raise ConfigError(
            "hydra.sweeper.pruner", arguments, f"{target} does not take it: {e}"
        ) from None
    return made  # type: ignore[no-any-return]


def prunes(settings: DictConfig) -> bool:
    """Whether the sweeper's pruner may stop trials (any but NopPruner)."""
    node = settings.get("pruner")
    return node is not None and str(node.get("_target_", "")) != f"{PRUNERS_MODULE}.NopPruner"


def fold_reporter(cfg: DictConfig, hydra: "HydraConf") -> Callable[[int, float], None] | None:
    """For a job of a pruning Optuna sweep: what reports each fold's score to its trial.

    It raises train.Pruned when the sweep's pruner says the trial will not win. The job
    reaches the study through its storage, so this works on every launcher; None for any
    other job.
    """
    study_name = hydra.job.env_set.get(env.OPTUNA_STUDY.name)
    number = hydra.job.env_set.get(env.OPTUNA_TRIAL.name)
    if not study_name or number in (None, ""):
        return None
    import optuna

    from sweeplab.model.train import Pruned

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=str(study_name),
        storage=storage_of(hydra.sweeper, str(cfg.tracking.uri)),
        pruner=pruner(hydra.sweeper),
        sampler=optuna.samplers.RandomSampler(),  # never asked: the sweeper samples
    )
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, int(number))
    trial = optuna.trial.Trial(study, trial_id)

    def report(fold: int, value: float) -> None:
        trial.report(value, fold)
        if trial.should_prune():
            raise Pruned()

    return report


def _custom_search_space(cfg: DictConfig) -> Callable[[DictConfig, Any], None] | None:
    """The user's function that suggests more values, if allowed from the environment."""
    path = cfg.hydra.sweeper.get("custom_search_space")
    if path is None:
        return None
    key = "hydra.sweeper.custom_search_space"
    if not allow.under(str(path), allow.user_prefixes()):
        raise allow.TargetRefused(key, str(path), "it names code for sweeplab to call")
    module, _, name = str(path).rpartition(".")
    try:
        function = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(key, path, f"cannot be imported: {e}") from None
    if not callable(function):
        raise ConfigError(key, path, "must be a function (config, trial) -> None")
    return function  # type: ignore[no-any-return]


def _check_settings(settings: DictConfig) -> None:
    """The range checks of the sweeper's schema (n_trials >= 1, ...)."""
    for key, check in OptunaSweeperConf.CHECKS.items():
        if not check.ok(settings.get(key), settings):
            raise ConfigError(f"hydra.sweeper.{key}", settings.get(key), check.allowed)


def _refuse_other_settings(cfg: DictConfig, direction: str) -> None:
    """Settings of Hydra's Optuna plugin that sweeplab takes from elsewhere or not at all."""
    settings = cfg.hydra.sweeper
    if settings.get("search_space") is not None:
        raise ConfigError(
            "hydra.sweeper.search_space", OmegaConf.to_container(settings.search_space),
            "is Hydra 1.1's form; write the same as hydra.sweeper.params, key: interval(...)",
        )  # fmt: skip
    given = settings.get("direction")
    if given is None:
        return
    named = given if isinstance(given, str) else str(getattr(given, "name", given))
    if named != direction:
        raise ConfigError(
            "hydra.sweeper.direction", named,
            f"sweeplab optimises sweep.metric in sweep.direction ({direction}); set "
            "sweep.direction instead (one objective per sweep)",
        )  # fmt: skip


# Overrides that change how a sweep runs or is recorded, not what its trials train.
_BOOKKEEPING = ("sweep.", "run_name", "tracking.", "experiment.", "hydra")


def _bookkeeping(override: str) -> bool:
    return override.lstrip("+~").startswith(_BOOKKEEPING)


def study_name(cfg: DictConfig, metric: str, direction: str, space: dict[str, Any],
               fixed: list[str]) -> str:  # fmt: skip
    """``apple_models: rmse over model.max_depth, model.n_estimators (3f9a2c1d)``.

    Stable for the same experiment, ranking, search space, sampler and shared overrides, so
    the same command continues the same study (with or without sweep.skip_finished, another
    run_name or store settings); anything else starts another.
    """
    from optuna.distributions import distribution_to_json

    what = {
        "experiment": str(cfg.experiment.name),
        "metric": metric,
        "direction": direction,
        "space": {k: distribution_to_json(d) for k, d in sorted(space.items())},
        "fixed": sorted(o for o in fixed if not _bookkeeping(o)),
        "custom": cfg.hydra.sweeper.get("custom_search_space"),
        "sampler": OmegaConf.to_container(cfg.hydra.sweeper.sampler, resolve=True),
    }
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    keys = ", ".join(space) or "no swept values"
    return f"{cfg.experiment.name}: {metric} over {keys} ({digest})"


@dataclass
class Search:
    """An Optuna study for one sweep: what it searches, where it is kept, how it samples."""

    study: "optuna.Study"
    space: dict[str, Any]
    # Overrides every trial shares (the command line's plain key=value ones).
    fixed: list[str]
    storage: str
    n_trials: int
    n_jobs: int
    max_failure_rate: float
    sampler_name: str
    custom: Callable[[DictConfig, Any], None] | None = None
    # Trials that count toward n_trials from earlier runs of the same study.
    done_before: int = 0
    # This sweep's trials by outcome: finished, failed, reused, pruned.
    told: Counter[str] = field(default_factory=Counter)
    stopped: str = ""

    @property
    def remaining(self) -> int:
        """Trials left to reach n_trials in all."""
        return max(0, self.n_trials - self.done_before)

    @property
    def shown_storage(self) -> str:
        """The storage URL with any password masked."""
        return redact_uri(self.storage)

    def overrides(self, trial: "optuna.Trial", config: DictConfig) -> list[str]:
        """A trial's overrides: the shared ones, then its suggested values."""
        if self.custom is not None:
            self.custom(config, trial)
        values = [f"{k}={_value(v)}" for k, v in trial.params.items()]
        # A `hydra.` override, which Hydra's launchers leave out of their log lines; the key
        # exists already (TRIAL_ENV_PLACEHOLDER), so it needs no `++`.
        trial_env = f"hydra.job.env_set.{env.OPTUNA_TRIAL.name}='{trial.number}'"
        return [*self.fixed, *values, trial_env]


def _counts_toward_total(trial: "optuna.trial.FrozenTrial") -> bool:
    from optuna.trial import TrialState

    if trial.state == TrialState.FAIL:
        return not trial.user_attrs.get(INTERRUPTED_ATTR, False)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def plan(
    cfg: DictConfig, space: dict[str, Any], fixed: list[str], metric: str, direction: str
) -> Search:
    """Check the sweeper's settings and open (or continue) the study; nothing runs yet.

    ``space`` and ``fixed`` are ``search_space``'s, which the sweep has composed already.
    """
    import optuna
    from hydra.utils import instantiate

    from sweeplab.tracking import store
    from sweeplab.util import oslock

    _check_settings(cfg.hydra.sweeper)
    _refuse_other_settings(cfg, direction)
    target = _sampler_target(cfg)
    custom = _custom_search_space(cfg)
    if not space and custom is None:
        raise ConfigError(
            "hydra.sweeper.params", None, "must give at least one swept key, e.g. "
            "'model.max_depth=int(interval(2,12))' on the command line",
        )  # fmt: skip
    settings = cfg.hydra.sweeper
    storage = _storage(cfg)
    name = settings.get("study_name") or study_name(cfg, metric, direction, space, fixed)
    # Optuna's INFO lines would reach the console through Hydra's logging; sweeplab prints
    # what happened to each trial itself.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        database = store.sqlite_path(storage)
        # Two sweeps creating one fresh file would race its schema's creation.
        lock = oslock.held(store.lock_path(database)) if database else contextlib.nullcontext()
        with lock:
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                direction="maximize" if direction == "maximize" else "minimize",
                load_if_exists=True,
            )
    except ImportError as e:  # the database's driver (psycopg for postgresql://)
        raise ConfigError(
            "hydra.sweeper.storage", storage, f"needs a database driver that is not installed "
            f"({e}); for postgresql:// URLs: {install_extra('postgres')}",
        ) from None  # fmt: skip
    except Exception as e:
        raise ConfigError(
            "hydra.sweeper.storage", storage, f"cannot keep the study: {type(e).__name__}: {e}"
        ) from None
    if study.direction.name.lower() != direction:
        raise ConfigError(
            "hydra.sweeper.study_name", name, f"is a study that {study.direction.name.lower()}s; "
            f"this sweep {direction}s {metric}: pick another study_name",
        )  # fmt: skip
    trials = study.get_trials(deepcopy=False)
    done = sum(map(_counts_toward_total, trials))
    sampler_cfg = OmegaConf.to_container(settings.sampler, resolve=True)
    assert isinstance(sampler_cfg, dict)
    if sampler_cfg.get("seed") is not None and not target.endswith(".GridSampler"):
        # A resumed study gets a sampler seeded past its first run's draws. Not the grid:
        # its seed shuffles the grid, and trial N takes the shuffled grid's N-th point, so
        # another seed would send resumed trials to points already visited.
        sampler_cfg["seed"] = int(sampler_cfg["seed"]) + len(trials)
    n_trials = int(settings.n_trials)
    try:
        sampler = instantiate(sampler_cfg)
        if target.endswith(".GridSampler"):
            grid = grid_of(space)
            sampler = sampler(grid)
            n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(
            "hydra.sweeper.sampler", sampler_cfg, f"{target} does not take it: {e}"
        ) from None
    study.sampler = sampler
    study.pruner = pruner(settings)
    if prunes(settings) and str(cfg.split.kind) == "holdout" and "split" not in space:
        raise ConfigError(
            "hydra/sweeper/pruner", _choice(cfg, "hydra/sweeper/pruner", settings.pruner),
            "stops trials between "
            "folds, and split=holdout has one: pick a split with folds (split=kfold, time or "
            "group), or hydra/sweeper/pruner=none",
        )  # fmt: skip
    return Search(
        study=study,
        space=space,
        fixed=fixed,
        storage=storage,
        n_trials=n_trials,
        n_jobs=_n_jobs(cfg),
        max_failure_rate=float(settings.max_failure_rate),
        sampler_name=target.rsplit(".", 1)[-1],
        custom=custom,
        done_before=done,
    )


def plan_sweep(cfg: DictConfig) -> tuple[Search, SweepPlan]:
    """Plan the sweep of the study's remaining trials: every value it may pick composes.

    Exits 0, saying so, when the study has its ``n_trials`` already.
    """
    check_sweep(cfg)
    require_optuna()
    # The study's trials are not known yet: compose each value it may pick once instead.
    space, fixed = search_space(cfg, list(cfg.hydra.overrides.task))
    probes = probe_jobs(space, fixed)
    check_jobs_compose(cfg, probes)
    metric, direction = ranking(cfg, probes)
    search = plan(cfg, space, fixed, metric, direction)
    if search.remaining == 0:
        print(
            f"sweeplab: study {search.study.study_name!r} already has "
            f"{search.done_before} trials (hydra.sweeper.n_trials={search.n_trials}): "
            "nothing to run; raise hydra.sweeper.n_trials to run more",
            flush=True,
        )
        raise SystemExit(0)
    tags = {
        STUDY_TAG: search.study.study_name,
        STORAGE_TAG: search.shown_storage,
        SAMPLER_TAG: search.sampler_name,
    }
    hydra_overrides = [TRIAL_ENV_PLACEHOLDER]
    if prunes(cfg.hydra.sweeper):
        # Jobs report each fold's score to the study's trial, wherever they run.
        quoted = search.study.study_name.replace("\\", "\\\\").replace("'", "\\'")
        hydra_overrides.append(f"++hydra.job.env_set.{env.OPTUNA_STUDY.name}='{quoted}'")
        tags[PRUNER_TAG] = target_name(cfg.hydra.sweeper.pruner)
    # A resumed study's earlier trials: one comparison covers every trial of the study.
    earlier = [
        str(t.user_attrs[RUN_ATTR])
        for t in search.study.get_trials(deepcopy=False)
        if RUN_ATTR in t.user_attrs and _counts_toward_total(t)
    ]
    return search, SweepPlan(
        search.remaining, list(search.space), metric, direction, unit="trial", tags=tags,
        hydra_overrides=hydra_overrides, earlier_runs=earlier,
    )  # fmt: skip


# ---------------------------------------------------------------- the sweeper's loop


def _fail_abandoned(search: Search, sweep: Sweep) -> None:
    """End RUNNING trials whose sweep is over (killed outright, say): they ran nowhere now."""
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    running = search.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return
    client = MlflowClient(sweep.tracking_uri)
    for trial in running:
        parent = trial.user_attrs.get(PARENT_ATTR)
        try:
            alive = parent is not None and client.get_run(parent).info.status == "RUNNING"
        except Exception:
            alive = False
        if not alive:
            search.study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED_ATTR, True)
            _told(search.study, trial.number, state=TrialState.FAIL)


def _outcome(outcome: Outcome | None) -> tuple[str, float, str | None]:
    """A job's status (as sweeplab.compare.results has it), metric and run id."""
    if outcome is None:  # the job raised instead of handing one back
        return "FAILED", math.nan, None
    return outcome.status, outcome.value, outcome.run_id


def _told(study: "optuna.Study", trial: "optuna.Trial | int", **outcome: Any) -> None:
    """``study.tell``, when GridSampler's end-of-grid ``study.stop()`` is no error."""
    try:
        study.tell(trial, **outcome)
    except RuntimeError as e:
        # GridSampler stops the study once every point is visited, which Optuna allows only
        # inside study.optimize(); the trial is told before that.
        if "Study.stop" not in str(e):
            raise


def _tell(
    search: Search, trial: "optuna.Trial", outcome: tuple[str, float, str | None], job: int
) -> None:
    """Tell Optuna how a trial went: its metric if the run FINISHED (or was reused), else FAIL."""
    from optuna.trial import TrialState

    status, value, run_id = outcome
    trial.set_user_attr(STATUS_ATTR, status)
    trial.set_user_attr("sweeplab.sweep.job", job)
    if run_id:
        trial.set_user_attr(RUN_ATTR, run_id)
    ok = status in ("FINISHED", "REUSED") and isinstance(value, float) and math.isfinite(value)
    if status == "PRUNED":
        _told(search.study, trial, state=TrialState.PRUNED)
        search.told["pruned"] += 1
        return
    if ok:
        _told(search.study, trial, values=float(value))
    else:
        _told(search.study, trial, state=TrialState.FAIL)
    search.told["reused" if ok and status == "REUSED" else "finished" if ok else "failed"] += 1


def _interrupted(search: Search, sweep: Sweep, pending: dict[int, "optuna.Trial"]) -> None:
    """Tell an interrupted batch: a trial whose run was logged as it was, the rest FAIL."""
    from optuna.trial import TrialState

    if sweep.recorder is not None:
        with contextlib.suppress(BaseException):  # a second Ctrl-C stops waiting
            sweep.recorder.drain()
    for number, trial in pending.items():
        recorded = sweep.outcomes.get(number)
        # A tell the interrupt cut short may have ended the trial already.
        with contextlib.suppress(Exception):
            if recorded is not None and recorded.status in ("FINISHED", "REUSED"):
                _tell(search, trial, _outcome(recorded), number)
            else:
                trial.set_user_attr(INTERRUPTED_ATTR, True)
                _told(search.study, trial, state=TrialState.FAIL)


def run(config: DictConfig, launcher: "Launcher", sweep: Sweep, search: Search) -> None:
    """Ask, launch and tell in batches of n_jobs until the study has n_trials, then report."""
    import optuna

    _fail_abandoned(search, sweep)
    job = 0
    to_go = search.remaining
    while to_go > 0:
        # job number -> trial, until it is told
        pending: dict[int, optuna.Trial] = {}
        try:
            for number in range(job, job + min(search.n_jobs, to_go)):
                pending[number] = search.study.ask(search.space)
                pending[number].set_user_attr(PARENT_ATTR, sweep.parent_run_id)
            trials = list(pending.values())
            batch = [search.overrides(trial, config) for trial in trials]
            outcomes = sweep.launched(launcher.launch(batch, initial_job_idx=job))
            for number, outcome in enumerate(outcomes, start=job):
                _tell(search, pending[number], _outcome(outcome), number)
                del pending[number]
        except BaseException:
            # Ctrl-C, SIGTERM, a launcher's own failure: the trials whose runs were logged by
            # now are told as such; the rest ran nowhere to the end.
            _interrupted(search, sweep, pending)
            raise
        job += len(trials)
        to_go -= len(trials)
        allowed = search.max_failure_rate * search.n_trials
        if search.told["failed"] > allowed and to_go > 0:
            search.stopped = (
                f"stopped asking after {search.told['failed']} failed trials: more than "
                f"hydra.sweeper.max_failure_rate={search.max_failure_rate:g} of "
                f"{search.n_trials} trials"
            )
            break
    sweep.notes.append(summary(search))
    record(search, sweep, config)


def summary(search: Search) -> str:
    """The report's line on the study: its trials by outcome, the best, where it is kept."""
    told = search.told
    trials = sum(told.values())
    finished = told["finished"] + told["reused"]
    reused = f" ({told['reused']} reused)" if told["reused"] else ""
    line = (
        f"optuna   {trials} trial{'s' * (trials != 1)}: {finished} finished{reused}, "
        f"{told['pruned']} pruned, {told['failed']} failed; study {search.study.study_name!r}"
    )
    total = sum(map(_counts_toward_total, search.study.get_trials(deepcopy=False)))
    line += f", {total} of {search.n_trials} in all; kept in {search.shown_storage}"
    if search.stopped:
        line += f"\n         {search.stopped}"
    return line


def record(search: Search, sweep: Sweep, config: DictConfig) -> None:
    """Write the best parameters beside the sweep's files; log them and the plots to the parent."""
    from mlflow import MlflowClient

    from sweeplab.util.errors import error_summary, warn

    study = search.study
    completed = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
    if not completed:
        return
    best = study.best_trial
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_params": best.params,
        "best_value": best.value,
        "best_run_id": best.user_attrs.get(RUN_ATTR),
    }
    path = Path(str(config.hydra.sweep.dir), RESULTS_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), path)
    client = MlflowClient(sweep.tracking_uri)
    client.log_artifact(sweep.parent_run_id, str(path), OPTUNA_DIR)
    try:
        _log_plots(study, completed, client, sweep.parent_run_id, path.parent)
    except Exception as e:  # the study and the comparison matter more than its pictures
        warn(f"could not draw Optuna's plots: {error_summary(e)}")


def _log_plots(
    study: "optuna.Study",
    complete: list["optuna.trial.FrozenTrial"],
    client: Any,
    parent: str,
    folder: Path,
) -> None:
    """Optuna's optimisation history and parameter importances (over the ``complete`` trials'
    params), as PNGs on the parent run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    plots: list[tuple[str, Callable[[], Any]]] = [
        ("optimization_history.png", lambda: optuna_plots.plot_optimization_history(study))
    ]
    varied = {k for t in complete for k in t.params if len({u.params.get(k) for u in complete}) > 1}
    if len(complete) > 1 and varied:
        plots.append(("param_importances.png", lambda: optuna_plots.plot_param_importances(study)))
    for name, draw in plots:
        axes = draw()
        figure = axes.figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        target = folder / name
        figure.savefig(target, dpi=100)
        plt.close(figure)
        client.log_artifact(parent, str(target), OPTUNA_DIR)
