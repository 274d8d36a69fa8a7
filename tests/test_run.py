"""One run against a real sqlite store, read back the way users read it: through MlflowClient."""

import os
import subprocess
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

import sweeplab
import tutorial_lab2
from conftest import copy_of_store
from sweeplab.config.schema import ConfigError
from sweeplab.data.apple_sales import apple_sales
from sweeplab.model import train
from sweeplab.run import plan
from sweeplab.run.runner import execute
from sweeplab.tracking import log
from sweeplab.tracking.log import TrackingError
from sweeplab.util.errors import RunFailed

# One worker runs them all (--dist loadgroup): they share its module's store.
pytestmark = pytest.mark.xdist_group("run")


def tutorial_metrics() -> dict[str, float]:
    """The tutorial's own training cell, on its data as of 2023-11-01."""
    data = apple_sales(n_rows=5000, base_demand=1000, seed=9999, end_date="2023-11-01")
    _, _, metrics = tutorial_lab2.train(data)
    return metrics


@pytest.fixture(scope="session")
def default_run(tmp_path_factory, migrated_store):
    """One default run, shared by the read-back tests below (a fit costs seconds)."""
    from hydra import compose, initialize_config_module

    from sweeplab.config.schema import register_configs

    root = tmp_path_factory.mktemp("default_run")
    copy_of_store(migrated_store, root / "mlflow.db")
    register_configs()
    with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                f"tracking.uri=sqlite:///{root}/mlflow.db",
                f"tracking.artifact_location={root}/artifacts",
            ],
        )
    before = dict(os.environ)
    result = execute(cfg, [])
    # connect() sets MLflow's request settings in os.environ, which must not outlive this
    # module's tests (the conftest's per-test restore comes after a module's fixtures).
    os.environ.clear()
    os.environ.update(before)
    return result, MlflowClient(result.tracking_uri), cfg


def test_params_are_the_tutorials_plus_the_dataset(default_run):
    result, client, _ = default_run
    params = client.get_run(result.run_id).data.params
    assert {k: params[k] for k in tutorial_lab2.PARAMS} == {
        k: str(v) for k, v in tutorial_lab2.PARAMS.items()
    }
    assert params["model"] == "random_forest"
    assert params["dataset.n_rows"] == "5000"
    assert params["dataset.end_date"] == "2023-11-01"
    assert params["dataset.seed"] == "9999"
    assert params["dataset.test_size"] == "0.2"


def test_metrics_equal_the_tutorials_pipeline(default_run):
    result, client, _ = default_run
    logged = client.get_run(result.run_id).data.metrics
    assert logged == pytest.approx(tutorial_metrics(), rel=1e-12)
    assert result.metrics == logged


def test_run_finishes_in_the_tutorials_experiment(default_run):
    result, client, _ = default_run
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "Apple_Models"
    assert experiment.tags["mlflow.note.content"].startswith("This is the grocery forecasting")
    assert experiment.tags["project_name"] == "grocery-forecasting"
    found = client.search_experiments(filter_string="tags.`project_name` = 'grocery-forecasting'")
    assert [e.name for e in found] == ["Apple_Models"]


def test_model_loads_back_and_predicts_like_the_trained_one(default_run):
    result, _, cfg = default_run
    planned = plan.make(cfg)
    data = planned.split
    expected = train.train(planned.estimator, data, planned.task).predictions

    loaded = mlflow.pyfunc.load_model(result.model_uri)
    np.testing.assert_array_equal(loaded.predict(data.X_val), expected)
    assert loaded.metadata.signature is not None
    assert [c.name for c in loaded.metadata.signature.inputs] == list(data.X_val.columns)

    local = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    requirements = (local / "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in requirements) == ["mlflow", "scikit-learn", "skops"]
    assert (local / "input_example.json").exists()
    assert "serialization_format: skops" in (local / "MLmodel").read_text()


def test_datasets_are_logged_as_inputs(default_run):
    result, client, _ = default_run
    inputs = client.get_run(result.run_id).inputs.dataset_inputs
    contexts = {tag.value for i in inputs for tag in i.tags if tag.key == "mlflow.data.context"}
    assert contexts == {"training", "validation"}
    assert {i.dataset.name for i in inputs} == {"apple_sales"}
    assert all(len(i.dataset.digest) >= 8 for i in inputs)


def test_resolved_config_and_overrides_are_artifacts(default_run):
    result, client, _ = default_run
    local = Path(client.download_artifacts(result.run_id, "config"))
    logged = yaml.safe_load((local / "config.yaml").read_text())
    assert logged["model"]["n_estimators"] == 100
    assert logged["experiment"]["name"] == "Apple_Models"
    assert logged["dataset"]["end_date"] == "2023-11-01"
    assert yaml.safe_load((local / "overrides.yaml").read_text()) == []


def test_provenance_tags(default_run):
    result, client, _ = default_run
    tags = client.get_run(result.run_id).data.tags
    assert tags["sweeplab.version"] == sweeplab.__version__ == version("sweeplab")
    assert len(tags["sweeplab.config_fingerprint"]) == 16
    assert tags["mlflow.runName"] == "random_forest"


# --- behaviour across runs ---------------------------------------------------------------


def test_rerun_reuses_the_experiment_and_updates_changed_tags(compose_cfg):
    first = execute(compose_cfg("model=ridge"), ["model=ridge"])
    second = execute(
        compose_cfg("model=ridge", "experiment.tags.team=forecasting-core"),
        ["model=ridge", "experiment.tags.team=forecasting-core"],
    )
    client = MlflowClient(first.tracking_uri)
    assert first.experiment_id == second.experiment_id
    assert len(client.search_experiments(filter_string="name = 'Apple_Models'")) == 1
    assert client.get_experiment(first.experiment_id).tags["team"] == "forecasting-core"


def test_a_worker_keeps_each_sweeps_store_and_experiment_apart(compose_cfg, isolated):
    # A process running sweep jobs keeps the store and experiment they opened, per sweep.
    first = execute(compose_cfg("model=ridge"), parent_run_id="a" * 32)
    other = compose_cfg("model=ridge", "experiment.name=Pear_Models")
    second = execute(other, parent_run_id="b" * 32)
    assert (first.experiment_name, second.experiment_name) == ("Apple_Models", "Pear_Models")
    client = MlflowClient(first.tracking_uri)
    assert client.get_run(second.run_id).info.experiment_id == second.experiment_id
    assert second.experiment_id != first.experiment_id


def test_fingerprint_follows_what_is_trained_not_where_it_is_logged(compose_cfg, tmp_path):
    a = execute(compose_cfg("model=ridge"), [])
    b = execute(compose_cfg("model=ridge", "run_name=again"), [])
    c = execute(compose_cfg("model=ridge", "model.alpha=2.0"), ["model.alpha=2.0"])
    client = MlflowClient(a.tracking_uri)

    def fingerprint(result):
        return client.get_run(result.run_id).data.tags["sweeplab.config_fingerprint"]

    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
    assert client.get_run(c.run_id).info.run_name == "ridge alpha=2.0"
    assert client.get_run(b.run_id).info.run_name == "again"


def test_git_commit_and_dirty_flag_of_the_launch_directory(compose_cfg, isolated):
    def git(*args):
        subprocess.run(["git", *args], cwd=isolated, check=True, capture_output=True)

    git("init", "-q")
    (isolated / "notes.txt").write_text("v1\n")
    git("add", "notes.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=isolated, capture_output=True, text=True
    ).stdout.strip()

    clean = execute(compose_cfg("model=ridge"), [])
    still_clean = execute(compose_cfg("model=ridge"), [])  # outputs/ of the first run ignored
    (isolated / "my_experiment.yaml").write_text("name: Untracked\n")
    untracked = execute(compose_cfg("model=ridge"), [])
    (isolated / "notes.txt").write_text("v2\n")
    edited = execute(compose_cfg("model=ridge"), [])

    client = MlflowClient(clean.tracking_uri)

    def tags(result):
        return client.get_run(result.run_id).data.tags

    assert tags(clean)["mlflow.source.git.commit"] == head
    assert tags(clean)["sweeplab.git_commit"] == head
    assert tags(clean)["sweeplab.git_dirty"] == "false"
    assert tags(still_clean)["sweeplab.git_dirty"] == "false"
    assert tags(untracked)["sweeplab.git_dirty"] == "true"
    assert tags(edited)["sweeplab.git_dirty"] == "true"


def test_local_store_refuses_an_experiment_whose_artifacts_live_on_a_server(compose_cfg, isolated):
    store = f"sqlite:///{isolated}/outputs/mlflow.db"
    client = MlflowClient(store)
    experiment_id = client.create_experiment(
        "Apple_Models", artifact_location="mlflow-artifacts:/7"
    )
    with pytest.raises(
        TrackingError, match=r"keeps its artifacts on a tracking server .* \(tracking=server\)"
    ):
        execute(compose_cfg("model=ridge"), [])
    assert client.search_runs([experiment_id]) == []


def test_local_store_and_artifacts_live_under_the_launch_directory(compose_cfg, isolated):
    result = execute(compose_cfg("model=ridge"), [])
    assert (isolated / "outputs" / "mlflow.db").is_file()
    experiment = MlflowClient(result.tracking_uri).get_experiment(result.experiment_id)
    assert experiment.artifact_location == (isolated / "outputs" / "artifacts").as_uri()
    assert any((isolated / "outputs" / "artifacts").rglob("MLmodel"))


def test_a_run_whose_model_cannot_be_logged_is_failed_with_its_params(compose_cfg, monkeypatch):
    # A run's params go to the store with its metrics, after the model: a failure before
    # that still leaves them, and the config, on the FAILED run.
    def broken_log_model(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(log, "log_model", broken_log_model)
    with pytest.raises(RunFailed, match="OSError: disk full") as failure:
        execute(compose_cfg("model=ridge"), [])
    run = MlflowClient(mlflow.get_tracking_uri()).get_run(failure.value.run_id)
    assert run.info.status == "FAILED"
    assert run.data.params["alpha"] == "1.0"
    assert not run.data.metrics
    config = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config/config.yaml")
    assert "alpha: 1.0" in config


def test_a_run_that_raises_is_failed_not_left_running(compose_cfg, monkeypatch):
    def broken_fit(model, data, task, **kwargs):
        raise RuntimeError("training blew up")

    monkeypatch.setattr(train, "train", broken_fit)
    with pytest.raises(RunFailed, match="RuntimeError: training blew up") as failure:
        execute(compose_cfg("model=ridge"), [])
    client = MlflowClient(mlflow.get_tracking_uri())
    (experiment,) = client.search_experiments(filter_string="name = 'Apple_Models'")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == failure.value.run_id
    assert run.info.status == "FAILED"
    assert run.data.tags["sweeplab.error"] == "RuntimeError: training blew up"
    assert run.data.params["alpha"] == "1.0"  # what it was asked to do is still there
    traceback = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/error/traceback.txt")
    assert "in broken_fit" in traceback


def test_end_date_now_is_logged_as_the_moment_it_meant(compose_cfg):
    before = datetime.now().replace(microsecond=0)
    result = execute(compose_cfg("model=ridge", "dataset.end_date=now", "dataset.n_rows=50"), [])
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    logged = datetime.fromisoformat(run.data.params["dataset.end_date"])
    assert before <= logged <= datetime.now()
    # Replaying the logged value reproduces the run exactly.
    again = execute(
        compose_cfg("model=ridge", f"dataset.end_date='{logged.isoformat()}'", "dataset.n_rows=50"),
        [],
    )
    assert again.metrics == result.metrics
    again_run = MlflowClient(again.tracking_uri).get_run(again.run_id)
    fingerprint = "sweeplab.config_fingerprint"
    assert again_run.data.tags[fingerprint] == run.data.tags[fingerprint]


def test_deleted_experiment_is_a_clear_error_naming_the_store(compose_cfg, isolated):
    first = execute(compose_cfg("model=ridge"), [])
    client = MlflowClient(first.tracking_uri)
    client.delete_experiment(first.experiment_id)
    with pytest.raises(
        TrackingError,
        match=r"is deleted in this store: restore it with `MLFLOW_TRACKING_URI=sqlite:///",
    ):
        execute(compose_cfg("model=ridge"), [])


def test_a_store_that_cannot_be_opened_is_a_clear_error(compose_cfg, isolated):
    (isolated / "not-a-db").write_text("just text\n")
    with pytest.raises(TrackingError, match=r"cannot open the tracking store sqlite:///.*not-a-db"):
        execute(compose_cfg(f"tracking.uri=sqlite:///{isolated}/not-a-db"), [])
    (isolated / "a-file").write_text("")
    with pytest.raises(TrackingError, match=r"cannot open the tracking store"):
        execute(compose_cfg(f"tracking.uri=sqlite:///{isolated}/a-file/mlflow.db"), [])


@pytest.mark.fresh_store
def test_bad_value_creates_no_store_no_experiment_no_run(compose_cfg, isolated):
    with pytest.raises(
        ConfigError,
        match=r"model.n_estimators=0 is not allowed: must be an int in the range \[1, inf\)",
    ):
        execute(compose_cfg("model.n_estimators=0"), [])
    assert not (isolated / "outputs").exists()


@pytest.mark.parametrize(
    "overrides", [["model=gradient_boosting", "model.n_estimators=10"], ["model=ridge"]]
)
def test_other_models_log_loadable_models(compose_cfg, overrides):
    result = execute(compose_cfg(*overrides), overrides)
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    features = apple_sales(n_rows=20, end_date="2023-11-01").drop(columns=["date", "demand"])
    assert loaded.predict(features).shape == (20,)
    assert 0 < result.metrics["r2"] <= 1


def test_other_spellings_of_a_day_are_logged_and_fingerprinted_as_that_day(compose_cfg):
    default = execute(compose_cfg("model=ridge", "dataset.n_rows=50"))
    compact = execute(compose_cfg("model=ridge", "dataset.n_rows=50", "dataset.end_date=20231101"))
    client = MlflowClient(default.tracking_uri)
    runs = [client.get_run(r.run_id) for r in (default, compact)]
    assert {r.data.params["dataset.end_date"] for r in runs} == {"2023-11-01"}
    fingerprints = {r.data.tags["sweeplab.config_fingerprint"] for r in runs}
    assert len(fingerprints) == 1
