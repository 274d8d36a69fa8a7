"""The tracking side of a run: create it in its store, log it, or record why it stopped.

These functions run where a process's MLflow work is done: its tracking process
(sweeplab.tracking.tracker) when it has one, else the process itself. They take
sweeplab.tracking.entries' plain records and import MLflow when they run, so that the
process that trains can name them without loading MLflow.
"""

import importlib
import threading
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from sweeplab.tracking.entries import Entry, Failure, NewRun, Opened, Rows, Setup, Store
from sweeplab.tracking.places import not_answering
from sweeplab.tracking.tags import ERROR_TAG, MLFLOW_PARENT_RUN_ID
from sweeplab.util.errors import TRACEBACK_ARTIFACT, RunFailed, TrackingError, error_summary, warn
from sweeplab.util.recent import Recent

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.entities import Experiment

    from sweeplab.model.tasks import Task


class RowsMissing(Exception):
    """This process no longer has a split's datasets: send the entry again with its rows."""


# The stores and experiments a sweep's jobs were logged to, kept for its next job (~20 ms a
# job to open and check again).
_opened: "Recent[tuple[MlflowClient, Experiment]]" = Recent(2)
# Runs this process ended FAILED or KILLED while their log may still be under way (an
# interrupt while a tracking process logs a big model): the log does not end them FINISHED.
_stopped: set[str] = set()


def open_store(store: Store) -> "tuple[MlflowClient, Experiment]":
    """Connect to the store (it fails here, with a clear message) and get the experiment."""
    from sweeplab.tracking import log

    settings = OmegaConf.create(store.tracking)
    experiment = OmegaConf.create(store.experiment)

    def opened() -> "tuple[MlflowClient, Experiment]":
        client = log.connect(settings)
        return client, log.ensure_experiment(client, experiment, settings.get("artifact_location"))

    if not store.keep:
        # A run of its own checks its experiment afresh; a server is asked every job, for
        # its health.
        return opened()
    key = (store.uri, repr(store.tracking.get("artifact_location")), repr(store.experiment))
    return _opened.get(key, opened)


def open_run(new: NewRun) -> Opened:
    """Create the run (RUNNING, so that a failure or an interrupt is recorded on it), or find
    the earlier FINISHED run ``new.reuse_fingerprint`` asks to reuse."""

    from sweeplab.tracking import log

    client, experiment = open_store(new.store)
    where = (new.store.uri, experiment.experiment_id, experiment.name)
    if new.reuse_fingerprint and (
        earlier := log.finished_run(client, experiment, new.reuse_fingerprint)
    ):
        return Opened(
            *where,
            run_id=earlier.info.run_id,
            run_name=str(earlier.info.run_name),
            reused=True,
            metrics=dict(earlier.data.metrics),
            model_uri=log.model_uri_of(earlier),
        )
    tags = {**log.run_tags(new.launch_dir), **new.tags}
    if new.parent_run_id:
        tags[MLFLOW_PARENT_RUN_ID] = new.parent_run_id
    run = client.create_run(experiment.experiment_id, run_name=new.run_name, tags=tags)
    return Opened(*where, run_id=run.info.run_id, run_name=new.run_name)


def preload(*, models: bool) -> None:
    """Import what opening a store and creating runs needs; with ``models``, skops first.

    First, so that no model's log waits for it, and because its import scans every loaded
    module for ufuncs, shorter before MLflow's ~1,300 (sweeplab.model.estimators.load_serializer).
    Without ``models`` it is left to ``prepare``: a sweep whose jobs log from their own
    workers needs none here. For processes that start before their first run: the tracking
    process, the joblib launcher's workers.
    """
    if models:
        import skops.io  # noqa: F401
    for module in ("mlflow", "mlflow.store.tracking.sqlalchemy_store", "sweeplab.tracking.log"):
        importlib.import_module(module)


# One lock each, so that a model's log waits for the first one's work, not for the plots'.
_models_lock, _plots_lock = threading.Lock(), threading.Lock()
_prepared: set[str] = set()


def prepare(*, models: bool = True, plots: bool = False) -> None:
    """Do now the one-time work of this process's first model log, or first plots.

    The process that trains asks for it before it trains: imports here then overlap its
    training instead of delaying the first run's logging. Once each, whoever asks first.
    """
    if models:
        with _models_lock:
            if "models" not in _prepared:
                import mlflow.pyfunc  # noqa: F401  # MLflow loads it lazily on the first log
                import skops.io  # noqa: F401
                from mlflow.utils import requirements_utils

                # MLflow checks a model's requirements against the installed packages, which it
                # maps from every installed distribution's files once per process: ~0.6 s with
                # the extras. A private function, so only where it exists.
                getattr(requirements_utils, "_init_packages_to_modules_map", lambda: None)()
                _prepared.add("models")
    if plots:
        with _plots_lock:
            if "plots" not in _prepared:
                from sweeplab.util import plotting

                plotting.load()
                _prepared.add("plots")


def check_store(store: Store) -> None:
    """Open the store and get the experiment now, so that a bad one fails here."""
    open_store(store)


def store_client(uri: str) -> "MlflowClient":
    """A client of store ``uri``, which MLflow's own calls here (log_model) use too."""
    import mlflow

    # Set by open_store where the run was opened; this process may be another one (a
    # tracking process that died left its work to the process that trained).
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)  # MLflow keeps one store per URI: this costs nothing


def log_setup(client: "MlflowClient", run_id: str, setup: Setup) -> None:
    """Log what run ``run_id`` was asked to do: params and the resolved config."""
    from sweeplab.tracking import log

    log.log_params(client, run_id, setup.params)
    log.log_config(client, run_id, setup)


def fail_run(opened: Opened, setup: Setup, failure: Failure) -> None:
    """Record why run ``opened`` stopped (tag, traceback artifact); end it FAILED or KILLED."""
    client, run_id = store_client(opened.tracking_uri), opened.run_id
    _stopped.add(run_id)
    if why := not_answering(opened.tracking_uri):
        warn(
            f"run {run_id} could not be ended {failure.status} ({why}); "
            "`sweeplab-tools mark-killed` ends it once the store is back"
        )
        return
    try:
        if not client.get_run(run_id).data.params:
            log_setup(client, run_id, setup)
        client.set_tag(run_id, ERROR_TAG, failure.summary)
        client.log_text(run_id, failure.traceback, TRACEBACK_ARTIFACT)
        _fail_models(client, opened)
    except Exception as e:  # the store may be what failed; the original error matters more
        warn(f"could not record the error on run {run_id}: {error_summary(e)}")
    finally:
        try:
            client.set_terminated(run_id, failure.status)
        except Exception as e:
            warn(
                f"run {run_id} could not be ended {failure.status} ({error_summary(e)}); "
                "`sweeplab-tools mark-killed` ends it once the store is back"
            )


def _fail_models(client: "MlflowClient", opened: Opened) -> None:
    """Mark FAILED the models of run ``opened`` whose log its failure cut short.

    They would stay PENDING in MLflow's UI.
    """
    from mlflow.entities import LoggedModelStatus

    # Filtered here: MLflow 3.17's SQL store compares status with the number it stores, so
    # status = 'PENDING' matches no model.
    models = client.search_logged_models(
        [opened.experiment_id], filter_string=f"source_run_id = '{opened.run_id}'"
    )
    for model in models:
        if model.status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


def end_pruned(opened: Opened, setup: Setup, folds: "list[dict[str, float]]", total: int) -> None:
    """End a run its pruner stopped: params, config and finished folds logged, then KILLED.

    The folds go in as steps of ``<metric>_fold``; the metrics themselves are left out, so
    a mean over fewer folds never ranks against complete runs.
    """
    from sweeplab.tracking import log
    from sweeplab.tracking.tags import PRUNED_TAG

    client = store_client(opened.tracking_uri)
    params = log.params_as_logged(client, opened.run_id, setup.params)
    log.log_config(client, opened.run_id, setup)
    log.log_metrics(client, opened.run_id, {}, params=params, folds=folds)
    client.set_tag(opened.run_id, PRUNED_TAG, f"after {len(folds)} of {total} folds")
    client.set_terminated(opened.run_id, "KILLED")


def end_killed(tracking_uri: str, run_id: str, why: str) -> None:
    """End run ``run_id`` KILLED, tagged with ``why`` (a run dropped before it was logged)."""
    client = store_client(tracking_uri)
    _stopped.add(run_id)
    client.set_tag(run_id, ERROR_TAG, why)
    client.set_terminated(run_id, "KILLED")


# Each split's MLflow datasets (digest, schema), made once: a sweep's jobs share their split
# (sweeplab.run.plan), and making them costs ~25 ms a job. More than the splits a process that
# trains keeps (two), so that the rows it sent once are still here.
_made: "Recent[list[PandasDataset]]" = Recent(4)


def _datasets(rows: Rows) -> "list[PandasDataset]":
    """The training and validation rows as MLflow datasets."""
    from sweeplab.tracking import log

    def made() -> "list[PandasDataset]":
        if rows.frames is None:
            raise RowsMissing(rows.token)
        return [log.dataset(frame, rows.name, rows.target, rows.source) for frame in rows.frames]

    return _made.get(rows.token, made)


def log_run(opened: Opened, entry: Entry) -> None:
    """Log params, config, data, model and metrics to run ``opened``, then end it FINISHED.

    Through the client with the run's id, not MLflow's active run: making a run active
    (``mlflow.start_run``) reads it back and writes its status again, ~20% of the logging.
    """
    from sweeplab.tracking import log

    client, run_id = store_client(opened.tracking_uri), opened.run_id
    prepare()  # the first model's one-time work: wait for it if under way, not do it twice
    try:
        datasets = _datasets(entry.rows)
        params = log.params_as_logged(client, run_id, entry.setup.params)
        log.log_config(client, run_id, entry.setup)
        log.log_datasets(client, run_id, datasets, entry.rows.contexts)
        model_id = log.log_model(
            run_id,
            opened.experiment_id,
            entry.estimator,
            entry.example,
            entry.predictions,
            params=params,
            name=entry.model_name,
            with_example=entry.with_example,
        )
        if run_id in _stopped:
            return  # ended KILLED while its model was logged (see _stopped): it stays so
        # After the model, naming it: MLflow links metrics logged before a model to it by
        # reading every metric's history back (five queries a run); these are linked as logged.
        # The params go in the same request (the model has them already); should anything
        # before fail, fail_run logs them.
        log.log_metrics(
            client, run_id, entry.metrics, model_id=model_id, params=params, folds=entry.folds
        )
    except RowsMissing:
        raise  # nothing is logged yet: the entry comes again with its rows
    except BaseException as e:
        fail_run(opened, entry.setup, Failure.of(e))
        if isinstance(e, Exception):
            raise RunFailed(run_id, e) from e
        raise
    client.set_terminated(run_id, "FINISHED")


def log_test_scores(
    tracking_uri: str,
    run_ids: "list[str]",
    model_run_id: str,
    X: "pd.DataFrame",
    y: "pd.Series",
    task: "Task",
) -> dict[str, float]:
    """Score run ``model_run_id``'s model on the test part ``X``/``y``; log them as test_<metric>.

    To each of ``run_ids`` (the chosen run, and its sweep's parent). The test part never
    ranks: only what was chosen on validation gets these.
    """
    import tempfile

    import mlflow

    from sweeplab.model import train
    from sweeplab.tracking import log

    client = store_client(tracking_uri)
    run = client.get_run(model_run_id)
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise TrackingError(f"run {model_run_id} logged no model to score on the test part")
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{outputs[0].model_id}", dst_path=tmp, tracking_uri=tracking_uri
        )
        model = mlflow.sklearn.load_model(local)
    scores = {f"test_{k}": v for k, v in train.score(model, X, y, task).items()}
    for run_id in run_ids:
        log.log_metrics(client, run_id, scores)
    return scores
