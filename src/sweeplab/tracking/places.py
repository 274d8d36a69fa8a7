"""Where runs live and where to look: store kinds, whether a server answers, the UI's URLs.

No MLflow here: the process that trains prints these without loading it.
"""

import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sweeplab.util.errors import TrackingError
from sweeplab.util.launch import launch_dir
from sweeplab.util.redact import redact_uri, strip_userinfo


def is_server(uri: str) -> bool:
    """Whether the URI names a tracking server rather than a local database."""
    return urlparse(uri).scheme in ("http", "https")


def command_path(name: str) -> str:
    """How to call this environment's console script ``name`` from the user's shell."""
    beside = Path(sys.executable).parent / name
    on_path = shutil.which(name)
    if beside.exists() and (on_path is None or Path(on_path).resolve() != beside.resolve()):
        return str(beside)
    return name


# MLflow's UI shows an experiment as model training, not GenAI, with this in its URL (3.17
# reads the view from the URL or the browser's last choice, not from the experiment's kind).
_TRAINING_VIEW = "?workflowType=machine_learning"


def ui_url(base: str, experiment_id: str, run_id: str | None = None) -> str:
    """The UI's page for a run, or for an experiment's runs table, in the model-training view."""
    page = f"runs/{run_id}" if run_id else "runs"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/{page}{_TRAINING_VIEW}"


def ui_hint(uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """Where to look: the UI URL on a server; for a local store, the server command and URL.

    ``run_id`` opens that run's page; without it, the experiment's runs table.
    """
    if is_server(uri):
        return ui_url(redact_uri(uri), experiment_id, run_id)
    # `sweeplab-tools server` serves this folder's store (conf/tracking/local.yaml's) on port
    # 8080, without MLflow's GenAI job workers (0.8 GB against 3.2 GB for `mlflow ui`).
    server = command_path("sweeplab-tools") + " server"
    if uri != f"sqlite:///{launch_dir()}/outputs/mlflow.db":
        server += f" --backend-store-uri {redact_uri(uri)}"
    url = ui_url("http://127.0.0.1:8080", experiment_id, run_id)
    return f"`{server}` from this folder, then {url}"


# Servers this process already found dead: a sweep's later jobs check them once, briefly,
# instead of each waiting the full connect_timeout.
_unreachable: set[str] = set()
_RECHECK_SECONDS = 1.0


def wait_for_server(uri: str, timeout: float) -> None:
    """Return once the server answers its health check; raise TrackingError after ``timeout`` s."""
    if uri in _unreachable:
        timeout = min(timeout, _RECHECK_SECONDS)
    deadline = time.monotonic() + timeout
    # urllib cannot parse user:password@ (MLflow itself sends credentials from its env vars).
    url = strip_userinfo(uri).rstrip("/") + "/health"
    while True:
        remaining = deadline - time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=max(remaining, 0.1)) as response:
                if response.status == 200:
                    _unreachable.discard(uri)
                    return
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as e:
            problem = f"HTTP {e.code}"
        except (OSError, ValueError) as e:
            problem = str(getattr(e, "reason", e))
        if time.monotonic() + 0.5 >= deadline:
            _unreachable.add(uri)
            port = urlparse(uri).port
            start = "sweeplab-tools server" + (f" --port {port}" if port and port != 8080 else "")
            raise TrackingError(
                f"no MLflow tracking server answers at {redact_uri(uri)} ({problem}) "
                f"after {timeout:g}s. Start one with `{start}`, "
                "or drop tracking=server to use the local store."
            )
        time.sleep(0.5)


# How long a server that answered before gets to answer again before a failure is recorded.
_PROBE_SECONDS = 3.0


def not_answering(uri: str) -> str | None:
    """Why store ``uri`` cannot be written to now (a server that does not answer), else None.

    Asked before the requests that record a failure or end a sweep: against a dead server
    each of those retries for seconds (MLflow's retries), and a sweep makes several a job.
    """
    if not is_server(uri):
        return None
    try:
        wait_for_server(uri, _PROBE_SECONDS)
    except TrackingError:
        return f"no MLflow tracking server answers at {redact_uri(uri)}"
    return None


def require_answer(uri: str) -> None:
    """Raise TrackingError (``not_answering``'s reason) if store ``uri`` does not answer now."""
    if why := not_answering(uri):
        raise TrackingError(why)


def check_server(tracking: Mapping[str, Any]) -> None:
    """Raise TrackingError if config ``tracking`` names a server that does not answer in time.

    In the process that trains, before its first run: the tracking process may still be
    importing MLflow (seconds, many more on a busy machine) before it could tell.
    """
    uri = str(tracking["uri"])
    if is_server(uri):
        wait_for_server(uri, float(tracking["connect_timeout"]))
