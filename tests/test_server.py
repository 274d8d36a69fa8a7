"""The tutorial's flow against a real `mlflow server` started with `sweeplab-tools server`."""

import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from services import free_port

from conftest import BIN
from conftest import sweeplab as sweeplab_here
from conftest import sweeplab_process as sweeplab
from sweeplab.data.apple_sales import apple_sales

# Every test here starts programs (sweeplab, servers, clusters): the end-to-end tier.
# One worker runs them all (--dist loadgroup): they share the suite's mlflow server.
# Servers on stores of their own; tests check that nothing lands in the local one.
pytestmark = [
    pytest.mark.process,
    pytest.mark.xdist_group("mlflow_server"),
    pytest.mark.fresh_store,
]


@pytest.mark.slow
def test_console_script_logs_to_the_server(mlflow_server, tmp_path):
    uri, server_dir = mlflow_server
    # MLFLOW_TRACKING_URI wins over the default option's local store; the local artifact
    # folder is then not used either: the server proxies artifacts.
    done = sweeplab(cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    assert not (tmp_path / "outputs" / "artifacts").exists()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("Apple_Models")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert (
        f"{uri}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
        "?workflowType=machine_learning"
    ) in done.stdout

    # The server keeps the store and the proxied artifacts under its own outputs/.
    assert (server_dir / "outputs" / "mlflow.db").is_file()
    assert any((server_dir / "outputs" / "artifacts").rglob("MLmodel"))

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{run.outputs.model_outputs[0].model_id}")
    features = apple_sales(n_rows=10, end_date="2023-11-01").drop(columns=["date", "demand"])
    assert np.isfinite(model.predict(features)).all()

    found = subprocess.run(
        [str(BIN / "sweeplab-tools"), "experiments", "--tracking", "server",
         "--tracking-uri", uri, "tags.`project_name` = 'grocery-forecasting'"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert "Apple_Models" in found.stdout
    # The server's processes say what a user acts on, not starlette's notes to MLflow.
    log = (mlflow_server[1] / "server.log").read_text()
    assert "Uvicorn running on" in log and "DeprecationWarning" not in log


def test_unreachable_server_fails_fast_naming_uri_and_fix(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    # In this process: the bound is on sweeplab's own wait for the server (MLflow alone would
    # retry for minutes), not on a new interpreter's imports, which a busy machine stretches.
    done = sweeplab_here("tracking=server", f"tracking.uri={uri}", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 2
    assert uri in done.stderr
    assert "sweeplab-tools server" in done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 15, f"took {elapsed:.1f}s"
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_store_that_does_not_answer_is_told_apart_in_seconds(mlflow_server):
    from sweeplab.tracking.places import not_answering

    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    assert not_answering(uri) == f"no MLflow tracking server answers at {uri}"
    assert time.monotonic() - started < 10
    assert not_answering(mlflow_server[0]) is None
    assert not_answering("sqlite:///nowhere/mlflow.db") is None  # a file: nothing to ask


def test_a_sweep_on_an_unreachable_server_fails_before_it_starts(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    # In this process: what it shows (one line, exit 2, nothing launched) needs none of its own.
    done = sweeplab_here("-m", "model=ridge", "model.alpha=1,2", "tracking=server",
                         f"tracking.uri={uri}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"sweeplab: error: no MLflow tracking server answers at {uri}")
    assert "Launching" not in done.stdout + done.stderr
    assert not (tmp_path / "multirun").exists()


def test_printing_the_config_does_not_need_the_server(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    # Were the server checked, this would wait ten minutes for it; the subprocess gets one.
    done = sweeplab("--cfg", "job", "tracking=server", f"tracking.uri={uri}",
                    "tracking.connect_timeout=600", cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert uri in done.stdout


def test_credentials_in_the_uri_never_reach_output_or_artifacts(mlflow_server, tmp_path):
    uri, _ = mlflow_server
    with_password = uri.replace("http://", "http://bob:s3cret@")
    done = sweeplab_here(
        "tracking=server", f"tracking.uri={with_password}", "model=ridge",
        "experiment.name=Secrets_Check", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("Secrets_Check")
    (run,) = client.search_runs([experiment.experiment_id])
    local = Path(
        client.download_artifacts(run.info.run_id, "config", dst_path=str(tmp_path / "dl"))
    )
    for artifact in ("config.yaml", "overrides.yaml"):
        text = (local / artifact).read_text()
        assert "s3cret" not in text
        assert "bob:" not in text
    assert "s3cret" not in str(run.data.params) + str(run.data.tags)
