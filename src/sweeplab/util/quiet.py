"""Warnings from the libraries sweeplab drives that users can do nothing about, silenced.

Installed by sweeplab's entry points only (sweeplab.util.process.configure): the console commands,
the task function a launcher's worker runs, the tracking process. Importing sweeplab changes
no filter. ``catch_warnings()`` would swap the process-wide filter list,
which races when runs are logged on a background thread (see runner.Recorder).
Warnings a user can act on (scikit-learn's ConvergenceWarning, a dataset's own problems)
still show.
"""

import logging
import warnings

# MLflow's server imports starlette's WSGI middleware, which starlette deprecates: a note for
# MLflow's developers, printed by each server process.
SERVER_NOTICE = "starlette.middleware.wsgi is deprecated"
# Messages, matched from their start (MLflow colours some with ANSI escapes first).
_MESSAGES = (
    # MLflow hints that integer columns cannot hold missing values; generated data has none,
    # and a file's missing values are reported by sweeplab itself.
    "Hint: Inferred schema contains integer column",
    # MLflow registers its local dataset source for two schemes ("" and "file") under one
    # name, then warns that a local path matches both.
    "The specified dataset source can be interpreted in multiple ways",
    # MLflow's model wrappers type their inputs as Any, and it says so at every load.
    r".*Any type hint is inferred as AnyType",
    # Optuna marks its matplotlib plots and some samplers (QMC) experimental; a user picked them.
    r"optuna\.visualization\.matplotlib\..* is experimental",
    r"\w+Sampler is experimental",
    # sweeplab's own hydra/launcher/basic.yaml, joblib.yaml, ray.yaml and hydra/sweeper/basic.yaml
    # stand in for those options in sweeplab alone, on purpose; Hydra 1.3 then checks each
    # against the ConfigStore entry of the same name, which is wanted, and warns.
    r"\s*'hydra/(launcher|sweeper)/(basic|joblib|ray)' is validated against ConfigStore schema",
    SERVER_NOTICE,
)
# Libraries whose deprecation notices are for their callers' developers, not for users.
_LIBRARIES = (
    r"(mlflow|sklearn|hydra|omegaconf|pydantic|pandas|joblib|skops|sqlalchemy|alembic"
    r"|ray|lightgbm|xgboost|optuna|matplotlib|google|opentelemetry)(\..*)?$"
)


# Loggers whose INFO lines say what a library does inside (alembic: "setup plugin ..." at its
# import, schema steps; MLflow's registry: "Waiting up to 300 seconds for model version to
# finish creation" before each version a server registers); once Hydra's logging is set up
# they would reach the console.
_INFO_LOGGERS = ("alembic", "mlflow.store.model_registry.abstract_store")


def install() -> None:
    """Add the filters to this process's warning filters and loggers (idempotent)."""
    for name in _INFO_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in _MESSAGES:
        warnings.filterwarnings("ignore", message=message)
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=_LIBRARIES)
