"""The last step of a run: log a trained plan to its MLflow run, or record why it stopped."""

import traceback
import weakref
from typing import TYPE_CHECKING

import mlflow

from sweeplab import tracking
from sweeplab.errors import ERROR_TAG, TRACEBACK_ARTIFACT, RunFailed, error_summary, warn
from sweeplab.plan import Plan
from sweeplab.redact import scrub_text
from sweeplab.train import Split, Trained

if TYPE_CHECKING:
    from mlflow.data.pandas_dataset import PandasDataset


def log_setup(plan: Plan) -> None:
    """Log what the run was asked to do: params and the resolved config (active run)."""
    tracking.log_params(plan.params)
    tracking.log_config(plan.cfg, plan.overrides)  # secrets masked there


def _status_for(error: BaseException) -> str:
    # Ctrl-C and SIGTERM (raised as SystemExit by the entry point) stop a run; they do not
    # mean it failed.
    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"


def end_with_error(run_id: str, plan: Plan, error: BaseException, *, active: bool = False) -> None:
    """Record why run ``run_id`` stopped (tag, traceback artifact) and end it FAILED or KILLED.

    ``active``: the run is this thread's active MLflow run already.
    """
    status = _status_for(error)
    text = scrub_text("".join(traceback.format_exception(error)))
    try:
        if not active:
            mlflow.start_run(run_id=run_id)
            active = True
        if not mlflow.get_run(run_id).data.params:
            log_setup(plan)
        mlflow.set_tag(ERROR_TAG, error_summary(error))
        mlflow.log_text(text, TRACEBACK_ARTIFACT)
    except Exception as e:  # the store may be what failed; the original error matters more
        warn(f"could not record the error on run {run_id}: {error_summary(e)}")
    finally:
        try:
            if active:
                mlflow.end_run(status)
            else:
                mlflow.MlflowClient(str(plan.cfg.tracking.uri)).set_terminated(run_id, status)
        except Exception as e:
            warn(
                f"run {run_id} could not be ended {status} ({error_summary(e)}); "
                "`sweeplab-tools mark-killed` ends it once the store is back"
            )


# Each split's MLflow datasets (digest, schema), made once: a sweep's jobs in one process
# share their split (sweeplab.plan), and making them costs ~25 ms a job.
_made: "weakref.WeakKeyDictionary[Split, list[PandasDataset]]" = weakref.WeakKeyDictionary()


def _datasets(plan: Plan) -> "list[PandasDataset]":
    """The plan's training and validation rows as MLflow datasets."""
    rows, data = plan.split, plan.data
    if rows not in _made:
        _made[rows] = [
            tracking.dataset(X.join(y), data.name, data.target, data.source)
            for X, y in ((rows.X_train, rows.y_train), (rows.X_val, rows.y_val))
        ]
    return _made[rows]


def record(run_id: str, plan: Plan, trained: Trained, *, input_example: bool = True) -> None:
    """Log params, config, data, model and metrics to run ``run_id``, then end it FINISHED."""
    mlflow.start_run(run_id=run_id)
    try:
        log_setup(plan)
        rows = plan.split
        tracking.log_datasets(_datasets(plan), ("training", "validation"))
        model_id = tracking.log_model(
            trained.estimator,
            rows.X_val.head(5),
            trained.predictions,
            name=plan.logged_model_name,
            with_example=input_example,
        )
        # After the model, naming it: MLflow links metrics logged before a model to it by
        # reading every metric's history back (five queries a run); these are linked as logged.
        tracking.log_metrics(trained.metrics, model_id=model_id)
    except BaseException as e:
        end_with_error(run_id, plan, e, active=True)
        if isinstance(e, Exception):
            raise RunFailed(run_id, e) from e
        raise
    mlflow.end_run("FINISHED")
