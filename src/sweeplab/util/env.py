"""Every environment variable sweeplab reads or hands to its workers, declared once."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweeplab.util.checks import ConfigError


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, its default and what it is for."""

    name: str
    default: str = ""
    doc: str = ""

    def get(self) -> str:
        """The variable's value in this process, or its default."""
        return os.environ.get(self.name, self.default)

    def is_set(self) -> bool:
        """Whether this process's environment has the variable."""
        return self.name in os.environ


ALLOW_TARGETS = EnvVar(
    "SWEEPLAB_ALLOW_TARGETS",
    doc="comma-separated module prefixes whose classes configs may name as `_target_` "
    "(e.g. mypkg.models); widens sweeplab.util.allow's list, and only from outside config files",
)
TRACKING_PROCESS = EnvVar(
    "SWEEPLAB_TRACKING_PROCESS",
    default="on",
    doc="whether the `sweeplab` command logs through its tracking process (on, 1, true: the "
    "default) or from its own process (off, 0, false); read by sweeplab.__main__ alone",
)
PARENT_RUN_ID = EnvVar(
    "SWEEPLAB_PARENT_RUN_ID", doc="set by a sweep for its jobs: the parent run to nest under"
)
SWEPT_KEYS = EnvVar(
    "SWEEPLAB_SWEPT_KEYS",
    doc="set by a sweep for its jobs: the comma-separated keys whose values differ between "
    "jobs, which name each job's run first",
)


OPTUNA_TRIAL = EnvVar(
    "SWEEPLAB_OPTUNA_TRIAL",
    doc="set by the Optuna sweeper for each job: the study's trial number it runs, tagged on "
    "its run",
)
OPTUNA_STUDY = EnvVar(
    "SWEEPLAB_OPTUNA_STUDY",
    doc="set by the Optuna sweeper for each job when it prunes: the study whose trial the job "
    "reports each fold's score to",
)


_ON = ("1", "on", "true")
_OFF = ("0", "off", "false")


def swept_keys() -> list[str]:
    """The keys SWEEPLAB_SWEPT_KEYS names (none outside a sweep's jobs)."""
    return [key for key in SWEPT_KEYS.get().split(",") if key]


def tracking_process() -> bool:
    """Whether SWEEPLAB_TRACKING_PROCESS lets `sweeplab` start its tracking process."""
    raw = TRACKING_PROCESS.get()
    # Empty counts as unset: `SWEEPLAB_TRACKING_PROCESS= sweeplab` means "no setting" in a shell.
    value = (raw or TRACKING_PROCESS.default).strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(
        TRACKING_PROCESS.name,
        raw,
        f"must be one of {', '.join(_ON)} (a tracking process logs the runs; the default) or "
        f"{', '.join(_OFF)} (sweeplab's own process logs them)",
    )


def mlflow_client(tracking: Mapping[str, Any]) -> dict[str, str]:
    """MLflow's client settings for the store ``tracking`` (conf/tracking/*.yaml) configures.

    MLflow reads these when it builds its HTTP session; its defaults retry a dead server for
    minutes. The config is the one place to change them.
    """
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(tracking["request_timeout"]),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(tracking["max_retries"]),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(tracking["backoff_factor"]),
        # MLflow prints run URLs as given, user:password@ included; sweeplab prints them
        # redacted.
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        # With tqdm installed (Optuna brings it), MLflow draws a progress bar on stderr for
        # every artifact download, which the comparison makes for reused and refused jobs.
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": os.environ.get(
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"
        ),
    }


# Variables a job on another machine (a Ray worker) needs as the driver has them: MLflow's
# client settings and credentials, and the allow-list. Launchers that start workers from this
# process's environment (joblib, SLURM) pass them on by themselves.
WORKER_PREFIXES = ("MLFLOW_TRACKING_", "MLFLOW_HTTP_REQUEST_")
WORKER_VARIABLES = (ALLOW_TARGETS,)


def for_workers() -> dict[str, str]:
    """The part of this process's environment that every worker of a sweep must see."""
    env = {k: v for k, v in os.environ.items() if k.startswith(WORKER_PREFIXES)}
    env.update({var.name: var.get() for var in WORKER_VARIABLES if var.is_set()})
    return env
