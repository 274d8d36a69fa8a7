"""A fresh sqlite store opened by several processes at once is created once and stays whole."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy
from alembic import command
from mlflow import MlflowClient
from mlflow.store.db.utils import _get_alembic_config, _get_latest_schema_revision
from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
from services import BIN, free_port, stop_group, wait_until_healthy

from conftest import sweeplab as sweeplab_here
from conftest import sweeplab_process as sweeplab
from conftest import sweeplab_tools

# Every test here is about making a store.
pytestmark = pytest.mark.fresh_store

# Each process spins until the same instant, then opens the store: without sweeplab's lock,
# one of the two fails in almost every try (`table experiments already exists`, ...), and
# some tries leave the file broken for good. One try: a second bought 15 s for little.
_OPEN_AT = """
import sys, time
from sweeplab.tracking import store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
store.open_sqlite(sys.argv[1])
"""


def _schema_revision(db) -> str:
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        (revision,) = connection.exec_driver_sql("SELECT version_num FROM alembic_version").one()
    engine.dispose()
    return revision


@pytest.mark.process
@pytest.mark.slow
def test_processes_opening_a_fresh_store_at_the_same_instant_all_succeed(tmp_path):
    db = tmp_path / "mlflow.db"
    at = time.time() + 3  # after every process has imported MLflow
    command = [sys.executable, "-c", _OPEN_AT, f"sqlite:///{db}", str(at)]
    processes = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    assert _schema_revision(db) == _get_latest_schema_revision()
    assert MlflowClient(f"sqlite:///{db}").search_experiments()[0].name == "Default"


@pytest.mark.process
@pytest.mark.slow
def test_a_server_and_a_run_started_together_on_a_fresh_store_both_work(tmp_path):
    """What a newcomer does: `make server` in one terminal, `make run` in another."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        # One uvicorn worker: the race is the store's migration, which the command does
        # before any worker starts; a second worker is a second MLflow import (~8 CPU-s).
        server = subprocess.Popen(
            [str(BIN / "sweeplab-tools"), "server", "--port", str(port), "--workers", "1"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        # The run starts while the server is still importing MLflow; both reach the store.
        with ThreadPoolExecutor(1) as pool:
            started = pool.submit(sweeplab, "model=ridge", "model.alpha=1", cwd=tmp_path)
            wait_until_healthy(f"http://127.0.0.1:{port}", server, 90, log)
            done = started.result()
            assert done.returncode == 0, done.stderr
        client = MlflowClient(f"http://127.0.0.1:{port}")
        (experiment,) = client.search_experiments(filter_string="name = 'Apple_Models'")
        runs_seen = client.search_runs([experiment.experiment_id])
        assert [r.data.params["alpha"] for r in runs_seen] == ["1"]
        # It says the command it runs, whole, to run by hand with a flag added.
        (said,) = [line for line in log.read_text().splitlines() if line.startswith("starting:")]
        assert said.startswith("starting: MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false ")
        assert f" -m mlflow server --host 127.0.0.1 --port {port} " in said
    finally:
        stop_group(server)


def _half_migrated_store(db) -> None:
    """A store whose first migration stopped part-way, as a lost race leaves it."""
    url = f"sqlite:///{db}"
    engine = sqlalchemy.create_engine(url)
    InitialBase.metadata.create_all(engine)
    config = _get_alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "a8c4a736bde6")
        # Alembic's copy of the table it was rebuilding when the process died.
        connection.exec_driver_sql("CREATE TABLE _alembic_tmp_latest_metrics (key VARCHAR(250))")
    engine.dispose()


def test_a_half_migrated_store_is_one_line_saying_what_to_do_and_is_left_as_it_was(tmp_path):
    db = tmp_path / "outputs" / "mlflow.db"
    db.parent.mkdir()
    _half_migrated_store(db)
    before = db.read_bytes()
    done = sweeplab_here("model=ridge", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f"sweeplab: error: the sqlite store {db} was left half-migrated (table "
        "_alembic_tmp_latest_metrics already exists): two processes created it at once, or its "
        "first start was cut short. It holds no runs: move it aside "
        f"(mv {db} {db}.broken) and run again to start a new store.\n"
    )
    assert db.read_bytes() == before
    tools = sweeplab_tools("compare", "--experiments", "Apple_Models", cwd=tmp_path)
    assert tools.returncode == 2
    assert "was left half-migrated" in tools.stderr and "Traceback" not in tools.stderr
