"""One run: plan it, train it, record it; or reuse an earlier run that did the same."""

import importlib
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from sweeplab import estimators
from sweeplab import plan as planning
from sweeplab.errors import ERROR_TAG, RunFailed
from sweeplab.recent import Recent

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Experiment


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
    # The metric that ranks the run (sweep.metric, else its task's own) and its direction.
    metric: str = "rmse"
    direction: str = "minimize"
    # True when sweep.skip_finished found an earlier FINISHED run with the same fingerprint.
    reused: bool = False
    # Set when a Recorder logs the run in the background: done once it is logged (or failed).
    logged: "Future[None] | None" = None


class Recorder:
    """Logs trained runs to MLflow on one background thread while the next job trains.

    Serialising and logging a model is Python work (skops), while scikit-learn fits release
    the GIL: in a sweep that runs its jobs in this process, the two overlap on two cores.
    """

    def __init__(self) -> None:
        # A fit gives up the GIL in its C parts and must win it back from the recorder many
        # times a tree; at Python's default 5 ms hand-over a 3x3 forest grid ran ~0.4 s
        # (4%) slower than at 1 ms, which costs the 100-job ridge sweep nothing measurable.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweeplab-recorder")
        self._pending: list[tuple[Future[None], str, str]] = []  # (future, run id, store URI)

    def submit(self, record: Callable[[], None], run_id: str, tracking_uri: str) -> Future[None]:
        """Queue ``record`` (which logs and ends run ``run_id``); return its future."""
        # One run waiting behind the one being logged is enough to keep the thread busy,
        # and bounds the models and data held in memory.
        self._pending = [p for p in self._pending if not p[0].done()]
        while len(runs := [p for p in self._pending if p[1]]) > 1:  # runs, not `then` calls
            wait([runs[0][0]])
            self._pending = [p for p in self._pending if not p[0].done()]
        future = self._pool.submit(record)
        self._pending.append((future, run_id, tracking_uri))
        return future

    def then(self, future: Future[None], follow: Callable[[Future[None]], None]) -> None:
        """Call ``follow(future)`` on the recorder's thread once ``future`` is done.

        Queued behind it on the one thread, so it runs after it; ``drain`` waits for it too,
        which a done-callback would not guarantee.
        """
        self._pending.append((self._pool.submit(follow, future), "", ""))

    def drain(self) -> None:
        """Wait until every queued run is logged (or has failed)."""
        wait([future for future, _, _ in self._pending])
        self._pending = []

    def abort(self, why: str) -> None:
        """Drop queued runs, ending them KILLED; let the one being logged finish."""
        from mlflow import MlflowClient

        for future, run_id, uri in self._pending:
            if future.cancel() and run_id:
                client = MlflowClient(uri)
                client.set_tag(run_id, ERROR_TAG, why)
                client.set_terminated(run_id, "KILLED")
        self.drain()


def preload() -> None:
    """Import the modules every run uses, skops first (see estimators.load_serializer).

    For worker processes that start before their first job (the joblib launcher's).
    """
    # In this order: skops before MLflow.
    for module in ("skops.io", "mlflow.sklearn", "mlflow.store.tracking.sqlalchemy_store"):
        importlib.import_module(module)
    from sweeplab import record, train  # noqa: F401


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind this process (main thread) so runs in progress end KILLED.

    The default action, dying at once, would leave them RUNNING.
    """
    signal.signal(signal.SIGTERM, _terminate)


# The local stores and experiments this process opened for sweep jobs, kept for the next job.
_opened: "Recent[tuple[MlflowClient, Experiment]]" = Recent(2)


def execute(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    *,
    parent_run_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    input_example: bool = True,
    recorder: Recorder | None = None,
) -> RunResult:
    """Plan, train and record one run (plan: sweeplab.plan; bad input fails before MLflow).

    ``parent_run_id`` nests the run under a sweep's parent run; ``input_example`` stores five
    validation rows with the model. With a ``recorder`` the run is logged in the background
    (``RunResult.logged``); without one it is logged before this returns.
    """
    plan = planning.make(cfg, overrides)
    estimators.load_serializer(type(plan.estimator).__module__)
    # MLflow takes about a second to import: loading it after planning lets bad input fail
    # at once.
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from sweeplab import config, record, tracking, train

    uri = str(cfg.tracking.uri)

    def open_store() -> "tuple[MlflowClient, Experiment]":
        client = tracking.connect(cfg.tracking)
        return client, tracking.ensure_experiment(
            client, cfg.experiment, cfg.tracking.artifact_location
        )

    if parent_run_id is None or tracking.is_server(uri):
        # A run of its own checks its experiment afresh; a server is asked every job, for its
        # health.
        client, experiment = open_store()
    else:
        # A sweep's store and experiment are the same for all its jobs (sweep.check_overrides):
        # the process running them (the sweep's own, or a worker) keeps the ones it opened.
        # Opening them again costs ~20 ms a job.
        experiment_cfg = repr(OmegaConf.to_container(cfg.experiment, resolve=True))
        key = (uri, str(cfg.tracking.artifact_location), experiment_cfg)
        client, experiment = _opened.get(key, open_store)

    def result(
        run_id: str,
        run_name: str,
        metrics: dict[str, float],
        model_uri: str,
        *,
        reused: bool = False,
        logged: "Future[None] | None" = None,
    ) -> RunResult:
        return RunResult(
            experiment_name=experiment.name,
            experiment_id=experiment.experiment_id,
            run_id=run_id,
            run_name=run_name,
            metrics=metrics,
            model_uri=model_uri,
            tracking_uri=uri,
            metric=plan.metric,
            direction=plan.direction,
            reused=reused,
            logged=logged,
        )

    if cfg.sweep.skip_finished and (
        earlier := tracking.finished_run(client, experiment, plan.fingerprint)
    ):
        return result(
            earlier.info.run_id,
            str(earlier.info.run_name),
            dict(earlier.data.metrics),
            tracking.model_uri_of(earlier),
            reused=True,
        )
    tags = {**tracking.run_tags(config.launch_dir()), **plan.tags(), **(extra_tags or {})}
    if parent_run_id:
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    # The run exists (RUNNING) while it trains, so a failure or an interrupt is recorded.
    run = client.create_run(experiment.experiment_id, run_name=plan.run_name, tags=tags).info
    run_id = run.run_id
    try:
        trained = train.train(plan.estimator, plan.split, plan.task)
    except BaseException as e:
        record.end_with_error(client, run_id, plan, e)
        if isinstance(e, Exception):
            raise RunFailed(run_id, e) from e
        raise

    def log() -> None:
        record.record(client, run, plan, trained, input_example=input_example)

    logged = None
    if recorder is None:
        log()
    else:
        logged = recorder.submit(log, run_id, uri)
    model_uri = f"runs:/{run_id}/{plan.logged_model_name}"
    return result(run_id, plan.run_name, trained.metrics, model_uri, logged=logged)


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
