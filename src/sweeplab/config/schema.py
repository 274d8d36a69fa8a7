"""Typed config schemas registered with Hydra, and the range checks Hydra cannot express."""

import dataclasses
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar
from urllib.parse import urlparse

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from sweeplab.config import optuna_conf
from sweeplab.data import SOURCES, source_of
from sweeplab.model.splits import SPLITS
from sweeplab.model.tasks import Direction, Metric
from sweeplab.util.checks import Check, ConfigError, at_least, between, not_blank
from sweeplab.util.launch import launch_dir

__all__ = ["ConfigError", "Direction", "Metric"]


# Stores MLflow 3 tracks to; a bare path or file: URI would pick its file store, which it refuses.
_STORE_SCHEMES = {"sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks"}


def _is_store_uri(value: Any, _: Any) -> bool:
    return value == "databricks" or urlparse(str(value)).scheme.split("+")[0] in _STORE_SCHEMES


# ---------------------------------------------------------------- tracking


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


# ---------------------------------------------------------------- sweep


class Promote(Enum):
    """When a newly registered version takes the alias."""

    better = "better"
    always = "always"


@dataclass
class SweepConfig:
    """How the jobs of a multirun are ranked and resumed."""

    # Metric that ranks the jobs; the entrypoint returns it, so optimising sweepers
    # (e.g. Optuna) optimise it. null: the task's own (rmse, or accuracy for classification).
    metric: Metric | None = None
    # minimize | maximize; null: the metric's own sense (rmse minimize, accuracy maximize).
    direction: Direction | None = None
    # Reuse a FINISHED run of the experiment with the same config fingerprint instead of
    # training again; re-running an interrupted sweep then trains only what is missing.
    skip_finished: bool = False
    # Register the best model (a sweep's best job, or a single run's model) as a new
    # version of this registered model, created when missing; null: register nothing.
    register: str | None = None
    # The alias that marks the registered model's best version: models:/NAME@champion.
    alias: str = "champion"
    # better: move the alias only when the new version beats the one it points at, on the
    # same metric, direction and data; always: move it regardless.
    promote: Promote = Promote.better
    # With folds: a job (or a new version) beats another only when a paired test on the same
    # folds gives p < alpha (Nadeau and Bengio's corrected t-test); otherwise they are tied.
    alpha: float = 0.05

    CHECKS: ClassVar[dict[str, Check]] = {
        "alpha": between(0, 1),
        "register": Check(
            lambda v, _: (
                v is None
                or (
                    bool(str(v).strip())
                    and "/" not in str(v)
                    and not str(v).endswith(".sweeplab-lock")
                )
            ),
            "must be a registered model name (not empty, no '/', not ending in "
            "'.sweeplab-lock', which sweeplab's registry locks use) or null",
        ),
        "alias": Check(
            lambda v, _: (
                bool(re.fullmatch(r"[a-z0-9_-]{1,255}", str(v)))
                and str(v) != "latest"
                and not re.fullmatch(r"v\d+", str(v))
            ),
            "must be lower-case letters, digits, '_' or '-' (not 'latest' or v<number>, which "
            "MLflow keeps for versions)",
        ),
    }


# ---------------------------------------------------------------- top level


@dataclass
class Config:
    """The whole run: one option of each group plus top-level knobs."""

    tracking: TrackingConfig = MISSING
    experiment: ExperimentConfig = MISSING
    # Typed by each dataset option's source schema (see sweeplab.data).
    dataset: Any = MISSING
    # `_target_` (an allowed estimator class, or one per task) and its hyperparameters.
    model: Any = MISSING
    # Typed by each split option's schema (see sweeplab.model.splits): holdout, kfold, time, group.
    split: Any = MISSING
    sweep: SweepConfig = field(default_factory=SweepConfig)
    # Run name; null derives one from the model and the command-line overrides.
    run_name: str | None = None


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore and sweeplab's resolvers with OmegaConf."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name, source in SOURCES.items():
        # dataset/*.yaml options extend these through `- /<name>_dataset_schema@_here_`;
        # stored outside any group so `--help` lists only real options.
        cs.store(name=f"{name}_dataset_schema", node=source.schema)
    for name, kind in SPLITS.items():
        # split/*.yaml options extend these, as datasets extend theirs.
        cs.store(name=f"{name}_split_schema", node=kind.schema)
    # The Optuna sweeper's and its samplers' schemas, under sweeplab's own names: the options
    # (sweeplab/conf/hydra/sweeper/) extend them, in sweeplab's config folder alone.
    cs.store(name=optuna_conf.schema_name(), node=optuna_conf.OptunaSweeperConf)
    for name, node in optuna_conf.SAMPLERS.items():
        cs.store(name=optuna_conf.schema_name(name), node=node)
    for name, node in optuna_conf.PRUNERS.items():
        cs.store(name=optuna_conf.pruner_schema_name(name), node=node)
    if not OmegaConf.has_resolver("sweeplab.launch_dir"):
        OmegaConf.register_new_resolver("sweeplab.launch_dir", launch_dir)
    if not OmegaConf.has_resolver("sweeplab.data_name"):
        OmegaConf.register_new_resolver("sweeplab.data_name", data_name)


def experiment_named_after_data(cfg: DictConfig) -> bool:
    """Whether the experiment's name comes from the data (no experiment named by the user)."""
    experiment = OmegaConf.to_container(cfg.experiment, resolve=False)
    return isinstance(experiment, dict) and "sweeplab.data_name" in str(experiment.get("name"))


def data_name(*, _root_: DictConfig) -> str:
    """The config's data by name ('customers' for data/customers.csv, 'iris'), from its config
    alone; the source's own name while the config lacks it (an unset dataset.path)."""
    dataset = _root_.dataset
    source = source_of(dataset)
    if source is None:
        return "data"
    return source.label(dataset) or source.name


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
    for key in map(str, node):
        if OmegaConf.is_missing(node, key):
            raise ConfigError(
                f"{prefix}.{key}",
                MISSING,
                f"give it a value: {prefix}.{key}=... on the command line, or in a config file",
            )
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
    """Raise ConfigError for the first value a composed config may not have.

    The model's hyperparameters are the estimator's to check (sweeplab.model.estimators).
    """
    validate_destination(cfg)
    source = source_of(cfg.dataset)
    if source is None:
        raise ConfigError(
            "dataset",
            OmegaConf.to_container(cfg.dataset),
            "a dataset option must extend a source's schema: start its YAML with "
            f"`defaults: [<source>, _self_]`, <source> one of {sorted(SOURCES)}",
        )
    _check_node("dataset", cfg.dataset)
    source.check(cfg.dataset)
    if not isinstance(cfg.model, DictConfig) or "_target_" not in cfg.model:
        raise ConfigError(
            "model",
            OmegaConf.to_container(cfg.model) if isinstance(cfg.model, DictConfig) else cfg.model,
            "a model option needs `_target_: package.EstimatorClass` (or one per task) and its "
            "hyperparameters, or `defaults: [<shipped model>, _self_]` to start from one",
        )
    if not isinstance(cfg.split, DictConfig) or OmegaConf.get_type(cfg.split) not in [
        kind.schema for kind in SPLITS.values()
    ]:
        raise ConfigError(
            "split",
            OmegaConf.to_container(cfg.split) if isinstance(cfg.split, DictConfig) else cfg.split,
            f"a split option must extend a kind's schema: start its YAML with "
            f"`defaults: [<kind>, _self_]`, <kind> one of {sorted(SPLITS)}",
        )
    _check_node("split", cfg.split)
    name = cfg.model.get("name")
    if name is not None and not str(name).strip():
        raise ConfigError("model.name", name, "must not be empty")


def with_normalized_dataset(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` whose dataset values are written one way (e.g. end dates)."""
    fixed = cfg.copy()
    source = source_of(fixed.dataset)
    if source is not None:
        source.normalize(fixed.dataset)
    return fixed
