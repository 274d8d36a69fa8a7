"""An OS file lock that processes on one machine (or one shared folder) take in turn."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; callers lose only their ordering across processes
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def held(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created, with its folder, if missing)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    # The file stays: deleting it while another process waits on it would let a third
    # process lock a new file of the same name alongside the second.
    with open(lock_file, "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield
