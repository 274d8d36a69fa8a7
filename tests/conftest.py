"""Shared fixtures: every test runs in its own directory with its own sqlite store."""

import contextlib
import gc
import importlib.util
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from services import BIN, free_port, start_server, stop_group

from sweeplab.config.schema import register_configs
from sweeplab.tracking.store import open_sqlite


def pytest_configure(config: pytest.Config) -> None:
    """Let the programs the tests start take Ctrl-C, however the suite itself was started.

    A suite started in the background of a script (`make test &`) inherits SIGINT ignored, and
    so would every sweeplab it starts: the Ctrl-C tests would wait on runs that never stop. A
    handler in each test process makes the programs it starts take SIGINT's default again.
    (A hook, not module code: the tracking process imports test modules, and this conftest,
    to run their functions, on a thread where signal handlers cannot be set.)
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# CI (make test-all) installs every extra; there a missing one is a failure, not a skip.
REQUIRE_EXTRAS = os.environ.get("SWEEPLAB_REQUIRE_CLUSTER_TESTS") == "1"


def need_extra(module: str, extra: str | None = None) -> None:
    """Skip unless the optional library ``module`` (sweeplab's extra ``extra``, by default
    named as the module) is installed."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed (make install EXTRAS={extra or module})"
    if REQUIRE_EXTRAS:
        pytest.fail(f"{message}; SWEEPLAB_REQUIRE_CLUSTER_TESTS=1 does not allow skipping")
    pytest.skip(message)


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store that MLflow has created and migrated: made once per test process.

    Creating a store runs all of MLflow's schema migrations, ~3 s of CPU. A test about runs
    starts from a copy of this one instead (as a user's second run finds its store);
    tests about making a store, or about making none, are marked ``fresh_store``.
    """
    path = tmp_path_factory.mktemp("migrated") / "mlflow.db"
    open_sqlite(f"sqlite:///{path}")
    return path


def copy_of_store(migrated: Path, database: Path) -> Path:
    """Put a copy of the migrated store at ``database`` (sqlite's backup: a consistent copy)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    # closing(): a sqlite3 connection's own `with` commits but leaves the file open.
    with (
        contextlib.closing(sqlite3.connect(migrated)) as source,
        contextlib.closing(sqlite3.connect(database)) as target,
    ):
        source.backup(target)
    return database


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    migrated_store: Path,
) -> Iterator[Path]:
    """Launch from an empty tmp dir, so the local store is tmp_path/outputs/mlflow.db.

    That store exists, migrated (a copy of ``migrated_store``), unless the test is marked
    ``fresh_store``.
    """
    monkeypatch.chdir(tmp_path)
    if request.node.get_closest_marker("fresh_store") is None:
        copy_of_store(migrated_store, tmp_path / "outputs" / "mlflow.db")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # sweeplab.tracking.log.connect sets MLflow's request settings in os.environ, as it should
    # for the process it runs in; a test's runs must not leave them to the next test.
    before = dict(os.environ)
    # A test that sets Hydra's view of a job's config (as a launcher does) must not leave it to
    # the next: sweeplab reads the launch directory from it.
    hydra_view = HydraConfig.instance().cfg
    yield tmp_path
    while mlflow.active_run():
        mlflow.end_run()
    os.environ.clear()
    os.environ.update(before)
    HydraConfig.instance().cfg = hydra_view


@pytest.fixture
def loader() -> Iterator[object]:
    """Hydra's own config loader for sweeplab's configs."""
    register_configs()
    with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """Compose the shipped config with overrides, as `sweeplab` would."""
    register_configs()

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


def _in_process(
    argv: list[str], main: Callable[[], object], cwd: Path, env: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    """Run ``main`` as the command ``argv`` would, in ``cwd`` with ``env`` added; capture what
    it prints and its exit code, and put the process's argv, cwd and environment back."""
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    out, err = io.StringIO(), io.StringIO()
    code = 0
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.update(env or {})
    try:
        os.chdir(cwd)
        sys.argv = argv
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                returned = main()
                code = returned if isinstance(returned, int) else 0
            except SystemExit as e:  # the entry point's exit, or argparse's usage errors
                code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        mlflow.set_tracking_uri(None)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def sweeplab(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `sweeplab` with these arguments in this process, and capture what it prints.

    What its console script does but for the tracking process (runs are logged from this
    process instead; tests/test_tracker.py covers that process): sweeplab.app.cli, with
    ``cwd`` as the launch directory and ``env`` added to the environment. Its exit code is
    the CompletedProcess's returncode. ``timeout`` is for sweeplab_process's signature alone.
    For what only a process can show (signals, a clean interpreter, the tracking process,
    PYTHONPATH), use sweeplab_process.
    """
    from sweeplab import app
    from sweeplab.util import process

    def run() -> None:
        process.configure()
        app.cli()

    saved_term = signal.getsignal(signal.SIGTERM)
    GlobalHydra.instance().clear()
    try:
        return _in_process(["sweeplab", *args], run, cwd, env)
    finally:
        gc.unfreeze()  # cli() freezes the heap for a fast exit, which this process does not take
        signal.signal(signal.SIGTERM, saved_term)
        GlobalHydra.instance().clear()


def sweeplab_tools(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `sweeplab-tools` with these arguments in this process, and capture what it prints.

    sweeplab.cli.tools.main, with ``cwd`` as the working directory and ``env`` added to the
    environment; ``timeout`` is for the console script's signature alone. Commands that
    start a server stay processes (test_cli, test_server).
    """
    from sweeplab.cli import tools

    return _in_process(["sweeplab-tools", *args], lambda: tools.main(list(args)), cwd, env)


def sweeplab_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
):
    """Run the installed `sweeplab` console script and capture what it prints."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(env or {})
    return subprocess.run(
        [str(BIN / "sweeplab"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_sweeplab(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start the `sweeplab` console script on the local store, capturing what it prints."""
    return subprocess.Popen(
        [str(BIN / "sweeplab"), *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, **(env or {})},
    )  # fmt: skip


def wait_for_running(db: Path, count: int, timeout: float = 60) -> list[str]:
    """Wait until ``count`` runs in the sqlite store ``db`` are RUNNING; return their ids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        # Plain sqlite3, read-only: an MLflow client here could race the runner's schema
        # migration of a fresh file.
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                rows = connection.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")
                running = [row[0] for row in rows]
        except sqlite3.OperationalError:
            continue
        if len(running) >= count:
            return running
    raise AssertionError(f"{count} run(s) never started in {db}")


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_store: Path
) -> Iterator[tuple[str, Path]]:
    """A real tracking server on a free loopback port, started the documented way.

    `sweeplab-tools server` serves <launch dir>/outputs; yields (URI, launch dir).
    """
    root = tmp_path_factory.mktemp("server")
    copy_of_store(migrated_store, root / "outputs" / "mlflow.db")
    port = free_port()
    server = start_server(root, port)
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        stop_group(server)
