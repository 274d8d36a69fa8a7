"""The tracking process: a helper that does a sweeplab process's MLflow work beside it.

Importing MLflow, its SQL store and skops takes ~4 s of one core, and logging a model is
Python work that competes with training for the interpreter's lock. ``start()`` launches a
helper process first thing; it imports them while this process composes the config, reads
the data and imports scikit-learn, then opens the store, creates runs and logs them on the
other core while this process trains. This process never imports MLflow on that path.

Work goes to the helper as a module-level function and its (picklable) arguments; results
and exceptions come back through futures. ``get()`` is the process's tracker: the helper if
one was started, else ``Local``, which calls the same functions in this process (library use,
tests, `sweeplab` with SWEEPLAB_TRACKING_PROCESS=off, and the workers of parallel launchers,
which log their own jobs).

The helper runs in its own session, so Ctrl-C in a terminal reaches only this process, which
still ends its runs through the helper. When this process exits, or dies, the helper finishes
the work it was given and exits: a run trained and sent is logged even then.
"""

import contextlib
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, Generic, ParamSpec, TypeVar

from sweeplab.util import process
from sweeplab.util.errors import RunFailed, UserError, error_summary, warn

P = ParamSpec("P")
T = TypeVar("T")

# Requests the helper works on at once: a sweep's next run is created while the last one is
# logged, and the sweep's own process may end runs meanwhile.
_THREADS = 4
# How long to wait for the helper to exit once it has no work left.
_EXIT_WAIT = 10.0


class TrackerLost(UserError):
    """The tracking process died, or could not take the work; says how."""


class Local:
    """Calls the functions in this process: the tracker when no helper runs."""

    remote = False

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> "Future[T]":
        """Call ``fn`` now; its result (or exception) in a done future."""
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        return future

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``."""
        return fn(*args, **kwargs)

    def environ(self, values: Mapping[str, str]) -> None:
        """Set environment variables where this tracker works: here, nothing more to do."""


class Tracker(Local):
    """A helper process that runs functions for this one, several at a time, in any order."""

    remote = True

    def __init__(self, *, models: bool = True) -> None:
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-P",  # not the working directory's modules: a `sweeplab` folder there
                "-m",
                "sweeplab.tracking.tracker",
                str(theirs.fileno()),
                *_MODELS[models],
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        # Closed by shutting down this side's writing: the reader keeps its own descriptor.
        self._socket = ours
        self._conn = Connection(os.dup(ours.fileno()))
        self._send = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._ids = itertools.count()
        self._lost: str | None = None
        self._reader = threading.Thread(target=self._read, name="sweeplab-tracker", daemon=True)
        self._reader.start()
        # Users' estimator classes unpickle there from where this process imported them.
        self._conn.send_bytes(pickle.dumps(list(sys.path)))

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> "Future[T]":
        """Send ``fn(*args, **kwargs)`` to the helper; its result arrives in the future."""
        future: Future[T] = Future()
        try:
            blob = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            future.set_exception(e)
            return future
        with self._send:
            if self._lost is not None:
                future.set_exception(TrackerLost(self._lost))
                return future
            key = next(self._ids)
            self._pending[key] = future
            try:
                self._conn.send_bytes(pickle.dumps((key, blob)))
            except OSError:
                self._pending.pop(key)
                future.set_exception(TrackerLost(self._why_lost()))
        return future

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in the helper; waits for it and raises what it raised."""
        return self.submit(fn, *args, **kwargs).result()

    def environ(self, values: Mapping[str, str]) -> None:
        """Set environment variables in the helper before it starts any later work."""
        with self._send, contextlib.suppress(OSError):  # a helper gone falls back anyway
            self._conn.send_bytes(pickle.dumps((None, dict(values))))

    def _read(self) -> None:
        while True:
            try:
                key, ok, value = pickle.loads(self._conn.recv_bytes())
            except Exception:  # EOF: the helper is gone (or done); anything else is as bad
                break
            future = self._pending.pop(key, None)
            if future is not None:
                (future.set_result if ok else future.set_exception)(value)
        with self._send:
            self._lost = self._why_lost()
            lost, self._pending = self._pending, {}
        for future in lost.values():
            future.set_exception(TrackerLost(self._lost))

    def _why_lost(self) -> str:
        """What became of the helper, once its end of the connection is gone."""
        try:
            code = self._process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "sweeplab's tracking process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            return (
                f"sweeplab's tracking process was killed ({name}): the kernel's out-of-memory "
                "killer is the usual cause"
            )
        return f"sweeplab's tracking process exited (code {code})"

    def close(self, *, finish: bool = True) -> None:
        """Let the helper finish what it was given (unless not ``finish``), then exit; wait.

        A helper with nothing left to do is stopped at once: it may still be importing.
        """
        with self._send:
            idle = not self._pending
        if idle or not finish:
            self._process.kill()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)  # the helper reads the end of its work
        try:
            self._process.wait(timeout=_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


_current: Local = Local()


# Options that print something and run nothing: no tracking process for them.
_RUNS_NOTHING = {"--version", "--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i",
                 "--shell-completion", "-sc"}  # fmt: skip


def wanted(args: list[str]) -> bool:
    """Whether a command line with these arguments may log runs (it does not only print)."""
    return not _RUNS_NOTHING.intersection(arg.split("=")[0] for arg in args)


def trains_here(args: list[str]) -> bool:
    """Whether the runs of a command line with these arguments train in this process.

    Not when it picks a launcher whose workers run the jobs (and log them themselves).
    """
    launchers = [a.partition("=")[2] for a in args if a.lstrip("+").startswith("hydra/launcher=")]
    return not launchers or launchers[-1] == "basic"


# How the helper is told whether it logs models (it then imports skops first, see serve()).
_MODELS = {True: [], False: ["--no-models"]}


def start(*, models: bool = True) -> None:
    """Start this process's tracking process (the console entry point does, first thing).

    ``models``: whether it will log models, which it then gets ready for from the start.
    """
    global _current
    if not _current.remote:
        _current = Tracker(models=models)


def get() -> Local:
    """This process's tracker: the helper process if started, else this process itself."""
    return _current


class Pending(Generic[T]):
    """Work sent to the tracking process; ``result()`` waits for it.

    If the helper died first, the work is done here instead (said once, on stderr): nothing
    is lost with the helper.
    """

    def __init__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> None:
        self._work = (fn, args, kwargs)
        self._by = _current
        self._future = _current.submit(fn, *args, **kwargs)

    def result(self) -> T:
        """The work's result (or its exception, raised)."""
        try:
            return self._future.result()
        except TrackerLost as e:
            _fall_back(self._by, e)
            fn, args, kwargs = self._work
            return fn(*args, **kwargs)


def _fall_back(lost: Local, why: TrackerLost) -> None:
    """Track in this process from now on, instead of in the helper that died."""
    global _current
    if lost is _current:
        _current = Local()
        warn(f"{why}; sweeplab goes on logging from its own process")


def later(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Pending[T]:
    """Start ``fn(*args, **kwargs)`` in the tracking process; wait with ``result()``."""
    return Pending(fn, *args, **kwargs)


def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the tracking process (here if there is none, or it died)."""
    return later(fn, *args, **kwargs).result()


def set_environ(values: Mapping[str, str]) -> None:
    """Set environment variables in this process and in its tracking process, if any.

    MLflow reads its client settings (timeouts, retries) only from the environment; the
    entry points (sweeplab.app, the sweepers) set them from the config here.
    """
    os.environ.update(values)
    _current.environ(values)


def stop(*, finish: bool = True) -> None:
    """Wait for the tracking process to finish its work and exit; then track in-process.

    Not ``finish``: stop it at once, its work left undone (after an interrupt, whose runs
    are ended KILLED already).
    """
    global _current
    current, _current = _current, Local()
    if isinstance(current, Tracker):
        current.close(finish=finish)


# ------------------------------------------------------------------ the helper's side


def _answer(conn: Connection, lock: threading.Lock, key: int, blob: bytes) -> None:
    """Run one request and send back its result, or the exception it raised."""
    try:
        fn, args, kwargs = pickle.loads(blob)
        reply: tuple[int, bool, Any] = (key, True, fn(*args, **kwargs))
    except BaseException as e:
        reply = (key, False, e)
    try:
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception (or result) that does not pickle: its text does
        error = reply[2] if not reply[1] else TypeError("the result does not pickle")
        text = "".join(traceback.format_exception(error))
        plain: Exception = RuntimeError(f"{error_summary(error)}\n{text}")
        if isinstance(error, RunFailed):
            plain = RunFailed(error.run_id, RuntimeError(error_summary(error)))
        data = pickle.dumps((key, False, plain))
    with lock, contextlib.suppress(OSError):  # if the other side is gone, the work is done
        conn.send_bytes(data)


def serve(fd: int, *, models: bool) -> None:
    """The helper's main loop: import, then answer requests until the other side is gone."""
    from sweeplab.tracking import record

    record.preload(models=models)
    conn = Connection(fd)
    lock = threading.Lock()
    with contextlib.suppress(EOFError, OSError):
        # First of all, where the other process imports from: the requests' pickles need it.
        sys.path[:] = pickle.loads(conn.recv_bytes())
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="sweeplab-tracking") as pool:
        while True:
            try:
                key, blob = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                break
            if key is None:  # settings, read in order: before any work sent after them
                os.environ.update(blob)
                continue
            pool.submit(_answer, conn, lock, key, blob)
    # Every request is answered (or its asker is gone): nothing left to tear down slowly.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    # Ctrl-C is for the process this one serves, which ends its runs through this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    process.configure()
    serve(int(sys.argv[1]), models=_MODELS[False][0] not in sys.argv[2:])
