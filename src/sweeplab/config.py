"""Typed config schemas registered with Hydra, and the range checks Hydra cannot express."""

import dataclasses
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar
from urllib.parse import urlparse

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, OmegaConf

from sweeplab.datasets import DATASETS, max_rows, parse_end_date
from sweeplab.errors import UserError
from sweeplab.redact import REDACTED, is_secret_key, redact_uri


class ConfigError(UserError, ValueError):
    """A config value outside what sweeplab accepts; the message names key, value and rule."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        shown = redact_uri(value) if isinstance(value, str) else value
        if is_secret_key(key):
            shown = REDACTED
        super().__init__(f"{key}={shown!r} is not allowed: {allowed}")


@dataclass(frozen=True)
class Check:
    """A rule for one field: ``ok(value, node)`` says whether the value passes."""

    ok: Callable[[Any, Any], bool]
    allowed: str


def at_least(low: float, *, optional: bool = False) -> Check:
    """Values >= ``low`` (and null when ``optional``)."""
    if optional:
        return Check(lambda v, _: v is None or v >= low, f"must be >= {low} or null")
    return Check(lambda v, _: v >= low, f"must be >= {low}")


def numpy_seed(*, optional: bool = False) -> Check:
    """Seeds numpy accepts: integers from 0 to 2**32 - 1 (and null when ``optional``)."""
    high = 2**32 - 1
    if optional:
        return Check(lambda v, _: v is None or 0 <= v <= high, f"must be from 0 to {high} or null")
    return Check(lambda v, _: 0 <= v <= high, f"must be from 0 to {high}")


def between(low: float, high: float, *, closed_high: bool = False) -> Check:
    """Values in the open interval (low, high), or (low, high] when ``closed_high``."""
    if closed_high:
        return Check(lambda v, _: low < v <= high, f"must be > {low} and <= {high}")
    return Check(lambda v, _: low < v < high, f"must be > {low} and < {high}")


def not_blank() -> Check:
    """Strings with something other than whitespace in them."""
    return Check(lambda v, _: bool(str(v).strip()), "must not be empty")


def _is_date(value: Any, _: Any) -> bool:
    try:
        parse_end_date(value)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- tracking

# Stores MLflow 3 tracks to; a bare path or file: URI would pick its file store, which it refuses.
_STORE_SCHEMES = {"sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks"}


def _is_store_uri(value: Any, _: Any) -> bool:
    return value == "databricks" or urlparse(str(value)).scheme.split("+")[0] in _STORE_SCHEMES


@dataclass
class TrackingConfig:
    """Where runs are stored and how patiently the store is waited for."""

    # Tracking URI: sqlite:///path/to/mlflow.db, http://host:port, ...
    uri: str = MISSING
    # Artifact root for experiments this store creates; null lets the store decide
    # (a tracking server proxies artifacts itself).
    artifact_location: str | None = None
    # Seconds to wait for a tracking server's health check before giving up.
    connect_timeout: float = 5.0
    # Seconds MLflow waits for one HTTP request (MLFLOW_HTTP_REQUEST_TIMEOUT).
    request_timeout: int = 30
    # Retries MLflow makes on a failed HTTP request (MLFLOW_HTTP_REQUEST_MAX_RETRIES).
    max_retries: int = 2
    # Backoff between those retries: about factor * 2**retry seconds
    # (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR; MLflow's own default, 2, waits 2 s then 4 s ...).
    backoff_factor: int = 1

    CHECKS: ClassVar[dict[str, Check]] = {
        "uri": Check(
            _is_store_uri,
            "must be a database URI like sqlite:///path/to/mlflow.db "
            "or a server URL like http://127.0.0.1:8080",
        ),
        "connect_timeout": between(0, 600, closed_high=True),
        "request_timeout": at_least(1),
        "max_retries": at_least(0),
        "backoff_factor": at_least(0),
    }


# ---------------------------------------------------------------- experiment


@dataclass
class ExperimentConfig:
    """The MLflow experiment runs are grouped under, with its description and searchable tags."""

    # Experiment name; created on first use, reused afterwards.
    name: str = MISSING
    # Shown in the UI as the experiment's description (stored as mlflow.note.content).
    description: str = ""
    # Experiment tags; searchable with tags.`key` = 'value'.
    tags: dict[str, str] = field(default_factory=dict)

    CHECKS: ClassVar[dict[str, Check]] = {"name": not_blank()}


# ---------------------------------------------------------------- dataset


@dataclass
class DatasetConfig:
    """A generated dataset and how it is split into training and validation rows."""

    # Generator to call: a key of sweeplab.datasets.DATASETS.
    name: str = "apple_sales"
    # Daily rows, ending at end_date.
    n_rows: int = 5000
    # Demand on an ordinary day before effects and noise.
    base_demand: int = 1000
    # Seed of the generator's own random state.
    seed: int = 9999
    # Last day of the data: YYYY-MM-DD, or "now" for the tutorial's moving date.
    end_date: str = "2023-11-01"
    # Share of rows held out for validation.
    test_size: float = 0.2
    # Seed of the train/validation split.
    split_seed: int = 42

    CHECKS: ClassVar[dict[str, Check]] = {
        "name": Check(lambda v, _: v in DATASETS, f"must be one of {sorted(DATASETS)}"),
        "n_rows": at_least(2),
        "base_demand": at_least(0),
        "seed": numpy_seed(),
        "end_date": Check(_is_date, "must be an ISO date like 2023-11-01 (no time zone), or 'now'"),
        "test_size": between(0, 1),
        "split_seed": numpy_seed(),
    }


# ---------------------------------------------------------------- models


@dataclass
class ModelConfig:
    """Base of every model schema: the schema's type decides which estimator is built."""

    # Label used in run names and logged as the param `model`.
    name: str = MISSING

    CHECKS: ClassVar[dict[str, Check]] = {"name": not_blank()}


@dataclass
class RandomForestConfig(ModelConfig):
    """sklearn.ensemble.RandomForestRegressor; defaults are scikit-learn's."""

    name: str = "random_forest"
    n_estimators: int = 100
    max_depth: int | None = None
    min_samples_split: int = 2
    min_samples_leaf: int = 1
    bootstrap: bool = True
    oob_score: bool = False
    random_state: int | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        **ModelConfig.CHECKS,
        "n_estimators": at_least(1),
        "max_depth": at_least(1, optional=True),
        "min_samples_split": at_least(2),
        "min_samples_leaf": at_least(1),
        "oob_score": Check(lambda v, node: not v or node.bootstrap, "needs bootstrap=true"),
        "random_state": numpy_seed(optional=True),
    }


@dataclass
class GradientBoostingConfig(ModelConfig):
    """sklearn.ensemble.GradientBoostingRegressor; defaults are scikit-learn's."""

    name: str = "gradient_boosting"
    n_estimators: int = 100
    learning_rate: float = 0.1
    max_depth: int | None = 3
    min_samples_split: int = 2
    min_samples_leaf: int = 1
    subsample: float = 1.0
    random_state: int | None = None

    CHECKS: ClassVar[dict[str, Check]] = {
        **ModelConfig.CHECKS,
        "n_estimators": at_least(1),
        "learning_rate": Check(lambda v, _: v > 0, "must be > 0"),
        "max_depth": at_least(1, optional=True),
        "min_samples_split": at_least(2),
        "min_samples_leaf": at_least(1),
        "subsample": between(0, 1, closed_high=True),
        "random_state": numpy_seed(optional=True),
    }


@dataclass
class RidgeConfig(ModelConfig):
    """sklearn.linear_model.Ridge; defaults are scikit-learn's."""

    name: str = "ridge"
    alpha: float = 1.0
    fit_intercept: bool = True

    CHECKS: ClassVar[dict[str, Check]] = {**ModelConfig.CHECKS, "alpha": at_least(0)}


MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "random_forest": RandomForestConfig,
    "gradient_boosting": GradientBoostingConfig,
    "ridge": RidgeConfig,
}


# ---------------------------------------------------------------- sweep


class Metric(Enum):
    """Validation metrics every run logs (see sweeplab.train.evaluate)."""

    mae = "mae"
    mse = "mse"
    rmse = "rmse"
    r2 = "r2"


METRICS = tuple(m.value for m in Metric)


class Direction(Enum):
    """Whether a smaller or a larger metric is better."""

    minimize = "minimize"
    maximize = "maximize"


@dataclass
class SweepConfig:
    """How the jobs of a multirun are ranked and resumed."""

    # Metric that ranks the jobs; the entrypoint returns it, so optimising sweepers
    # (e.g. Optuna) optimise it.
    metric: Metric = Metric.rmse
    # minimize | maximize
    direction: Direction = Direction.minimize
    # Reuse a FINISHED run of the experiment with the same config fingerprint instead of
    # training again; re-running an interrupted sweep then trains only what is missing.
    skip_finished: bool = False


# ---------------------------------------------------------------- top level


@dataclass
class Config:
    """The whole run: one option of each group plus top-level knobs."""

    tracking: TrackingConfig = MISSING
    experiment: ExperimentConfig = MISSING
    dataset: DatasetConfig = MISSING
    # Typed by each model option's own schema (see MODEL_SCHEMAS).
    model: Any = MISSING
    sweep: SweepConfig = field(default_factory=SweepConfig)
    # Run name; null derives one from the model and the command-line overrides.
    run_name: str | None = None


def launch_dir() -> str:
    """The directory the user launched from, even if Hydra changed into a run directory."""
    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.cwd)
    return os.getcwd()


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore and sweeplab's resolvers with OmegaConf."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name, schema in MODEL_SCHEMAS.items():
        # YAML options extend these through `- /<name>_schema@_here_`; stored outside any
        # group so `--help` lists only real options.
        cs.store(name=f"{name}_schema", node=schema)
    if not OmegaConf.has_resolver("sweeplab.launch_dir"):
        OmegaConf.register_new_resolver("sweeplab.launch_dir", launch_dir)
    # sweeplab's hydra/launcher/ray.yaml replaces the Ray plugin's config of that name on
    # purpose, and Hydra validating it against the plugin's schema is wanted, not a mistake.
    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/ray' is validated against ConfigStore schema"
    )


def _check_keys(prefix: str, node: DictConfig, schema: Any) -> None:
    # `+key=value` overrides add keys even to typed nodes; refuse what the schema lacks.
    if not dataclasses.is_dataclass(schema):
        return
    known = [f.name for f in dataclasses.fields(schema)]
    for key in map(str, node):
        # Callbacks see Hydra's own node too; task functions do not.
        if key not in known and not (key == "hydra" and not prefix):
            name = f"{prefix}.{key}" if prefix else key
            where = f"'{prefix}'" if prefix else "the config"
            raise ConfigError(name, node[key], f"unknown key in {where}: known keys are {known}")


def _check_node(prefix: str, node: DictConfig) -> None:
    schema = OmegaConf.get_type(node)
    _check_keys(prefix, node, schema)
    for key, check in getattr(schema, "CHECKS", {}).items():
        value = node[key]
        if not check.ok(value, node):
            raise ConfigError(f"{prefix}.{key}", value, check.allowed)


def validate_destination(cfg: DictConfig) -> None:
    """Raise ConfigError for a bad store, experiment or sweep value: what a sweep parent uses."""
    _check_keys("", cfg, OmegaConf.get_type(cfg))
    for group in ("tracking", "experiment", "sweep"):
        _check_node(group, cfg[group])


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value a composed config may not have."""
    validate_destination(cfg)
    _check_node("dataset", cfg.dataset)
    # end_date already passed its own check above, so it parses.
    end = parse_end_date(cfg.dataset.end_date)
    if cfg.dataset.n_rows > max_rows(end):
        raise ConfigError(
            "dataset.n_rows",
            cfg.dataset.n_rows,
            f"must be <= {max_rows(end)}: more days would reach before year 1 "
            f"from dataset.end_date={cfg.dataset.end_date}",
        )
    schema = OmegaConf.get_type(cfg.model)
    if schema not in MODEL_SCHEMAS.values():
        raise ConfigError(
            "model",
            OmegaConf.to_container(cfg.model),
            "a model option must extend a model schema: start its YAML with "
            "`defaults: [<model>, _self_]` to start from a shipped model, "
            f"<model> one of {sorted(MODEL_SCHEMAS)}",
        )
    _check_node("model", cfg.model)


def with_fixed_end_date(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` whose ``dataset.end_date`` is written one way: ``2023-11-01``.

    ``now`` becomes the moment it stands for (with its time); other ISO spellings of a day
    (``20231101``) become ``YYYY-MM-DD``. Params, fingerprint and data then all name the
    same, replayable end date, and equal dates reuse each other's runs.
    """
    fixed = cfg.copy()
    end = parse_end_date(fixed.dataset.end_date)
    has_time = end.time() != datetime.min.time()
    fixed.dataset.end_date = (
        end.isoformat(timespec="seconds") if has_time else end.date().isoformat()
    )
    return fixed


def hyperparameters(model: DictConfig) -> dict[str, Any]:
    """The estimator's keyword arguments: every model field but its label."""
    return {str(k): v for k, v in model.items() if k != "name"}
