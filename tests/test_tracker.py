"""The tracking process: a run's MLflow work beside the process that trains, and its faults."""

import os
import pickle
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from services import pids_where
from test_faults import children_running

from blocking import waiting_model
from conftest import BIN, start_sweeplab, wait_for_running
from sweeplab.tracking import log, tracker
from sweeplab.util.checks import ConfigError
from sweeplab.util.errors import RunFailed, error_summary

# Every test here starts programs (sweeplab, servers, clusters): the end-to-end tier.
pytestmark = pytest.mark.process


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["model=ridge"], ["-m", "model=ridge", "model.alpha=1,2"]], ids=["run", "sweep"]
)
def test_the_process_that_trains_never_imports_mlflow_or_skops(tmp_path, command):
    # -X importtime reports this process's imports only: the tracking process has its own.
    done = subprocess.run(
        [str(BIN / "python"), "-X", "importtime", "-m", "sweeplab", *command],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]  # fmt: skip
    assert "sklearn.linear_model._ridge" in imported  # it trained here
    assert not [m for m in imported if m.split(".")[0] in ("mlflow", "skops", "sqlalchemy")]
    runs = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db").search_runs(["1"])
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert len(runs) == len(command)  # the run, or the sweep's parent and its two jobs
    assert all(run.outputs.model_outputs for run in runs)  # models (the parent: the best's)
    # Those runs were logged by its tracking process, which ended with it.
    assert trackers_started_in(tmp_path) == []


def trackers_started_in(folder: Path) -> list[int]:
    """Pids of live tracking processes whose working directory is ``folder``."""
    return pids_where(
        lambda entry, command: (
            "sweeplab.tracking.tracker" in command and Path(os.readlink(entry / "cwd")) == folder
        )
    )


def test_results_and_errors_come_back_from_the_tracking_process():
    helper = tracker.Tracker()
    try:
        assert helper.call(os.getpid) != os.getpid()
        # sweeplab's errors cross whole: same type, same message, same fields.
        with pytest.raises(ConfigError) as refused:
            helper.call(_refuse, "model.alpha", -1)
        assert str(refused.value) == "model.alpha=-1 is not allowed: must be >= 0"
        assert refused.value.key == "model.alpha"
        # What does not pickle comes back as its text.
        with pytest.raises(RuntimeError, match="the result does not pickle"):
            helper.call(_unpicklable)
        # Settings (MLflow's client settings) reach it before any work sent after them.
        helper.environ({"SWEEPLAB_TEST_SETTING": "7"})
        assert helper.call(os.getenv, "SWEEPLAB_TEST_SETTING") == "7"
        assert "SWEEPLAB_TEST_SETTING" not in os.environ
    finally:
        helper.close()
    assert helper._process.returncode is not None  # it exited with close()


def test_opening_a_store_leaves_mlflows_client_settings_alone(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith("MLFLOW_HTTP_")]:
        monkeypatch.delenv(name)
    client = log.connect(OmegaConf.create({"uri": f"sqlite:///{tmp_path}/mlflow.db"}))
    assert client.search_experiments()
    # They are the entry points' to set (tracker.set_environ), not a library call's.
    assert [k for k in os.environ if k.startswith("MLFLOW_HTTP_")] == []


def _refuse(key: str, value: int) -> None:
    raise ConfigError(key, value, "must be >= 0")


def _unpicklable() -> object:
    return lambda: None


def test_run_failed_keeps_its_run_id_and_summary_when_pickled():
    failed = RunFailed("abc123", ValueError("Out of bag estimation only available"))
    again = pickle.loads(pickle.dumps(failed))
    assert again.run_id == "abc123"
    assert error_summary(again) == "ValueError: Out of bag estimation only available"


def test_a_command_that_only_prints_starts_no_tracking_process():
    assert not tracker.wanted(["--cfg", "job", "--resolve"])
    assert not tracker.wanted(["--help"])
    assert not tracker.wanted(["-c", "job"])
    assert tracker.wanted(["model=ridge", "-m", "model.alpha=1,2"])


def test_the_tracking_process_readies_skops_only_where_it_logs_models():
    # Jobs on joblib, Ray or SLURM workers log themselves: their sweep's helper needs no skops.
    assert tracker.trains_here(["model=ridge"])
    assert tracker.trains_here(["-m", "hydra/launcher=basic", "model.alpha=1,2"])
    assert not tracker.trains_here(["-m", "hydra/launcher=joblib", "model.alpha=1,2"])
    assert not tracker.trains_here(["-m", "hydra/launcher=ray", "model.alpha=1,2"])


@pytest.mark.slow
def test_the_tracking_process_killed_mid_run_loses_nothing(tmp_path):
    """What the out-of-memory killer may do: SIGKILL to the tracking process while training."""
    args, env, release = waiting_model(tmp_path)
    run = start_sweeplab(*args, cwd=tmp_path, env=env)
    try:
        wait_for_running(tmp_path / "outputs" / "mlflow.db", 1)
        (helper,) = children_running(run.pid, "sweeplab.tracking.tracker")
        os.kill(helper, signal.SIGKILL)
        release.touch()  # the fit ends only now, with its tracking process gone
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert (
        "sweeplab: warning: sweeplab's tracking process was killed (SIGKILL): the kernel's "
        "out-of-memory killer is the usual cause; sweeplab goes on logging from its own process"
    ) in err
    (logged,) = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db").search_runs(["1"])
    assert logged.info.status == "FINISHED"
    assert logged.outputs.model_outputs
    assert logged.info.run_id in out
