"""Talking to MLflow: connect to the store, get or create the experiment, log one run."""

import functools
import logging
import math
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.entities import DatasetInput, Experiment, InputTag, Metric, Param, Run
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.types import ColSpec, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from omegaconf import DictConfig
from sqlalchemy.exc import SQLAlchemyError

from sweeplab import __version__
from sweeplab.tracking import store
from sweeplab.tracking.entries import Setup
from sweeplab.tracking.places import is_server, wait_for_server
from sweeplab.tracking.store import sqlite_path
from sweeplab.tracking.tags import (
    EXPERIMENT_KIND_TAG,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    NONFINITE_TAG,
    VERSION_TAG,
)
from sweeplab.util.errors import TrackingError, warn
from sweeplab.util.redact import is_secret_key, redact_uri

MODEL_TRAINING_KIND = "custom_model_development"


def connect(tracking: DictConfig) -> MlflowClient:
    """Point MLflow at the configured store and open it, so it fails here with a clear message."""
    uri = str(tracking.uri)
    if is_server(uri):
        # urllib3 warns about every retry, with its whole exception: a dead server mid-sweep
        # would flood the console; the failure itself is reported once, in one line.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        wait_for_server(uri, float(tracking.connect_timeout))
    mlflow.set_tracking_uri(uri)
    if sqlite_path(uri):
        return store.open_sqlite(uri)  # under its lock: a fresh file may need migrating
    try:
        client = MlflowClient(uri)
        client.search_experiments(max_results=1)
    except (OSError, MlflowException, SQLAlchemyError) as e:
        raise TrackingError(store.cannot_open(uri, e)) from None
    return client


def ensure_experiment(
    client: MlflowClient, experiment: DictConfig, artifact_location: str | None
) -> Experiment:
    """Get the named experiment or create it, and bring its tags in line with the config.

    ``artifact_location`` is where a local store puts a new experiment's artifacts; a server
    chooses (and proxies) its own.
    """
    try:
        return _ensure_experiment(client, experiment, artifact_location)
    except MlflowException as e:
        raise TrackingError(
            f"cannot use experiment {experiment.name!r} in {redact_uri(str(client.tracking_uri))}: "
            f"{e.message}"
        ) from None


def _ensure_experiment(
    client: MlflowClient, experiment: DictConfig, artifact_location: str | None
) -> Experiment:
    uri = str(client.tracking_uri)
    tags = {}
    for key, value in experiment.tags.items():
        if is_secret_key(str(key)):
            warn(f"experiment.tags.{key} looks like a secret: not set as an MLflow tag "
                  "(pass credentials through MLFLOW_TRACKING_TOKEN and friends)")  # fmt: skip
            continue
        tags[str(key)] = str(value)
    if experiment.description:
        tags["mlflow.note.content"] = str(experiment.description)
    # MLflow 3's UI opens an experiment without a kind as a GenAI one ("No data available");
    # the experiment's config may choose another kind.
    tags.setdefault(EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    existing = client.get_experiment_by_name(experiment.name)
    if existing is None:
        try:
            location = None if is_server(uri) else _as_uri(artifact_location)
            client.create_experiment(experiment.name, artifact_location=location, tags=tags)
        except MlflowException as e:
            # Another process created it between our lookup and our create.
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        existing = client.get_experiment_by_name(experiment.name)
        if existing is None:
            raise TrackingError(f"experiment {experiment.name!r} vanished right after creation")
    elif existing.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {experiment.name!r} is deleted in this store: restore it with "
            f"`MLFLOW_TRACKING_URI={redact_uri(uri)} mlflow experiments restore "
            f"--experiment-id {existing.experiment_id}` or choose another experiment.name"
        )
    if existing.artifact_location.startswith("mlflow-artifacts:") and not is_server(uri):
        raise TrackingError(
            f"experiment {experiment.name!r} keeps its artifacts on a tracking server "
            f"({existing.artifact_location}), which a local store cannot write to: "
            "log to it through the server (tracking=server) or choose another experiment.name"
        )
    for key, value in tags.items():
        if existing.tags.get(key) != value:
            once_more_if_raced(
                functools.partial(client.set_experiment_tag, existing.experiment_id, key, value)
            )
    return client.get_experiment(existing.experiment_id)


def _as_uri(location: str | None) -> str | None:
    """A plain path as an absolute file: URI; URIs (s3://, mlflow-artifacts:/) unchanged."""
    if location is None or urlparse(location).scheme:
        return location
    return Path(location).resolve().as_uri()


def git_tags(directory: str) -> dict[str, str]:
    """The commit and dirty flag of the git checkout at ``directory``, if it is one."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", directory, *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # Untracked files count (a new config file changes the run), except what runs write.
        dirty = bool(git("status", "--porcelain", "--", ":/", ":(exclude)outputs"))
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {
        # Overrides MLflow's own guess, the checkout of the `sweeplab` script.
        "mlflow.source.git.commit": commit,
        GIT_COMMIT_TAG: commit,
        GIT_DIRTY_TAG: str(dirty).lower(),
    }


def run_tags(directory: str) -> dict[str, str]:
    """Provenance tags every run carries, sweep parents included: version and git state."""
    return {VERSION_TAG: __version__, **git_tags(directory)}


def finished_run(client: MlflowClient, experiment: Experiment, fingerprint: str) -> Run | None:
    """The latest FINISHED run in ``experiment`` whose config has this fingerprint, if any."""
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.`sweeplab.config_fingerprint` = '{fingerprint}' "
            "AND attributes.status = 'FINISHED'"
        ),
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


# Rows a dataset's column types are read from (see dataset_schema).
_SCHEMA_SAMPLE = 1000


def dataset_schema(frame: pd.DataFrame) -> Schema:
    """The frame's MLflow schema, as MLflow infers it, without a Python loop over every value.

    MLflow checks each value of each column for missing ones in Python: ~5 s for 200,000 rows
    of 21 columns. Types come from the columns' dtypes (text columns: from the first rows);
    whether a column is required comes from a vectorised check of every value.
    """
    sample = infer_signature(frame.head(_SCHEMA_SAMPLE)).inputs
    return Schema(
        [
            ColSpec(spec.type, spec.name, required=bool(frame[spec.name].notna().all()))
            for spec in sample.inputs
        ]
    )


def dataset(
    frame: pd.DataFrame, name: str, target: str, source: str | None = None
) -> PandasDataset:
    """A DataFrame as an MLflow dataset (name, source, digest, schema), ready to log."""
    made: PandasDataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
        frame, source=source, name=name, targets=target
    )
    made.schema = dataset_schema(frame)  # MLflow's own would infer it lazily, slowly
    return made


def log_datasets(
    client: MlflowClient, run_id: str, datasets: Sequence[PandasDataset], contexts: Sequence[str]
) -> None:
    """Record datasets as inputs of run ``run_id``, each under its context, in one request."""
    inputs = [  # as mlflow.log_inputs makes them
        DatasetInput(
            dataset=made._to_mlflow_entity(),
            tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)],
        )
        for made, context in zip(datasets, contexts, strict=True)
    ]
    once_more_if_raced(lambda: client.log_inputs(run_id, inputs))


# A database's unique-key error, as MLflow's server passes it on (PostgreSQL, MySQL, sqlite).
_DUPLICATE_KEY = re.compile(r"UniqueViolation|duplicate key|Duplicate entry|UNIQUE constraint")


def once_more_if_raced(write: Callable[[], object]) -> None:
    """Call ``write``; again if a concurrent writer inserted the same row first.

    MLflow's store checks whether a dataset or an experiment tag exists, then inserts it. On
    PostgreSQL two runs of one experiment doing that at once both miss, and the slower one
    fails with a unique-key violation (1 sweep in 4 of 8 Ray jobs here). The second call
    finds the winner's row and only links to it or updates it.
    """
    try:
        write()
    except MlflowException as e:
        if not _DUPLICATE_KEY.search(str(e)):
            raise
        write()


def log_model(
    run_id: str,
    experiment_id: str,
    model: Any,
    X_example: pd.DataFrame,
    predictions: Any,  # the model's, for X_example's rows
    *,
    params: dict[str, str],
    name: str = "model",
    with_example: bool = True,
) -> str:
    """Log a fitted model with its signature (and ``X_example``) to run ``run_id``; return its id.

    The model (MLflow's LoggedModel) carries ``params``, the run's params as logged.

    LightGBM and XGBoost estimators go through MLflow's own flavor for them; everything else
    (pipelines included) through scikit-learn's, serialised with skops, trusting exactly the
    types the model holds.
    """
    import importlib

    from sweeplab.model import estimators

    # Made here, not by log_model: without an active run MLflow would file it under the
    # process's default experiment, and read the run's params back for it.
    made = mlflow.initialize_logged_model(
        name=name, source_run_id=run_id, params=params, experiment_id=experiment_id
    )
    common: dict[str, Any] = {
        "run_id": run_id,  # on to MLflow's Model.log
        "model_id": made.model_id,
        "name": name,
        "signature": infer_signature(X_example, predictions),
        "input_example": X_example if with_example else None,
    }
    # Explicit requirements skip MLflow's ~2.5 s inference subprocess; they name exactly
    # what the model needs to load.
    library = estimators.library_of(model)
    if library is not None:
        flavor = importlib.import_module(library.flavor)
        base = flavor.get_default_pip_requirements()
        info = flavor.log_model(
            **{library.model_argument: model},
            pip_requirements=estimators.requirements(model, base),
            **common,
        )
    else:
        base = mlflow.sklearn.get_default_pip_requirements(include_skops=True)
        info = mlflow.sklearn.log_model(
            model,
            serialization_format="skops",
            skops_trusted_types=estimators.skops_trusted_types(model),
            pip_requirements=estimators.requirements(model, base),
            **common,
        )
    return str(info.model_id)


def model_uri_of(run: Run) -> str:
    """The URI of the model run ``run`` logged: ``models:/<id>``, whatever its name."""
    outputs = run.outputs.model_outputs if run.outputs else []
    return f"models:/{outputs[0].model_id}" if outputs else f"runs:/{run.info.run_id}/model"


def log_config(client: MlflowClient, run_id: str, setup: Setup) -> None:
    """Store the resolved config and the command-line overrides as artifacts of run ``run_id``.

    Secrets are masked (sweeplab.tracking.entries.Setup masked them).
    """
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # both files in one upload
        Path(folder, "config.yaml").write_text(setup.config_yaml)
        Path(folder, "overrides.yaml").write_text(setup.overrides_yaml)
        client.log_artifacts(run_id, folder, "config")


# MLflow's rules for param and metric keys (mlflow.utils.validation) and its value limit.
_KEY_CHARACTERS = re.compile(r"[^\w.\- :]")
_MAX_KEY = 250
_MAX_PARAM_VALUE = 6000


def mlflow_key(key: str) -> str:
    """``key`` as MLflow accepts it: other characters (slashes too) become ``_``."""
    name = _KEY_CHARACTERS.sub("_", key)[:_MAX_KEY]
    # MLflow refuses names that resolve to another path: ".", "..", "a/../b".
    return "_" + name[1:] if name.startswith(".") else name


def params_as_logged(client: MlflowClient, run_id: str, params: dict[str, Any]) -> dict[str, str]:
    """``params`` as MLflow takes them: keys made valid, over-long values kept whole elsewhere.

    A value over MLflow's 6,000 characters is logged whole to run ``run_id`` as artifact
    ``params/<key>.txt`` and cut short in the param, with a warning.
    """
    logged: dict[str, str] = {}
    for key, value in params.items():
        name = mlflow_key(key)
        if name != key:
            warn(f"param {key!r} is logged as {name!r}: MLflow keys allow letters, digits, "
                  "spaces and _ - . :")  # fmt: skip
        text = str(value)
        if len(text) > _MAX_PARAM_VALUE:
            path = f"params/{name}.txt"
            client.log_text(run_id, text, path)
            note = f"... [{len(text)} characters; whole value in artifact {path}]"
            warn(f"param {name!r} has {len(text)} characters, over MLflow's "
                  f"{_MAX_PARAM_VALUE}: cut short; the whole value is artifact {path}")  # fmt: skip
            text = text[: _MAX_PARAM_VALUE - len(note)] + note
        logged[name] = text
    return logged


def log_params(client: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    """Log params to run ``run_id``, as ``params_as_logged`` makes them.

    MLflow sends them in batches of 100 itself.
    """
    logged = params_as_logged(client, run_id, params)
    client.log_batch(run_id, params=[Param(key, value) for key, value in logged.items()])


def log_metrics(
    client: MlflowClient,
    run_id: str,
    metrics: dict[str, float],
    model_id: str | None = None,
    *,
    params: dict[str, str] | None = None,
    folds: Sequence[dict[str, float]] = (),
) -> None:
    """Log metrics (step 0) to run ``run_id`` and its model ``model_id``, if given.

    ``params`` (as ``params_as_logged`` makes them) go in the same request. Each fold's
    metrics are steps 0, 1, ... of ``<metric>_fold``: the metric itself keeps one value, the
    mean, which is what ranks runs (MLflow shows a metric's latest step). A NaN or infinite
    metric is tagged and warned about instead.
    """
    now = int(time.time() * 1000)
    values = [(k, v, 0) for k, v in metrics.items()]
    values += [(f"{k}_fold", v, step) for step, fold in enumerate(folds) for k, v in fold.items()]
    finite = [
        Metric(k, v, now, step, model_id=model_id, run_id=run_id)
        for k, v, step in values
        if math.isfinite(v)
    ]
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    logged = [Param(key, value) for key, value in (params or {}).items()]
    client.log_batch(run_id, metrics=finite, params=logged)
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        client.set_tag(run_id, NONFINITE_TAG, shown)
        warn(f"metric {shown} is not a finite number: not logged as a metric, "
              f"tagged {NONFINITE_TAG} instead (too few validation rows?)")  # fmt: skip
