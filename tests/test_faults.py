"""Faults provoked for real: dead and silent servers, signals, kills, MLflow's limits, secrets."""

import math
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from services import free_port, parent_pid, pids_where, start_server, stop_group

from blocking import waiting_model
from conftest import BIN, start_sweeplab, sweeplab_tools, wait_for_running
from conftest import sweeplab as sweeplab_here
from sweeplab.run.runner import execute
from sweeplab.tracking import log


def store(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root}/outputs/mlflow.db")


def runs_of(client: MlflowClient, experiment: str = "Apple_Models"):
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000)


# ---------------------------------------------------------------- tracking server faults


@pytest.mark.fresh_store
def test_a_server_that_accepts_and_never_answers_fails_within_30s(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept_and_hold():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_hold, daemon=True).start()
    uri = f"http://127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()
    try:
        done = sweeplab_here("tracking=server", f"tracking.uri={uri}", cwd=tmp_path)
    finally:
        listener.close()
        for connection in held:
            connection.close()
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    assert done.stderr.startswith(f"sweeplab: error: no MLflow tracking server answers at {uri}")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").glob("*.db"))


@pytest.mark.process
@pytest.mark.slow
def test_the_server_dying_mid_sweep_fails_the_rest_fast_and_skip_finished_completes_it(
    tmp_path,
):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    grid = ("model.n_estimators=5,6,7", "model.max_depth=3")
    sweep = subprocess.Popen(
        [str(BIN / "sweeplab"), "-m", *grid, "tracking=server", f"tracking.uri={uri}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
    )  # fmt: skip
    try:
        for line in sweep.stdout:
            if line.startswith("[1/3]"):
                break
        stop_group(server, signal.SIGKILL)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        stop_group(server)
    assert sweep.returncode == 1
    # The summary comes from what the jobs handed back and names each job that was not logged.
    assert "the tracking store failed while comparing them" in err
    lines = [line.strip() for line in err.splitlines() if line.startswith("  job #")]
    assert len(lines) == 3, err
    assert lines[0].startswith("job #0 model.n_estimators=5 model.max_depth=3 ")
    assert ": FINISHED run " in lines[0]
    for line in lines[1:]:
        # Failed with its run, failed creating it (the server died mid-request), or not begun.
        assert ": FAILED run " in line or ": FAILED: " in line or ": NOT_STARTED: " in line, line
        if ": FAILED run " in line:
            # Its failure was not recorded: the server was found dead once, without retries.
            run_id = line.split(": FAILED run ")[1].split(":")[0]
            assert (
                f"run {run_id} could not be ended FAILED (no MLflow tracking server answers at "
                f"{uri}); `sweeplab-tools mark-killed` ends it once the store is back"
            ) in err
    assert "sweep.skip_finished=true" in err
    # What to run once the server is back points at that server, not at the local store.
    assert f"`sweeplab-tools mark-killed 'Apple_Models' --tracking-uri {uri}`" in err
    # Records the dead server could not take are said in one short line each.
    for line in err.splitlines():
        if line.startswith("sweeplab: warning: could not record job"):
            assert line.endswith(f"TrackingError: no MLflow tracking server answers at {uri}")

    server = start_server(tmp_path, port)
    try:
        again = sweeplab_here(
            "-m", *grid, "tracking=server", f"tracking.uri={uri}", "sweep.skip_finished=true",
            cwd=tmp_path,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "3 finished (1 reused), 0 failed" in again.stdout
        killed = sweeplab_tools("mark-killed", "Apple_Models", "--tracking-uri", uri, cwd=tmp_path)
        assert killed.returncode == 0, killed.stderr
        client = MlflowClient(uri)
        statuses = {r.info.status for r in runs_of(client)}
        assert "RUNNING" not in statuses
    finally:
        stop_group(server)


# ---------------------------------------------------------------- process faults


def test_an_exception_in_training_fails_the_run_with_its_traceback(tmp_path):
    # Each value is valid alone; the forest's fit refuses the pair.
    done = sweeplab_here("model.bootstrap=false", "model.oob_score=true", cwd=tmp_path)
    assert done.returncode == 1
    (run,) = runs_of(store(tmp_path))
    # (MLflow logs two INFO lines first when it creates the store's tables.)
    assert done.stderr.splitlines()[-1] == (
        f"sweeplab: error: run {run.info.run_id} FAILED: ValueError: Out of bag estimation only "
        "available if bootstrap=True (traceback in its artifact error/traceback.txt)"
    )
    assert "Traceback" not in done.stderr
    assert run.info.status == "FAILED"
    assert run.data.tags["sweeplab.error"].startswith("ValueError: Out of bag estimation")
    text = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/error/traceback.txt")
    assert "in fit" in text


@pytest.mark.process
def test_ctrl_c_during_a_sweep_ends_the_child_and_the_parent_killed(tmp_path):
    args, env, release = waiting_model(tmp_path)
    sweep = start_sweeplab("-m", *args, "model.timeout=120,121", cwd=tmp_path, env=env)
    wait_for_running(tmp_path / "outputs" / "mlflow.db", 2)  # the parent and the first job
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=60)
    release.touch()
    assert sweep.returncode == 130
    assert "Traceback" not in err
    runs = runs_of(store(tmp_path))
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {"KILLED"}


def wait_for_model_log(db: Path, timeout: float = 120) -> None:
    """Wait until a model's log has begun in the sqlite store ``db`` (its LoggedModel exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                if connection.execute("SELECT model_id FROM logged_models").fetchall():
                    return
        except sqlite3.OperationalError:  # not made yet
            continue
    raise AssertionError(f"no model's log began in {db}")


@pytest.mark.process
@pytest.mark.slow
def test_an_interrupt_while_the_model_is_logged_ends_the_run_killed_at_once(tmp_path):
    # The tracking process's log of this model waits for a file that comes only after the
    # signal: it lands while the log is under way. The run ends KILLED, not left RUNNING for a
    # log cut short, and without waiting for the log.
    args, env, release = waiting_model(tmp_path, "WaitsToBeSaved")
    run = start_sweeplab(*args, cwd=tmp_path, env=env)
    try:
        wait_for_model_log(tmp_path / "outputs" / "mlflow.db")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    finally:
        release.touch()
        if run.poll() is None:
            run.kill()
    assert run.returncode == 143
    assert "Traceback" not in err
    (killed,) = runs_of(store(tmp_path))
    assert killed.info.status == "KILLED"
    assert killed.data.tags["sweeplab.error"] == "terminated (SIGTERM)"
    assert "mae" not in killed.data.metrics
    # The model whose log was cut short is FAILED, not PENDING for ever.
    (model,) = store(tmp_path).search_logged_models([killed.info.experiment_id])
    assert model.status == LoggedModelStatus.FAILED


@pytest.mark.process
@pytest.mark.slow
def test_sigterm_to_a_parallel_sweep_leaves_nothing_running(tmp_path):
    args, env, release = waiting_model(tmp_path)
    sweep = start_sweeplab(
        "-m", *args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "model.timeout=120,121,122,123", cwd=tmp_path, env=env,
    )  # fmt: skip
    wait_for_running(tmp_path / "outputs" / "mlflow.db", 3)  # the parent and two workers' jobs
    sweep.send_signal(signal.SIGTERM)
    sweep.communicate(timeout=120)
    release.touch()
    assert sweep.returncode == 143
    runs = runs_of(store(tmp_path))
    assert {r.info.status for r in runs} == {"KILLED"}
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    assert parent.data.tags["sweeplab.error"] == "terminated (SIGTERM)"


def children_running(parent: int, marker: str) -> list[int]:
    """Pids of ``parent``'s child processes whose command line contains ``marker``."""
    return pids_where(lambda entry, command: marker in command and parent_pid(entry) == parent)


@pytest.mark.process
@pytest.mark.slow
def test_a_joblib_worker_killed_mid_job_fails_its_jobs_and_the_rest_still_run(tmp_path):
    """What the out-of-memory killer does: SIGKILL to a worker while it trains."""
    args, env, release = waiting_model(tmp_path)
    # --config-dir (in args) goes before the overrides, as argparse wants it.
    jobs = "model.timeout=120,121,122,123"
    grid = (*args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", jobs)
    sweep = start_sweeplab("-m", *grid, cwd=tmp_path, env=env)
    try:
        wait_for_running(tmp_path / "outputs" / "mlflow.db", 3)  # the parent, two jobs training
        workers = children_running(sweep.pid, "popen_loky_posix")
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        release.touch()  # the jobs after the two lost ones train at once
        out, err = sweep.communicate(timeout=300)
    finally:
        release.touch()
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, err
    assert "Traceback" not in out + err and "TerminatedWorkerError" not in out + err
    # joblib stops the other worker too: both jobs that were training are lost, each said so
    # once in its progress line and once in the summary; the two others ran.
    lost = [line for line in out.splitlines() if line.startswith("failed   job #")]
    assert len(lost) == 2, out
    for line in lost:
        assert (
            "FAILED its worker process was killed (SIGKILL(-9)): the kernel's out-of-memory" in line
        )
    assert "2 finished, 2 failed" in out
    runs = runs_of(store(tmp_path))
    assert "RUNNING" not in {r.info.status for r in runs}
    failed = [r for r in runs if r.info.status == "FAILED" and "sweeplab.sweep" not in r.data.tags]
    assert len(failed) == 2
    assert all("out-of-memory" in r.data.tags["sweeplab.error"] for r in failed)

    # The rerun on the basic launcher: which launcher ran a job is not part of what it is,
    # and this one starts no workers.
    again = sweeplab_here("-m", *args, jobs, "sweep.skip_finished=true", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "4 finished (2 reused), 0 failed" in again.stdout


@pytest.mark.process
def test_mark_killed_ends_runs_a_hard_kill_left_running(tmp_path):
    args, env, release = waiting_model(tmp_path)
    run = start_sweeplab(*args, cwd=tmp_path, env=env)
    (run_id,) = wait_for_running(tmp_path / "outputs" / "mlflow.db", 1)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    release.touch()  # its tracking process, left behind, ends with nothing to log
    assert store(tmp_path).get_run(run_id).info.status == "RUNNING"

    def tools(*args):
        return sweeplab_tools("mark-killed", "Apple_Models", *args, cwd=tmp_path)

    recent = tools("--older-than", "60")  # started seconds ago: left alone
    assert "0 run(s) marked KILLED" in recent.stdout
    dry = tools("--dry-run")
    assert f"would be marked KILLED: {run_id}" in dry.stdout
    assert store(tmp_path).get_run(run_id).info.status == "RUNNING"
    done = tools()
    assert done.returncode == 0, done.stderr
    assert "1 run(s) marked KILLED in experiment 'Apple_Models'" in done.stdout
    assert store(tmp_path).get_run(run_id).info.status == "KILLED"


# ---------------------------------------------------------------- MLflow's limits


def test_params_past_mlflows_limits_are_batched_kept_whole_and_renamed(isolated, capsys):
    mlflow.set_tracking_uri(f"sqlite:///{isolated}/limits.db")
    many = {f"p{i:03d}": i for i in range(250)}  # MLflow takes 100 per batch
    long_value = "x" * 7000  # MLflow refuses values over 6,000 characters
    with mlflow.start_run() as run:
        log.log_params(
            MlflowClient(),
            run.info.run_id,
            {**many, "notes": long_value, "lr@stage(1)": 0.1, "../up": 1},
        )
    params = MlflowClient().get_run(run.info.run_id).data.params
    assert all(params[k] == str(v) for k, v in many.items())
    assert len(params["notes"]) == 6000
    assert params["notes"].endswith("[7000 characters; whole value in artifact params/notes.txt]")
    whole = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/params/notes.txt")
    assert whole == long_value
    assert params["lr_stage_1_"] == "0.1"
    assert params["_._up"] == "1"  # no leading dot: MLflow reads names as paths
    err = capsys.readouterr().err
    assert "param 'lr@stage(1)' is logged as 'lr_stage_1_'" in err
    assert "param 'notes' has 7000 characters, over MLflow's 6000" in err


def test_a_nan_metric_is_tagged_and_warned_about_not_stored(compose_cfg, capsys):
    # One validation row: r2 is undefined.
    result = execute(compose_cfg("model=ridge", "dataset.n_rows=5", "dataset.test_size=0.2"))
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert math.isnan(result.metrics["r2"])
    assert "r2" not in run.data.metrics
    assert set(run.data.metrics) == {"mae", "mse", "rmse"}
    assert run.data.tags["sweeplab.nonfinite_metrics"] == "r2=nan"
    assert "metric r2=nan is not a finite number" in capsys.readouterr().err


# ---------------------------------------------------------------- secrets


def test_credentials_never_reach_params_tags_artifacts_console_or_hydra_files(tmp_path):
    env = {
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": "pw-from-env-1",
        "MLFLOW_TRACKING_TOKEN": "tok-from-env-2",
    }
    uri = f"sqlite:///{tmp_path}/outputs/mlflow.db"
    done = sweeplab_here(
        "-m", "model=ridge", "model.alpha=1,2", f"tracking.uri={uri}",
        "+experiment.tags.api_token=tag-secret-3", "+experiment.tags.owner=forecasting",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secrets = ("pw-from-env-1", "tok-from-env-2", "tag-secret-3")
    console = done.stdout + done.stderr
    assert not [s for s in secrets if s in console]
    client = store(tmp_path)
    exp = client.get_experiment_by_name("Apple_Models")
    assert exp.tags["owner"] == "forecasting"
    assert "api_token" not in exp.tags
    for run in runs_of(client):
        stored = str(run.data.params) + str(run.data.tags) + str(run.info.run_name)
        assert not [s for s in secrets if s in stored]
    artifacts = tmp_path / "outputs" / "artifacts"
    files = [p for p in [*artifacts.rglob("*"), *(tmp_path / "outputs").rglob("*.yaml")]
             if p.is_file() and p.suffix in (".yaml", ".txt", ".json", ".md", ".csv")]  # fmt: skip
    assert any(p.name == "config.yaml" for p in files)
    assert any(p.name == "multirun.yaml" for p in files)  # Hydra's own snapshots, scrubbed
    for path in files:
        text = path.read_text()
        assert not [s for s in secrets if s in text], path


def test_the_documented_server_binds_loopback_with_security_middleware_on():
    from sweeplab.cli.tools import server_command

    command = server_command("127.0.0.1", 8080, 2)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert "--disable-security-middleware" not in command
    assert "--allowed-hosts" not in command  # MLflow's default: localhost only


@pytest.mark.fresh_store
def test_a_sweep_combination_that_does_not_compose_stops_before_any_run(tmp_path):
    # Each value composes alone; ridge has no max_depth, so one job cannot.
    done = sweeplab_here("-m", "model=ridge,random_forest", "model.max_depth=3", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "sweeplab: error: model.max_depth='3' is not allowed: unknown hyperparameter of "
        "sklearn.linear_model.Ridge: its parameters are ['alpha', 'copy_X', 'fit_intercept'"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_printing_the_config_masks_a_password_in_the_uri(tmp_path):
    done = sweeplab_here(
        "tracking.uri=http://bob:hunter2@127.0.0.1:5000", "--cfg", "job", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "uri: http://***@127.0.0.1:5000" in done.stdout
    assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.process
def test_the_server_command_refuses_a_port_in_use(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(BIN / "sweeplab-tools"), "server", "--port", str(port)],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith(f"sweeplab-tools: error: cannot listen on 127.0.0.1:{port}")


def test_masking_a_secret_key_stays_on_its_own_line():
    from sweeplab.util.redact import scrub_text

    # A YAML mapping under a secret-named key: its first child is not the key's value.
    assert scrub_text("credentials:\n  user: bob\napi_token: x\n") == (
        "credentials:\n  user: bob\napi_token: ***\n"
    )
    assert scrub_text("db_password = s3cr3t, other=1") == "db_password = ***, other=1"
