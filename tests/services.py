"""Throwaway PostgreSQL clusters and Ray heads on loopback, for the scale-out tests and benchmarks.

Each runs as a real process in its own session, in its own temporary folder, on a free port of
127.0.0.1, and is stopped with everything it started.
"""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are: on PATH, or Debian's versioned folder."""
    if initdb := shutil.which("initdb"):
        # Resolved: a symlink on PATH may stand alone, without createdb beside it.
        return Path(initdb).resolve().parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process started with ``start_new_session`` and everything in its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # Children that outlived the group leader.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_port(port: int, process: subprocess.Popen, timeout: float, log: Path) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; raise with the log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} (exit code {process.poll()}):\n{tail}")


def start_server(
    root: Path, port: int, *extra: str, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`sweeplab-tools server [extra]` launched in ``root`` on 127.0.0.1:``port``, once healthy.

    Without ``extra`` it serves ``root``/outputs. Its output goes to ``root``/server.log.
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = root / "server.log"
    with open(log, "a") as out:
        server = subprocess.Popen(
            [str(BIN / "sweeplab-tools"), "server", "--port", str(port),
             "--workers", str(workers), *extra],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its uvicorn workers share the group; stop them together
        )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server, 90, log)
    except BaseException:
        stop_group(server)
        raise
    return server


def wait_until_healthy(uri: str, server: subprocess.Popen, timeout: float, log: Path) -> None:
    """Block until the server answers /health; raise with its log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
            if r.status == 200:
                return
        if server.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(
        f"mlflow server at {uri} never answered (exit code {server.poll()}):\n{tail}"
    )


@dataclass
class Postgres:
    """A PostgreSQL cluster in a temporary folder, with one empty database."""

    uri: str
    process: subprocess.Popen
    folder: Path

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove its folder."""
        stop_group(self.process, signal.SIGINT)
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    """Run a setup command; fail with what it printed."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def start_postgres(database: str = "mlflow") -> Postgres:
    """initdb into a new temporary folder, start it on a free loopback port, create ``database``."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL's initdb is not installed")
    folder = Path(tempfile.mkdtemp(prefix="sweeplab-pg-"))
    process = None
    try:
        # PostgreSQL refuses to run as root: as root, run it as Debian's `postgres` user.
        as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        data = folder / "data"
        _run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
              "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        port = free_port()
        log = folder / "postgres.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={folder}",
                 # A throwaway cluster: durability buys nothing here.
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for_port(port, process, 30, log)
        _run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
              database])  # fmt: skip
    except BaseException:
        if process is not None:
            stop_group(process, signal.SIGINT)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Postgres(f"postgresql://postgres@127.0.0.1:{port}/{database}", process, folder)


@dataclass
class RayHead:
    """A one-node Ray cluster started with `ray start --head --block` on loopback."""

    address: str
    # What a driver needs in its environment to join (Ray's token authentication).
    env: dict[str, str]
    process: subprocess.Popen
    folder: Path

    def stop(self) -> None:
        """Stop the head and its workers, then remove its folder."""
        # `ray start --block` takes 30 s to notice its processes ended; a throwaway head's
        # state does not matter, so whatever is left after 3 s is killed.
        stop_group(self.process, signal.SIGTERM, timeout=3)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_ray_head(num_cpus: int = 2, cwd: Path | None = None, token: bool = True) -> RayHead:
    """Start a Ray head on 127.0.0.1 the way the README says, with a token of its own.

    As the README does: `ray get-auth-token --generate` (into the head's ~/.ray), then
    `RAY_AUTH_MODE=token ray start --head`. A driver's ``env`` points RAY_AUTH_TOKEN_PATH at
    a copy of that file, as a user copies it to their machine. ``token=False`` starts a head
    without token authentication, as a plain `ray start --head` does.
    The head's environment has no MLflow variables: whatever the workers know of the
    tracking server reaches them through the sweep's runtime_env.
    """
    folder = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", HOME=str(folder))
    driver: dict[str, str] = {}
    if token:
        _run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env)
        copy = folder / "driver-copy-of-auth_token"
        shutil.copyfile(folder / ".ray" / "auth_token", copy)
        env["RAY_AUTH_MODE"] = "token"
        driver = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(copy)}
    port = free_port()
    log = folder / "ray.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={port}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={folder}",
             f"--ray-client-server-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}"],
            cwd=cwd or folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_port(port, process, 60, log)
        # The node is usable once its raylet has a socket; drivers would otherwise wait on it.
        deadline = time.monotonic() + 60
        while not list(folder.glob("session_latest/sockets/raylet*")):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"Ray's raylet never started:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    except BaseException:
        stop_group(process)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return RayHead(f"127.0.0.1:{port}", driver, process, folder)


def pids_where(match: Callable[[Path, str], bool]) -> list[int]:
    """Pids of this machine's processes for which ``match(/proc/<pid>, command line)`` holds.

    A process that ends while it is looked at (its files gone mid-read) is left out.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if match(entry, command):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def parent_pid(entry: Path) -> int:
    """The parent's pid of the process at ``entry`` (/proc/<pid>), from its stat line."""
    return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            this = int(stat.split("/")[2])
            children.setdefault(int(fields[1]), []).append(this)
            rss[this] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo += children.get(current, [])
    return total / 1e6


def session_rss_mb(session_leader: int) -> float:
    """Resident memory of every process in a session (daemons that left the tree too), in MB."""
    total = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session_leader:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total / 1e6
