"""One run: plan it, train it, record it; or reuse an earlier run that did the same."""

import importlib
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from omegaconf import DictConfig

from sweeplab.model import estimators, train
from sweeplab.run import plan as planning
from sweeplab.tracking import entries, record, tracker
from sweeplab.tracking.places import check_server, command_path, is_server
from sweeplab.util.errors import RunFailed, RunPruned
from sweeplab.util.launch import launch_dir


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
    """Logs trained runs on one background thread while the next job trains.

    The thread hands each run to the tracking process (sweeplab.tracking.tracker) and waits for it,
    or, without one, serialises and logs the model itself: Python work that overlaps the
    fits, which release the GIL, on two cores.
    """

    def __init__(self) -> None:
        # The thread must win the GIL back from a busy main thread: sweeplab's entry points
        # shorten the hand-over for that (sweeplab.util.process.configure).
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
        for future, run_id, uri in self._pending:
            if future.cancel() and run_id:
                tracker.call(record.end_killed, uri, run_id, why)
        self.drain()


def preload() -> None:
    """Import the modules every run's tracking uses, skops first (record.preload).

    For the joblib launcher's workers, which start before their first job.
    """
    record.preload(models=True)
    importlib.import_module("mlflow.sklearn")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind this process (main thread) so runs in progress end KILLED.

    The default action, dying at once, would leave them RUNNING.
    """
    signal.signal(signal.SIGTERM, _terminate)


def execute(
    cfg: DictConfig,
    overrides: Sequence[str] = (),
    *,
    parent_run_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    input_example: bool = True,
    recorder: Recorder | None = None,
    test: bool = False,
    report: Callable[[int, float], None] | None = None,
    cores: int = 1,
) -> RunResult:
    """Plan, train and record one run (plan: sweeplab.run.plan; bad input fails before MLflow).

    The run's MLflow work (sweeplab.tracking.record) goes to this process's tracker: its tracking
    process when it has one (sweeplab.tracking.tracker), else this process. ``parent_run_id`` nests
    the run under a sweep's parent run; ``input_example`` stores five validation rows with the
    model. With a ``recorder`` the run is logged in the background (``RunResult.logged``);
    without one it is logged before this returns. ``test``: a run chosen already (one that
    registers its model) is scored on its split's test part too, as test_<metric>.
    ``report`` hears each fold's value of the ranking metric as it comes (an Optuna trial's
    pruner); when it raises train.Pruned the run ends with the folds it finished (RunPruned).
    ``cores``: how many cores its folds may fit on at once.
    """
    plan = planning.make(cfg, overrides)
    if not tracker.get().remote:
        estimators.load_serializer(type(plan.estimator).__module__)

    uri = str(cfg.tracking.uri)
    new = entries.NewRun(
        # A sweep's jobs on a local store keep it open from one job to the next.
        store=entries.Store.of(cfg, keep=parent_run_id is not None and not is_server(uri)),
        run_name=plan.run_name,
        tags={**plan.tags(), **(extra_tags or {})},
        launch_dir=launch_dir(),
        parent_run_id=parent_run_id,
        reuse_fingerprint=plan.fingerprint if cfg.sweep.skip_finished else None,
    )
    if parent_run_id is None:
        check_server(cfg.tracking)
    opening = tracker.later(record.open_run, new)

    def result(
        opened: entries.Opened, metrics: dict[str, float], logged: "Future[None] | None" = None
    ) -> RunResult:
        return RunResult(
            experiment_name=opened.experiment_name,
            experiment_id=opened.experiment_id,
            run_id=opened.run_id,
            run_name=opened.run_name,
            metrics=metrics,
            model_uri=opened.model_uri or f"runs:/{opened.run_id}/{plan.logged_model_name}",
            tracking_uri=uri,
            metric=plan.metric,
            direction=plan.direction,
            reused=opened.reused,
            logged=logged,
        )

    def stopped(error: BaseException) -> entries.Opened:
        """End the run as ``error`` stopped it: FAILED, or KILLED for Ctrl-C and SIGTERM."""
        opened = opening.result()
        if not opened.reused:
            failure = entries.Failure.of(error)
            tracker.call(record.fail_run, opened, _setup(plan), failure)
        return opened

    # The run exists (RUNNING) before it trains, and a store that fails stops it first; but a
    # sweep's job on the local store its sweep has just opened trains while its run is made.
    waits = not new.store.keep or new.reuse_fingerprint is not None
    try:
        # The tracking process may still be importing MLflow: an interrupt can come here.
        opened_first = opening.result() if waits else None
    except (KeyboardInterrupt, SystemExit) as e:
        stopped(e)
        raise
    if opened_first is not None and opened_first.reused:
        return result(opened_first, opened_first.metrics)
    if tracker.get().remote and parent_run_id is None:
        # While this process trains, the tracking process readies its first model log (a
        # sweep has it do so as it starts).
        tracker.get().submit(record.prepare)
    heard = None if report is None else lambda i, metrics: report(i, metrics[plan.metric])
    try:
        trained = train.train(plan.estimator, plan.split, plan.task, report=heard, cores=cores)
    except train.Pruned as e:
        opened = opening.result()
        tracker.call(record.end_pruned, opened, _setup(plan), e.folds, e.total)
        raise RunPruned(opened.run_id, len(e.folds), e.total) from None
    except BaseException as e:
        opened = stopped(e)
        if isinstance(e, Exception):
            raise RunFailed(opened.run_id, e) from e
        raise
    if test and plan.split.X_test is not None and plan.split.y_test is not None:
        scores = train.score(trained.estimator, plan.split.X_test, plan.split.y_test, plan.task)
        trained.metrics.update({f"test_{k}": v for k, v in scores.items()})
    opened = opening.result()
    entry = entries.Entry.of(
        _setup(plan),
        entries.Rows.of(plan.split, plan.data),
        plan.split,
        trained,
        plan.logged_model_name,
        with_example=input_example,
    )

    def log() -> None:
        try:
            tracker.call(record.log_run, opened, entry)
        except record.RowsMissing:
            tracker.call(record.log_run, opened, entry.with_frames(plan.split))

    if recorder is not None:
        return result(opened, trained.metrics, recorder.submit(log, opened.run_id, uri))
    try:
        log()
    except (KeyboardInterrupt, SystemExit) as e:
        if tracker.get().remote:
            # The tracking process goes on logging a big model after an interrupt here; the
            # run ends KILLED now, as Ctrl-C promises, and its log stops short of FINISHED.
            # (Logged in this process, log_run ends the run itself.)
            stopped(e)
        raise
    return result(opened, trained.metrics)


def _setup(plan: planning.Plan) -> entries.Setup:
    return entries.Setup.of(plan.cfg, plan.params, plan.overrides)


def scored(value: float, spread: float | None, digits: int) -> str:
    """``value`` to ``digits`` significant digits, then ``± spread`` to as many decimals."""
    shown = f"{value:.{digits}g}"
    if spread is None:
        return shown
    decimals = len(shown.partition(".")[2]) if "e" not in shown else digits
    return f"{shown} ± {spread:.{decimals}f}"


def summary(result: RunResult) -> str:
    """The lines printed when a run ends: where it is, how it scored, how to look at it."""
    from sweeplab.tracking.places import ui_hint

    metrics = result.metrics
    scores = "  ".join(
        f"{k} {scored(v, metrics.get(f'{k}_std'), 4)}"
        for k, v in metrics.items()
        if not (k.endswith("_std") and k.removesuffix("_std") in metrics)
    )
    reused = "  (reused: sweep.skip_finished found this FINISHED run)" if result.reused else ""
    return (
        f"experiment {result.experiment_name!r} (id {result.experiment_id})\n"
        f"run        {result.run_name!r}  id {result.run_id}{reused}\n"
        f"metrics    {scores}\n"
        f"model      {result.model_uri}  ({command_path('sweeplab-tools')} predict "
        f"{result.model_uri} --input rows.csv --output predictions.csv)\n"
        f"view       {ui_hint(result.tracking_uri, result.experiment_id, result.run_id)}"
    )
