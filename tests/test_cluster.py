"""Scaling out: sweeps on a Ray cluster, logging to an MLflow server backed by PostgreSQL.

Every part is real and local: a throwaway PostgreSQL cluster (initdb into a temporary folder),
`sweeplab-tools server` on it with proxied artifacts, and a Ray head started with `ray start`,
all on free ports of 127.0.0.1. Where PostgreSQL or Ray is not installed these tests skip,
saying what is missing; CI (SWEEPLAB_REQUIRE_CLUSTER_TESTS=1) installs both and fails instead.
"""

import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from mlflow import MlflowClient
from mlflow.entities import Run
from omegaconf import DictConfig, OmegaConf
from services import (
    Postgres,
    RayHead,
    free_port,
    pids_where,
    postgres_bindir,
    start_postgres,
    start_ray_head,
    start_server,
    stop_group,
)

from blocking import waiting_model
from conftest import BIN, need_extra
from conftest import sweeplab as sweeplab_here
from conftest import sweeplab_process as sweeplab
from sweeplab.config.schema import register_configs
from sweeplab.sweep import cluster
from sweeplab.tracking import log

# Every test here starts programs (sweeplab, servers, clusters): the end-to-end tier.
# One worker runs them all (--dist loadgroup): they share its Ray head and PostgreSQL cluster.
pytestmark = [pytest.mark.process, pytest.mark.xdist_group("cluster"), pytest.mark.fresh_store]

REQUIRED = os.environ.get("SWEEPLAB_REQUIRE_CLUSTER_TESTS") == "1"
# A credential the driver has in its environment; it must reach no file and no output.
PASSWORD = "pw-never-in-a-file-7f3a"


def need(missing: str | None) -> None:
    """Skip (or, where CI requires these tests, fail) when a part is not installed."""
    if missing is None:
        return
    if REQUIRED:
        pytest.fail(f"{missing}; SWEEPLAB_REQUIRE_CLUSTER_TESTS=1 does not allow skipping")
    pytest.skip(missing)


def postgres_missing() -> str | None:
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (make install EXTRAS=postgres)"
    return None


def ray_missing() -> str | None:
    for module in ("ray", "hydra_plugins.hydra_ray_launcher"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (make install EXTRAS=ray)"
    return None


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    need(postgres_missing())
    database = start_postgres()
    yield database
    database.stop()


@pytest.fixture(scope="session")
def pg_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`sweeplab-tools server` on PostgreSQL, proxying artifacts into its own folder."""
    root = tmp_path_factory.mktemp("pg-server")
    artifacts = root / "artifacts"
    port = free_port()
    server = start_server(
        root, port, "--backend-store-uri", postgres.uri, "--artifacts-destination", str(artifacts)
    )
    yield {"uri": f"http://127.0.0.1:{port}", "root": root, "artifacts": artifacts}
    stop_group(server)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RayHead, Path]]:
    """A Ray head on 127.0.0.1 whose workers start in a folder of their own."""
    need(ray_missing())
    workdir = tmp_path_factory.mktemp("ray-workers")
    head = start_ray_head(num_cpus=2, cwd=workdir)
    yield head, workdir
    head.stop()


def driver_env(head: RayHead, server_uri: str) -> dict[str, str]:
    """What a user's shell has: the cluster's address and token, the server, credentials."""
    return {
        "RAY_ADDRESS": head.address,
        **head.env,
        "MLFLOW_TRACKING_URI": server_uri,
        "MLFLOW_TRACKING_USERNAME": "sweeper",
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,
    }


def sweep_of(client: MlflowClient, experiment: str) -> tuple[Run, list[Run]]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def files_under(*folders: Path) -> list[Path]:
    # os.walk, not rglob: it skips folders that live processes remove while it looks.
    return [
        Path(top, name) for folder in folders for top, _, names in os.walk(folder) for name in names
    ]


def ray_logs(head: RayHead) -> str:
    """The tail of Ray's logs of workers that died, for a failure message."""
    logs = head.folder / "session_latest" / "logs"
    lines = []
    for path in sorted(logs.glob("raylet.out")) + sorted(logs.glob("worker-*.err")):
        text = path.read_text(errors="replace")
        if "SYSTEM_ERROR" in text or "Traceback" in text or "Fatal" in text:
            lines.append(f"--- {path.name}\n" + "\n".join(text.splitlines()[-30:]))
    return "\n".join(lines)


def processes_titled(prefix: str) -> list[int]:
    """Pids of this machine's processes whose command line starts with ``prefix``."""
    return pids_where(lambda _, command: command.startswith(prefix))


def test_a_killed_worker_and_a_refused_value_fail_their_jobs_and_resume_finishes_the_rest(
    pg_server, ray_head, tmp_path
):
    """SIGKILL to a Ray worker mid-job (what the out-of-memory killer does), a value
    scikit-learn's validation refuses, then the same sweep again with skip_finished."""
    head, _ = ray_head
    args, blocking_env, release = waiting_model(tmp_path)
    env = {**os.environ, **driver_env(head, pg_server["uri"]), **blocking_env}
    # The workers find the test estimator where this driver does; the allow-list travels
    # with the sweep's runtime_env by itself.
    grid = ("-m", *args, "hydra/launcher=ray", "experiment.name=ray_faults",
            f"++hydra.launcher.ray.init.runtime_env.env_vars.PYTHONPATH={blocking_env['PYTHONPATH']}",
            "model.timeout=120,121,122,-1")  # fmt: skip
    sweep = subprocess.Popen(
        [str(BIN / "sweeplab"), *grid], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    client = MlflowClient(pg_server["uri"])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both CPUs' jobs waiting in fit: runs RUNNING
            exp = client.get_experiment_by_name("ray_faults")
            running = client.search_runs(
                [exp.experiment_id], "attributes.status = 'RUNNING' AND tags.`sweeplab.sweep.job` != ''"
            ) if exp else []  # fmt: skip
            workers = processes_titled("ray::_run_job")
            if (len(running) >= 2 and len(workers) >= 2) or sweep.poll() is not None:
                break
            time.sleep(0.3)
        assert sweep.poll() is None, sweep.communicate()
        assert len(running) >= 2 and len(workers) >= 2, "no two jobs training on Ray"
        os.kill(workers[0], signal.SIGKILL)
        release.touch()
        out, err = sweep.communicate(timeout=300)
    finally:
        release.touch()
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, out + err + ray_logs(head)
    assert "Traceback" not in out + err
    failed = [line for line in out.splitlines() if line.startswith("failed   job #")]
    assert len(failed) == 2, out
    (lost,) = [line for line in failed if "WorkerCrashedError" in line]
    assert "FAILED its Ray worker process died (WorkerCrashedError" in lost
    assert "out-of-memory killer is the usual cause" in lost
    (refused,) = [line for line in failed if "model.timeout=-1" in line]
    assert "timeout" in refused
    assert "2 finished, 2 failed" in out
    parent, children = sweep_of(client, "ray_faults")
    assert "RUNNING" not in {c.info.status for c in [parent, *children]}
    jobs = [c.data.tags["sweeplab.sweep.job"] for c in children]
    assert len(jobs) == len(set(jobs))  # Ray did not run the lost job a second time
    # The grid's points, each one job: the two that finished logged theirs.
    finished = [c.data.params["timeout"] for c in children if c.info.status == "FINISHED"]
    assert len(finished) == 2 and set(finished) < {"120", "121", "122"}, finished
    assert parent.data.tags["best_run_id"] in {c.info.run_id for c in children}

    # Resumed on the basic launcher (a job's fingerprint leaves the launcher out): what Ray
    # finished is reused, the lost job runs again; no second Ray driver and workers to start.
    # In this process: on the basic launcher nothing here needs one of its own.
    on_basic = [a for a in grid if "launcher" not in a]
    again = sweeplab_here(*on_basic, "hydra/launcher=basic", "sweep.skip_finished=true",
                          cwd=tmp_path, env=env)  # fmt: skip
    # A value validation refuses sinks its own job only: exit code 1, the rest done.
    assert again.returncode == 1, again.stdout + again.stderr + ray_logs(head)
    assert "3 finished (2 reused), 1 failed" in again.stdout
    assert "failed   job" in again.stdout and "model.timeout=-1" in again.stdout
    parents = client.search_runs(
        [client.get_experiment_by_name("ray_faults").experiment_id],
        "tags.`sweeplab.sweep` = 'true'",
    )
    latest = max(parents, key=lambda r: r.info.start_time)
    assert latest.data.tags["sweeplab.sweep.summary"] == "3 finished (2 reused), 1 failed"
    assert latest.info.status == "FAILED"


def test_a_sweep_on_ray_logs_to_the_postgresql_server_and_its_study_lives_there_too(
    postgres, pg_server, ray_head, tmp_path
):
    """The happy path of scaling out: an Optuna study on Ray, runs on the PostgreSQL-backed
    server, models through its proxied artifacts. (The grid sweeper on Ray: the fault test.)"""
    need_extra("optuna")
    import optuna

    head, workdir = ray_head
    # The study gets a database of its own in the cluster, beside MLflow's.
    port = postgres.uri.rsplit(":", 1)[1].split("/")[0]
    subprocess.run(
        [str(postgres_bindir() / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "postgres",
         "optuna_study"], check=True, capture_output=True,
    )  # fmt: skip
    storage = postgres.uri.rsplit("/", 1)[0] + "/optuna_study"
    done = sweeplab(
        "-m", "hydra/launcher=ray", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2", f"hydra.sweeper.storage={storage}",
        "experiment.name=ray_optuna", "dataset.n_rows=500", "model.n_estimators=5",
        "model.max_depth=int(interval(2,6))",
        cwd=tmp_path, env=driver_env(head, pg_server["uri"]), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr + ray_logs(head)
    # The sweep's own process prints each job's line as its result comes back, counted.
    progress = [line for line in done.stdout.splitlines() if " -> rmse " in line]
    assert [line.split()[0] for line in progress] == [f"[{k}/4]" for k in range(1, 5)]
    client = MlflowClient(pg_server["uri"])
    parent, children = sweep_of(client, "ray_optuna")
    assert parent.info.status == "FINISHED"
    assert {c.info.status for c in children} == {"FINISHED"}
    assert parent.data.tags["best_run_id"] in {c.info.run_id for c in children}
    assert sorted(int(c.data.tags["sweeplab.optuna.trial"]) for c in children) == [0, 1, 2, 3]
    (summary,) = optuna.get_all_study_summaries(storage)
    assert summary.study_name == parent.data.tags["sweeplab.optuna.study"]
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    runs = {c.info.run_id: c for c in children}
    for trial in study.trials:
        assert trial.state.name == "COMPLETE"
        run = runs[trial.user_attrs["sweeplab.run_id"]]
        assert trial.value == pytest.approx(run.data.metrics["rmse"])

    # Models came back through the server's proxied artifacts, into its own folder.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pg_server["uri"])
    try:
        for child in children[:2]:
            (output,) = child.outputs.model_outputs
            model = mlflow.pyfunc.load_model(f"models:/{output.model_id}")
            assert model.metadata.flavors.keys() >= {"python_function", "sklearn"}
    finally:
        mlflow.set_tracking_uri(previous)
    assert any(p.name == "model.skops" for p in files_under(pg_server["artifacts"]))

    # Nothing in the wrong store: no sqlite file next to the driver or the workers.
    stray = [p for p in files_under(tmp_path, workdir, head.folder) if p.suffix == ".db"]
    assert stray == []
    # Credentials reached the workers through Ray's runtime_env, not through any file.
    written = files_under(tmp_path, workdir)
    assert written, "Hydra wrote no job folders"
    for path in written:
        with contextlib.suppress(FileNotFoundError):  # removed since it was listed
            assert PASSWORD not in path.read_text(errors="replace"), path
    assert PASSWORD not in done.stdout + done.stderr


def test_registration_and_its_lock_on_the_postgresql_server(pg_server, tmp_path):
    from sweeplab.registry import champion as registry

    env = {"MLFLOW_TRACKING_URI": pg_server["uri"]}
    common = ("tracking=server", "experiment.name=pg_registry", "sweep.register=pg_demand",
              "dataset.n_rows=1000")  # fmt: skip
    # In this process: what is shown is the server's and PostgreSQL's part, not a process's.
    first = sweeplab_here(*common, "model=ridge", "model.alpha=100000", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "champion: pg_demand v1 (rmse " in first.stdout
    better = sweeplab_here("-m", *common, "model.n_estimators=10,20", cwd=tmp_path, env=env)
    assert better.returncode == 0, better.stdout + better.stderr
    assert " replaces v1 (rmse " in better.stdout, better.stdout
    assert "Waiting up to" not in better.stderr
    # Promotions racing through the server: the lock is a row in PostgreSQL.
    client = MlflowClient(pg_server["uri"])
    champion = client.get_model_version_by_alias("pg_demand", "champion")
    worse = client.get_model_version("pg_demand", "1")
    said: list[str] = []
    start = threading.Barrier(4)

    def promote(version) -> None:
        start.wait()
        said.append(registry.promote(client, "pg_demand", version, "champion", always=False))

    threads = [threading.Thread(target=promote, args=(v,)) for v in (worse, champion) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert str(client.get_model_version_by_alias("pg_demand", "champion").version) == str(
        champion.version
    )
    assert all(line.startswith("champion stays pg_demand v2 ") for line in said), said
    assert not [m for m in client.search_registered_models() if registry.LOCK_SUFFIX in m.name]


def sweep_joining(
    address: str, root: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, float]:
    """A Ray sweep told to join ``address``: (its result, seconds it took)."""
    need(ray_missing())
    started = time.monotonic()
    done = sweeplab(
        "-m", "hydra/launcher=ray", "model.max_depth=2,3",
        cwd=root, env={"RAY_ADDRESS": address, **(env or {})}, timeout=60,
    )  # fmt: skip
    return done, time.monotonic() - started


def runs_in_local_store(root: Path) -> list[Run]:
    client = MlflowClient(f"sqlite:///{root}/outputs/mlflow.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_a_cluster_that_cannot_be_reached_fails_fast_naming_its_address(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    done, seconds = sweep_joining(address, tmp_path)
    assert seconds < 30
    assert done.returncode == 2
    assert f"cannot reach the Ray cluster at {address} (Connection refused)" in done.stderr
    assert "Traceback" not in done.stderr
    assert runs_in_local_store(tmp_path) == []


def test_an_address_that_never_answers_fails_within_30_s(tmp_path):
    with socket.socket() as silent:  # accepts connections, never speaks Ray's protocol
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        done, seconds = sweep_joining(address, tmp_path)
    assert done.returncode == 2
    said = re.search(rf"the Ray cluster at {address} did not answer within (\d+) s", done.stderr)
    assert said, done.stderr
    # It gives up 28 s after sweeplab loaded, leaving the join at least 10 s on a machine
    # slow to start: on a quiet one ~29 s in all, on a loaded test machine up to ~35 s.
    assert 10 <= int(said.group(1)) <= 25
    assert seconds < 60  # it gave up by itself
    assert runs_in_local_store(tmp_path) == []


_CHECK_TOKEN = """
import sys
from sweeplab.sweep import cluster
try:
    cluster.check_token(sys.argv[1], sys.argv[1])
except cluster.ClusterError as e:
    sys.exit(f"sweeplab: error: {e}")
"""


def token_check(address: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """What a driver with ``env`` is told before it joins ``address`` (cluster.check_token).

    A process of its own, as Ray reads a machine's token once per process; the one line a
    refusal makes on the console is the unreachable-cluster test's.
    """
    need(ray_missing())
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return subprocess.run(
        [str(BIN / "python"), "-P", "-c", _CHECK_TOKEN, address],
        env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_driver_whose_token_the_head_does_not_take_is_told_which_is_missing(ray_head, tmp_path):
    head, _ = ray_head
    home = tmp_path / "home"  # a machine the head's token was never copied to
    home.mkdir()
    old = tmp_path / "old_auth_token"
    old.write_text("0" * 64)
    cases = {
        "uses token authentication and this machine has no token: copy the head's "
        "~/.ray/auth_token to ~/.ray/auth_token here": {"RAY_AUTH_MODE": "token"},
        "refuses this machine's token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(old)},
        "uses token authentication: set RAY_AUTH_MODE=token": {
            "RAY_AUTH_TOKEN_PATH": head.env["RAY_AUTH_TOKEN_PATH"]
        },
    }
    # Each is found by asking the head once, before ray.init: Ray's own join would retry
    # for 20 s and then say only "missing or incorrect".
    for message, env in cases.items():
        done = token_check(head.address, {"HOME": str(home), **env})
        assert done.returncode == 1, done.stderr
        assert f"sweeplab: error: the Ray cluster at {head.address} {message}" in done.stderr
        assert "Traceback" not in done.stderr
    gone = {
        "HOME": str(home),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(tmp_path / "no"),
    }
    done = token_check(head.address, gone)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "sweeplab: error: cannot read this machine's Ray token: RAY_AUTH_TOKEN_PATH is set but"
        )
    )
    # The driver with the head's token is let through, with nothing to say.
    done = token_check(head.address, {"HOME": str(home), **head.env})
    assert (done.returncode, done.stderr) == (0, "")


def test_a_head_without_token_authentication_is_named_as_such(tmp_path, monkeypatch, capsys):
    need(ray_missing())
    head = start_ray_head(num_cpus=1, token=False)  # plain `ray start --head`
    home = tmp_path / "home"
    home.mkdir()
    try:
        asked = token_check(head.address, {"HOME": str(home), "RAY_AUTH_MODE": "token"})
        # A driver with a token joins such a cluster, told that it is open to anyone.
        monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
        cluster.check_token(head.address, head.address)
    finally:
        head.stop()
    assert asked.returncode == 1
    assert asked.stderr.strip().splitlines()[-1] == (
        "sweeplab: error: RAY_AUTH_MODE=token, but this machine has no token and the Ray "
        f"cluster at {head.address} does not use token authentication: start its head with a "
        "token (README, 'Scaling out') and copy it here, or unset RAY_AUTH_MODE"
    )
    assert capsys.readouterr().err == (
        f"sweeplab: warning: the Ray cluster at {head.address} does not use token "
        "authentication: anyone who can reach its port can run code on it (README, "
        "'Scaling out', starts it with a token)\n"
    )


def test_4_processes_create_one_experiment_and_lose_no_run_on_postgresql(pg_server, tmp_path):
    processes, runs = 4, 2
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_TRACKING_URI"] = pg_server["uri"]
    # Each logs from its own process (the same logging code, without a second interpreter
    # per process to import MLflow): the race is between the processes, on PostgreSQL.
    env["SWEEPLAB_TRACKING_PROCESS"] = "off"
    # All at once, against an experiment none of them finds: each tries to create it.
    commands = [
        [str(BIN / "sweeplab"), "-m", "model=ridge", "dataset.n_rows=300",
         f"dataset.seed=range({i * runs},{(i + 1) * runs})", "experiment.name=pg_stress"]
        for i in range(processes)
    ]  # fmt: skip
    procs = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, "\n".join(outputs)
    client = MlflowClient(pg_server["uri"])
    (experiment,) = client.search_experiments(filter_string="name = 'pg_stress'")
    runs_logged = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs_logged if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == processes * runs
    assert {r.info.status for r in runs_logged} == {"FINISHED"}
    assert sorted(int(r.data.params["dataset.seed"]) for r in children) == list(
        range(processes * runs)
    )


def test_the_workers_environment_carries_the_store_and_credentials(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    monkeypatch.setenv("UNRELATED", "x")
    monkeypatch.setenv("SWEEPLAB_ALLOW_TARGETS", "mypkg.models")
    kwargs = cluster.init_kwargs(
        {"address": "10.0.0.5:6379", "object_store_memory": None,
         "runtime_env": {"env_vars": {"MLFLOW_HTTP_REQUEST_TIMEOUT": "90"}, "pip": ["x"]}},
        "http://tracking:5000",
    )  # fmt: skip
    assert kwargs["runtime_env"] == {
        # The URI the driver resolved, not whatever its environment said.
        "env_vars": {
            "MLFLOW_TRACKING_URI": "http://tracking:5000",
            "MLFLOW_TRACKING_TOKEN": "t0ken",
            # The user's own estimators are allowed on the workers too.
            "SWEEPLAB_ALLOW_TARGETS": "mypkg.models",
            # Set in the config: wins over the environment.
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "90",
        },
        "pip": ["x"],
    }
    # Ray refuses it when joining a cluster.
    assert "object_store_memory" not in kwargs


def launcher_config(option: str) -> DictConfig:
    register_configs()
    with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
        cfg = compose("config", [f"hydra/launcher={option}"], return_hydra_config=True)
    return cfg


def test_ray_and_slurm_launchers_are_sweeplab_configs():
    ray_cfg = launcher_config("ray")  # composes without Ray installed
    assert cluster.uses_ray(ray_cfg.hydra.launcher)
    launcher = OmegaConf.to_container(ray_cfg.hydra.launcher)
    assert launcher["ray"]["init"]["address"] is None
    assert "object_store_memory" not in launcher["ray"]["init"]
    # One CPU a job; a job whose worker dies is recorded, not run a second time.
    assert launcher["ray"]["remote"] == {"num_cpus": 1, "max_retries": 0}
    assert launcher["_target_"] == "hydra_plugins.sweeplab_ray_launcher.ray_launcher.RayLauncher"
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        need("hydra-submitit-launcher is not installed (make install EXTRAS=slurm)")
    slurm = launcher_config("slurm").hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher")
    assert slurm.array_parallelism == 16


def test_a_server_on_an_unreachable_database_is_one_line_before_it_starts(tmp_path):
    need_extra("psycopg", "postgres")
    store = f"postgresql://mlflow:hunter2@127.0.0.1:{free_port()}/mlflow"
    done = subprocess.run(
        [str(BIN / "sweeplab-tools"), "server", "--port", str(free_port()),
         "--backend-store-uri", store],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"sweeplab-tools: error: cannot open the backend store {store.replace('mlflow:hunter2', '***')}: "
    )
    assert "hunter2" not in done.stdout + done.stderr


def log_the_same_data_at_once(experiment_id: str, runs: int = 8) -> tuple[list[str], list[str]]:
    """``runs`` runs log one dataset at the same moment: (their run ids, the errors raised)."""
    frame = pd.DataFrame({"x": np.arange(100), "y": np.arange(100.0)})
    together = threading.Barrier(runs)
    run_ids: list[str] = []
    errors: list[str] = []

    def log_once() -> None:
        with mlflow.start_run(experiment_id=experiment_id) as run:
            run_ids.append(run.info.run_id)
            together.wait()
            try:
                made = [log.dataset(frame, "apple_sales", "y")]
                log.log_datasets(MlflowClient(), run.info.run_id, made, ["training"])
            except Exception as e:
                errors.append(str(e))

    threads = [threading.Thread(target=log_once) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run_ids, errors


def test_runs_logging_the_same_data_at_once_on_postgresql_all_succeed(pg_server):
    # MLflow's server looks the dataset up, then inserts it: on PostgreSQL, runs of one
    # experiment logging the same data at once race that (10 of 40 failed without sweeplab's
    # second try).
    client = MlflowClient(pg_server["uri"])
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pg_server["uri"])
    try:
        for round_ in range(3):
            run_ids, errors = log_the_same_data_at_once(client.create_experiment(f"same_{round_}"))
            assert errors == []
            for run_id in run_ids:
                (logged,) = client.get_run(run_id).inputs.dataset_inputs
                assert logged.dataset.name == "apple_sales"
    finally:
        mlflow.set_tracking_uri(previous)
