"""The first step of a run: from a composed config to everything it will do, before MLflow.

``make`` validates the config, checks every ``_target_`` against the allow-list, reads the data
once, splits it, builds the unfitted estimator and names the run. Everything wrong with the
input fails here, as one line, before any store is touched.
"""

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.config import schema
from sweeplab.data import Data, Source, source_of
from sweeplab.data.base import resolved_items
from sweeplab.model import estimators, splits, tasks
from sweeplab.model.splits import Split
from sweeplab.model.tasks import TASKS, Task
from sweeplab.tracking.tags import DATA_DIGEST_TAG, ESTIMATOR_TAG, FINGERPRINT_TAG, TASK_TAG
from sweeplab.util import allow, env
from sweeplab.util.checks import ConfigError, raise_all
from sweeplab.util.recent import Recent
from sweeplab.util.redact import scrub_text

# Overrides that say where to log rather than what to train stay out of run names.
_NOT_IN_RUN_NAME = ("tracking", "experiment", "run_name", "sweep", "hydra", "model=", "+model=")

# What a logged model's name may not hold: what MLflow refuses (/ : . % " ', see
# mlflow.utils.validation) and what `runs:/<id>/<name>` URIs do not survive (spaces,
# brackets, commas); and a length the name column of every backend store holds.
_NOT_IN_MODEL_NAME = re.compile(r"[^A-Za-z0-9_=+-]+")
_MAX_MODEL_NAME = 200


@dataclass(frozen=True)
class Plan:
    """What one run trains, on what, how it is scored, and how it is named."""

    cfg: DictConfig
    overrides: list[str]
    source: Source
    data: Data
    split: Split
    task: Task
    # The metric a sweep ranks by (and the entrypoint returns), and its direction.
    metric: str
    direction: str
    # Unfitted; a Pipeline when some features are one-hot encoded.
    estimator: Any
    # The estimator's class, as the config's `_target_` names it.
    target: str
    model_name: str
    params: dict[str, Any]
    fingerprint: str
    run_name: str
    # The logged model's name: its kind and what sets this run apart.
    logged_model_name: str

    def tags(self) -> dict[str, str]:
        """Tags that say what the run is: fingerprint, task, estimator class, data digest.

        The data digest stands for the rows and, for any split but the tutorial's, the folds
        made of them: runs are compared only on the same folds.
        """
        return {
            FINGERPRINT_TAG: self.fingerprint,
            TASK_TAG: self.task.name,
            ESTIMATOR_TAG: self.target,
            DATA_DIGEST_TAG: splits.digest(self.data.digest, self.cfg.split)[:16],
        }


def shown_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that change what is trained, ``model.`` prefixes dropped."""
    return [
        o.removeprefix("+").removeprefix("model.")
        for o in overrides
        if not o.startswith(_NOT_IN_RUN_NAME)
    ]


def named(label: str, overrides: Sequence[str]) -> str:
    """``label`` followed by the overrides that changed what is trained (secrets masked)."""
    return " ".join([label, *shown_overrides([scrub_text(o) for o in overrides])])


def short_forms(swept: Sequence[str]) -> dict[str, str]:
    """A short form of each swept key for run names: ``max_depth`` -> ``md``.

    The UI's name column shows about 20 characters: ``max_depth=9 n_estimators=100`` and
    ``max_depth=9 n_estimators=200`` read alike there, ``md=9 ne=100`` and ``md=9 ne=200`` do
    not. A key of several words becomes their initials, a one-word key stays itself; keys
    whose short forms would clash keep their own names. The params keep the full keys.
    """
    full = {key: key.rpartition(".")[2] for key in swept if key != "model"}
    short = {}
    for key, name in full.items():
        words = [w for w in name.split("_") if w]
        short[key] = "".join(w[0] for w in words) if len(words) > 1 else name
    clashing = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {key: (full[key] if s in clashing else s) for key, s in short.items()}


def distinguishing(overrides: Sequence[str], swept: Sequence[str]) -> list[tuple[str, str]]:
    """``(key, shown)`` for each of a job's overrides of a ``swept`` key, in the job's order.

    A swept model shows as its name (``ridge``), any other key by its short form (``md=3``).
    """
    shown = []
    forms = short_forms(swept)
    for line in overrides:
        key, sep, value = scrub_text(line).lstrip("+~").partition("=")
        if sep and key in swept:
            shown.append((key, value if key == "model" else f"{forms[key]}={value}"))
    return shown


def names(model_name: str, overrides: Sequence[str], swept: Sequence[str]) -> tuple[str, str]:
    """A run's name and its logged model's, each with what sets the run apart.

    In a sweep (``swept`` keys given) the run's name is only its values of the swept keys,
    so that the UI's narrow name column tells the jobs apart; the model's name always starts
    with the model's kind, and holds only letters, digits and ``_ = + -`` (any run of other
    characters becomes one ``-``), so that every MLflow URI form names it:
    ``random_forest-max_depth=3`` for ``random_forest max_depth=3``.
    """
    own = named(model_name, overrides)
    parts = distinguishing(overrides, swept) if swept else []
    run_name = " ".join(shown for _, shown in parts) or own
    # The model's name keeps the full keys: it is read where there is room (its page, URIs).
    full = [f"{key.rpartition('.')[2]}={shown.partition('=')[2]}" for key, shown in parts
            if key != "model"]  # fmt: skip
    model = " ".join([model_name, *full])
    safe = _NOT_IN_MODEL_NAME.sub("-", model if parts else own).strip("-")
    return run_name, safe[:_MAX_MODEL_NAME]


def default_run_name(cfg: DictConfig, overrides: Sequence[str]) -> str:
    """The model's name followed by the overrides that changed what is trained."""
    return named(estimators.model_label(cfg.model), overrides)


def ranking(sweep: DictConfig, task: Task | None) -> tuple[str, str]:
    """The metric and direction that rank runs of ``task``: the config's, else the task's own.

    With no task (a sweeper that picks each job's data), sweep.metric must be set.
    """
    assert task is not None or sweep.metric is not None
    metric, direction = tasks.ranking(
        sweep.metric.value if sweep.metric is not None else None,
        sweep.direction.value if sweep.direction is not None else None,
        task=task,
    )
    if task is not None and metric not in task.metrics:
        raise ConfigError(
            "sweep.metric", metric, f"the dataset's task, {task.name}, has {list(task.metrics)}"
        )
    return metric, direction


def fingerprint(cfg: DictConfig, source: Source, data: Data) -> str:
    """A stable hash of what decides a run's result: the data's content and the config.

    Where the data is (a file's path) is left out: the content digest stands for it, so a
    changed file changes the fingerprint and a moved one does not. The tutorial's split is
    left out too, so runs made before splits were a choice keep their fingerprints.
    """
    dataset = {
        k: v
        for k, v in resolved_items(cfg.dataset).items()
        if k not in source.locators and not (k in source.added_later and v == source.added_later[k])
    }
    decisive: dict[str, Any] = {
        "dataset": dataset,
        "data": data.digest,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
    }
    if not splits.is_default(cfg.split):
        decisive["split"] = splits.definition(cfg.split)
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def task_of(cfg: DictConfig) -> Task:
    """The task of the config's dataset, as cheaply as its source can tell."""
    schema.validate(cfg)
    source = source_of(cfg.dataset)
    assert source is not None  # validate() refuses datasets without a source
    return TASKS[source.task(schema.with_normalized_dataset(cfg).dataset)]


# The last two datasets (and their splits) this process read, by what decides them. A
# sweep's jobs in one process mostly train on the same data: generating or reading it, hashing
# it and splitting it again for each job cost more than a small fit. Two, so that a sweep over
# two datasets does not read each for every job.
_recent_data: Recent[Data] = Recent(2)
_recent_splits: Recent[Split] = Recent(2)


def _data_key(dataset: DictConfig, source: Source) -> str:
    """What decides the data: the dataset's settings and, for a file, its size and mtime."""
    items = resolved_items(dataset)
    files: dict[str, list[int] | None] = {}
    for locator in source.locators:
        try:
            stat = os.stat(str(items[locator]))
            files[locator] = [stat.st_size, stat.st_mtime_ns]
        except (KeyError, OSError, TypeError):
            files[locator] = None  # the source's own load says what is wrong
    return json.dumps([source.name, items, files], sort_keys=True, default=str)


def make(cfg: DictConfig, overrides: Sequence[str] = ()) -> Plan:
    """Validate ``cfg``, read its data and build its estimator; raise UserError on bad input."""
    schema.validate(cfg)
    allow.check_config(cfg)
    cfg = schema.with_normalized_dataset(cfg)
    source = source_of(cfg.dataset)
    assert source is not None  # validate() refuses datasets without a source
    key = _data_key(cfg.dataset, source)
    data = _recent_data.get(key, lambda: source.load(cfg.dataset))
    if str(cfg.split.kind) == "time" and cfg.split.order is None and data.order is not None:
        # Logged, fingerprinted and shown as the column it is (apple_sales: date).
        cfg.split.order = data.order
    task = TASKS[data.task]
    # Every problem of the data and of the model for it, found in one pass: one line each.
    problems = list(data.problems)
    try:
        metric, direction = ranking(cfg.sweep, task)
    except ConfigError as e:
        problems.append(e)
        metric, direction = tasks.ranking(None, task=task)
    try:
        estimator, target = estimators.build(
            cfg.model,
            task,
            data.categorical,
            width=len(data.features),
            max_categories=data.max_categories,
        )
    except ConfigError as e:
        problems.append(e)
        try:
            # The model alone, for the checks below: its other problems come in this pass too.
            estimator, target = estimators.build(cfg.model, task, {})
        except ConfigError:
            raise_all(problems)
            raise
    if metric in ("log_loss", "roc_auc") and not hasattr(estimator, "predict_proba"):
        problems.append(ConfigError(
            "sweep.metric", metric, f"{target} gives no class probabilities (predict_proba)"
        ))  # fmt: skip
    # Encoders give missing values a category of their own; numbers stay NaN.
    gaps = [c for c in data.features if c not in data.categorical and data.frame[c].isna().any()]
    if gaps and not estimators.accepts_missing(estimator):
        takers = ", ".join(estimators.shipped_for(task, takes_missing=True))
        problems.append(ConfigError(
            "model", estimators.display_name(cfg.model, target),
            f"{target} does not take missing values, and column(s) {gaps} of {data.name} have "
            f"some: pick a model that does ({takers}), fill them in the file, or leave the "
            "columns out with dataset.drop",
        ))  # fmt: skip
    if task.name == "classification":
        classes = list(data.frame[data.target].dropna().unique())
        if estimators.refuses_classes(estimator, classes):
            others = [m for m in estimators.shipped_for(task) if m != "xgboost"]
            problems.append(ConfigError(
                "model", estimators.display_name(cfg.model, target),
                f"{target} takes classes numbered 0 to {len(classes) - 1} only, and column "
                f"{data.target!r} of {data.name} holds {sorted(map(str, classes))[:5]}: pick "
                f"{', '.join(others)}, or number the classes in the file",
            ))  # fmt: skip
    raise_all(problems)
    rows = _recent_splits.get(
        json.dumps([key, splits.definition(cfg.split)], sort_keys=True),
        lambda: splits.make(
            data,
            cfg.split,
            holdout=(cfg.dataset.test_size, cfg.dataset.split_seed),
            stratify=task.stratify,
        ),
    )
    name = estimators.display_name(cfg.model, target)
    swept = env.swept_keys()
    run_name, logged_model_name = names(name, overrides, swept)
    params = {
        **estimators.hyperparameters(cfg.model),
        "model": name,
        **{f"dataset.{k}": v for k, v in resolved_items(cfg.dataset).items()},
        **{f"split.{k}": v for k, v in splits.definition(cfg.split).items()},
    }
    return Plan(
        cfg=cfg,
        overrides=list(overrides),
        source=source,
        data=data,
        split=rows,
        task=task,
        metric=metric,
        direction=direction,
        estimator=estimator,
        target=target,
        model_name=name,
        params=params,
        fingerprint=fingerprint(cfg, source, data),
        run_name=cfg.run_name or run_name,
        logged_model_name=logged_model_name,
    )
