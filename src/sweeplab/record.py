"""The last step of a run: log a trained plan to its MLflow run, or record why it stopped."""

import traceback
import weakref
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities import RunInfo

from sweeplab import tracking
from sweeplab.errors import ERROR_TAG, TRACEBACK_ARTIFACT, RunFailed, error_summary, warn
from sweeplab.plan import Plan
from sweeplab.redact import scrub_text
from sweeplab.train import Split, Trained

if TYPE_CHECKING:
    from mlflow.data.pandas_dataset import PandasDataset


def log_setup(client: MlflowClient, run_id: str, plan: Plan) -> None:
    """Log what run ``run_id`` was asked to do: params and the resolved config."""
    tracking.log_params(client, run_id, plan.params)
    tracking.log_config(client, run_id, plan.cfg, plan.overrides)  # secrets masked there


def _status_for(error: BaseException) -> str:
    # Ctrl-C and SIGTERM (raised as SystemExit by the entry point) stop a run; they do not
    # mean it failed.
    return "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED"


def end_with_error(client: MlflowClient, run_id: str, plan: Plan, error: BaseException) -> None:
    """Record why run ``run_id`` stopped (tag, traceback artifact) and end it FAILED or KILLED."""
    status = _status_for(error)
    text = scrub_text("".join(traceback.format_exception(error)))
    try:
        if not client.get_run(run_id).data.params:
            log_setup(client, run_id, plan)
        client.set_tag(run_id, ERROR_TAG, error_summary(error))
        client.log_text(run_id, text, TRACEBACK_ARTIFACT)
    except Exception as e:  # the store may be what failed; the original error matters more
        warn(f"could not record the error on run {run_id}: {error_summary(e)}")
    finally:
        try:
            client.set_terminated(run_id, status)
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


def record(
    client: MlflowClient, run: RunInfo, plan: Plan, trained: Trained, *, input_example: bool = True
) -> None:
    """Log params, config, data, model and metrics to ``run``, then end it FINISHED.

    Through ``client`` with the run's id, not MLflow's active run: making a run active
    (``mlflow.start_run``) reads it back and writes its status again, ~20% of the logging.
    """
    run_id = run.run_id
    try:
        params = tracking.params_as_logged(client, run_id, plan.params)
        tracking.log_config(client, run_id, plan.cfg, plan.overrides)
        rows = plan.split
        tracking.log_datasets(client, run_id, _datasets(plan), ("training", "validation"))
        model_id = tracking.log_model(
            run,
            trained.estimator,
            rows.X_val.head(5),
            trained.predictions,
            params=params,
            name=plan.logged_model_name,
            with_example=input_example,
        )
        # After the model, naming it: MLflow links metrics logged before a model to it by
        # reading every metric's history back (five queries a run); these are linked as logged.
        # The params go in the same request (the model has them already); should anything
        # before fail, end_with_error logs them.
        tracking.log_metrics(client, run_id, trained.metrics, model_id=model_id, params=params)
    except BaseException as e:
        end_with_error(client, run_id, plan, e)
        if isinstance(e, Exception):
            raise RunFailed(run_id, e) from e
        raise
    client.set_terminated(run_id, "FINISHED")
