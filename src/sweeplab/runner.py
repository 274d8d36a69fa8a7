"""One run: validate the config, generate data, train, evaluate and log it to MLflow."""

import hashlib
import json
import signal
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeplab import config
from sweeplab.errors import warn
from sweeplab.redact import scrub_text

# Overrides that say where to log rather than what to train stay out of run names.
_NOT_IN_RUN_NAME = ("tracking", "experiment", "run_name", "sweep", "hydra", "model=", "+model=")

# Tags a run that raised carries; MLflow keeps tag values up to 8,000 characters.
ERROR_TAG = "sweeplab.error"
_MAX_ERROR_CHARS = 2000
TRACEBACK_ARTIFACT = "error/traceback.txt"


class RunFailed(Exception):
    """Training or logging raised; the run is FAILED with the error and traceback logged."""

    def __init__(self, run_id: str, error: BaseException) -> None:
        self.run_id, self.error = run_id, error
        super().__init__(error_summary(error))


@dataclass(frozen=True)
class RunResult:
    """What one run produced and where it is stored."""

    experiment_name: str
    experiment_id: str
    run_id: str
    run_name: str
    metrics: dict[str, float]
    model_uri: str
    tracking_uri: str
    # True when sweep.skip_finished found an earlier FINISHED run with the same fingerprint.
    reused: bool = False
    # Set when a Recorder logs the run in the background: done once it is logged (or failed).
    logged: "Future[None] | None" = None


def shown_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that change what is trained, ``model.`` prefixes dropped."""
    return [o.removeprefix("model.") for o in overrides if not o.startswith(_NOT_IN_RUN_NAME)]


def default_run_name(cfg: DictConfig, overrides: Sequence[str]) -> str:
    """The model's name followed by the overrides that changed what is trained."""
    return " ".join([str(cfg.model.name), *shown_overrides(overrides)])


def fingerprint(cfg: DictConfig) -> str:
    """A stable hash of what decides a run's result: the dataset and the model config."""
    decisive = OmegaConf.to_container(
        OmegaConf.masked_copy(cfg, ["dataset", "model"]), resolve=True
    )
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def error_summary(error: BaseException) -> str:
    """The exception as one bounded line: its type and the first line of its message."""
    if isinstance(error, RunFailed):
        return str(error)
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return scrub_text(text[:_MAX_ERROR_CHARS])


class Recorder:
    """Logs trained runs to MLflow on one background thread while the next job trains.

    Serialising and logging a model is Python work (skops), while scikit-learn fits release
    the GIL: in a sweep that runs its jobs in this process, the two overlap on two cores.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweeplab-recorder")
        self._pending: list[tuple[Future[None], str, str]] = []  # (future, run id, store URI)

    def submit(self, record: Callable[[], None], run_id: str, tracking_uri: str) -> Future[None]:
        """Queue ``record`` (which logs and ends run ``run_id``); return its future."""
        # One run waiting behind the one being logged is enough to keep the thread busy,
        # and bounds the models and data held in memory.
        self._pending = [p for p in self._pending if not p[0].done()]
        while len(self._pending) > 1:
            wait([self._pending[0][0]])
            self._pending = [p for p in self._pending if not p[0].done()]
        future = self._pool.submit(record)
        self._pending.append((future, run_id, tracking_uri))
        return future

    def drain(self) -> None:
        """Wait until every queued run is logged (or has failed)."""
        wait([future for future, _, _ in self._pending])
        self._pending = []

    def abort(self, why: str) -> None:
        """Drop queued runs, ending them KILLED; let the one being logged finish."""
        from mlflow import MlflowClient

        for future, run_id, uri in self._pending:
            if future.cancel():
                client = MlflowClient(uri)
                client.set_tag(run_id, ERROR_TAG, why)
                client.set_terminated(run_id, "KILLED")
        self.drain()


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind this process (main thread) so runs in progress end KILLED.

    The default action, dying at once, would leave them RUNNING.
    """
    signal.signal(signal.SIGTERM, _terminate)


def _status_for(error: BaseException) -> str:
    # Ctrl-C and SIGTERM (raised as SystemExit by the entry point) stop a run; they do not
    # mean it failed.
    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"


def _log_setup(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Log what the run was asked to do: params and the resolved config (active run)."""
    from sweeplab import tracking

    tracking.log_params(
        {
            **config.hyperparameters(cfg.model),
            "model": cfg.model.name,
            **{f"dataset.{k}": v for k, v in cfg.dataset.items()},
        }
    )
    tracking.log_config(cfg, overrides)  # secrets masked there


def _end_with_error(
    run_id: str,
    cfg: DictConfig,
    overrides: Sequence[str],
    error: BaseException,
    *,
    active: bool = False,
) -> None:
    """Record why run ``run_id`` stopped (tag, traceback artifact) and end it FAILED or KILLED.

    ``active``: the run is this thread's active MLflow run already.
    """
    import mlflow

    status = _status_for(error)
    text = scrub_text("".join(traceback.format_exception(error)))
    try:
        if not active:
            mlflow.start_run(run_id=run_id)
            active = True
        if not mlflow.get_run(run_id).data.params:
            _log_setup(cfg, overrides)
        mlflow.set_tag(ERROR_TAG, error_summary(error))
        mlflow.log_text(text, TRACEBACK_ARTIFACT)
    except Exception as e:  # the store may be what failed; the original error matters more
        warn(f"could not record the error on run {run_id}: {error_summary(e)}")
    finally:
        try:
            if active:
                mlflow.end_run(status)
            else:
                mlflow.MlflowClient(str(cfg.tracking.uri)).set_terminated(run_id, status)
        except Exception as e:
            warn(
                f"run {run_id} could not be ended {status} ({error_summary(e)}); "
                "`sweeplab-tools mark-killed` ends it once the store is back"
            )


@dataclass
class _Trained:
    """A run trained in the foreground, waiting to be logged."""

    run_id: str
    cfg: DictConfig
    overrides: Sequence[str]
    data: Any  # sweeplab.train.Split
    target: str
    estimator: Any
    predictions: Any
    metrics: dict[str, float]
    input_example: bool

    def record(self) -> None:
        """Log params, config, data, metrics and model to the run, then end it."""
        import mlflow

        from sweeplab import models, tracking

        mlflow.start_run(run_id=self.run_id)
        try:
            _log_setup(self.cfg, self.overrides)
            name, data = self.cfg.dataset.name, self.data
            tracking.log_dataset(data.X_train.join(data.y_train), name, self.target, "training")
            tracking.log_dataset(data.X_val.join(data.y_val), name, self.target, "validation")
            tracking.log_metrics(self.metrics)
            tracking.log_model(
                self.estimator,
                data.X_val.head(5),
                self.predictions,
                models.estimator_for(self.cfg.model).skops_trusted_types,
                with_example=self.input_example,
            )
        except BaseException as e:
            _end_with_error(self.run_id, self.cfg, self.overrides, e, active=True)
            if isinstance(e, Exception):
                raise RunFailed(self.run_id, e) from e
            raise
        mlflow.end_run("FINISHED")


def execute(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    *,
    parent_run_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    input_example: bool = True,
    recorder: Recorder | None = None,
) -> RunResult:
    """Validate the config, then generate data, train, evaluate and log one run.

    ``parent_run_id`` nests the run under a sweep's parent run; ``input_example`` stores five
    validation rows with the model. With a ``recorder`` the run is logged in the background
    (``RunResult.logged``); without one it is logged before this returns.
    """
    config.validate(cfg)
    cfg = config.with_fixed_end_date(cfg)
    # MLflow takes about a second to import: loading it after validation lets bad input
    # fail at once.
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from sweeplab import models, tracking, train
    from sweeplab.datasets import DATASETS

    client = tracking.connect(cfg.tracking)
    uri = str(cfg.tracking.uri)
    experiment = tracking.ensure_experiment(client, cfg.experiment, cfg.tracking.artifact_location)
    config_fingerprint = fingerprint(cfg)
    if cfg.sweep.skip_finished and (
        earlier := tracking.finished_run(client, experiment, config_fingerprint)
    ):
        return RunResult(
            experiment_name=experiment.name,
            experiment_id=experiment.experiment_id,
            run_id=earlier.info.run_id,
            run_name=str(earlier.info.run_name),
            metrics=dict(earlier.data.metrics),
            model_uri=f"runs:/{earlier.info.run_id}/model",
            tracking_uri=uri,
            reused=True,
        )
    spec = DATASETS[cfg.dataset.name]
    generator_args = {
        k: v for k, v in cfg.dataset.items() if k not in ("name", "test_size", "split_seed")
    }
    run_name = cfg.run_name or default_run_name(cfg, [scrub_text(o) for o in overrides])
    tags = {**tracking.run_tags(config_fingerprint, config.launch_dir()), **(extra_tags or {})}
    if parent_run_id:
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    # The run exists (RUNNING) while it trains, so a failure or an interrupt is recorded.
    run_id = client.create_run(experiment.experiment_id, run_name=run_name, tags=tags).info.run_id
    try:
        frame = spec.generate(**generator_args)
        data = train.split(frame, spec, cfg.dataset.test_size, cfg.dataset.split_seed)
        estimator = models.build(cfg.model)
        predictions = train.fit(estimator, data)
        metrics = train.evaluate(data.y_val, predictions)
    except BaseException as e:
        _end_with_error(run_id, cfg, overrides, e)
        if isinstance(e, Exception):
            raise RunFailed(run_id, e) from e
        raise
    trained = _Trained(
        run_id, cfg, overrides, data, spec.target, estimator, predictions, metrics, input_example
    )
    logged = None
    if recorder is None:
        trained.record()
    else:
        logged = recorder.submit(trained.record, run_id, uri)
    return RunResult(
        experiment_name=experiment.name,
        experiment_id=experiment.experiment_id,
        run_id=run_id,
        run_name=run_name,
        metrics=metrics,
        model_uri=f"runs:/{run_id}/model",
        tracking_uri=uri,
        logged=logged,
    )


def summary(result: RunResult) -> str:
    """The lines printed when a run ends: where it is, how it scored, how to look at it."""
    from sweeplab.tracking import ui_hint

    scores = "  ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    reused = "  (reused: sweep.skip_finished found this FINISHED run)" if result.reused else ""
    return (
        f"experiment {result.experiment_name!r} (id {result.experiment_id})\n"
        f"run        {result.run_name!r}  id {result.run_id}{reused}\n"
        f"metrics    {scores}\n"
        f"view       {ui_hint(result.tracking_uri, result.experiment_id, result.run_id)}"
    )
