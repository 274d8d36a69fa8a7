"""SWEEPLAB_TRACKING_PROCESS: `sweeplab` with its tracking process, or logging from its own."""

import contextlib
import sqlite3

import pytest
from mlflow import MlflowClient

from conftest import sweeplab_process
from sweeplab.util import env
from sweeplab.util.checks import ConfigError

VAR = "SWEEPLAB_TRACKING_PROCESS"


@pytest.mark.parametrize(
    ("value", "separate"),
    [("1", True), ("on", True), ("true", True), ("ON", True), ("", True),
     ("0", False), ("off", False), ("false", False), (" Off ", False)],
)  # fmt: skip
def test_the_switch_reads_on_and_off(monkeypatch, value, separate):
    monkeypatch.setenv(VAR, value)
    assert env.tracking_process() is separate


def test_the_switch_is_on_when_unset(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    assert env.tracking_process() is True


def test_another_value_names_the_variable_the_value_and_what_is_allowed(monkeypatch):
    monkeypatch.setenv(VAR, "maybe")
    with pytest.raises(ConfigError) as refused:
        env.tracking_process()
    assert str(refused.value).startswith(f"{VAR}='maybe' is not allowed: must be one of ")
    for allowed in ("1", "on", "true", "0", "off", "false"):
        assert allowed in refused.value.allowed


@pytest.mark.process
def test_off_logs_the_run_from_sweeplabs_own_process(tmp_path):
    # Every Python process that imports writes its import times on the stderr it inherits (the
    # tracking process shares sweeplab's): one `site` line is one interpreter, sweeplab alone.
    done = sweeplab_process(
        "model=ridge", "dataset.n_rows=300", cwd=tmp_path,
        env={VAR: "off", "PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]  # fmt: skip
    assert imported.count("site") == 1  # no tracking process was started
    # ...so sweeplab's own process imported MLflow and skops, and trained and logged the run
    # (with the tracking process on, it never imports them: test_tracker).
    assert {"mlflow", "skops", "sklearn.linear_model._ridge"} <= set(imported)
    (run,) = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db").search_runs(["1"])
    assert run.info.status == "FINISHED"
    assert run.outputs.model_outputs


@pytest.mark.process
def test_another_value_stops_the_command_before_any_run(tmp_path):
    done = sweeplab_process("model=ridge", cwd=tmp_path, env={VAR: "maybe"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"sweeplab: error: {VAR}='maybe' is not allowed: must be one of 1, on, true (a tracking "
        "process logs the runs; the default) or 0, off, false (sweeplab's own process logs them)"
    ]
    assert done.stdout == ""
    with contextlib.closing(sqlite3.connect(tmp_path / "outputs" / "mlflow.db")) as store:
        assert store.execute("SELECT count(*) FROM runs").fetchone() == (0,)
