"""A local sqlite tracking store, created and migrated by one process at a time.

MLflow creates a fresh sqlite file's tables and then runs its schema migrations when a
process first opens it. Two processes doing that at once (a `make server` and a `make run`
started together, a CI matrix, parallel sweeps) fail with "table ... already exists", and a
migration cut short leaves the file unusable for good. Every sweeplab process therefore
opens a sqlite store while holding an OS lock on a file beside it.
"""

import contextlib
import logging
import re
import sqlite3
from pathlib import Path

from alembic.util.exc import CommandError as AlembicError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from sweeplab.util import oslock
from sweeplab.util.errors import TrackingError
from sweeplab.util.redact import redact_uri

# What a sqlite store looks like after two processes migrated it at once: alembic's
# leftover copy tables, a column or table added twice, a revision moved under its feet.
_HALF_MIGRATED = re.compile(
    r"_alembic_tmp_|duplicate column name|table \w+ already exists|Online migration expected"
)


def cannot_open(uri: str, error: Exception) -> str:
    """The one line for a tracking store that would not open: its URI and the first cause."""
    cause = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"cannot open the tracking store {redact_uri(uri)}: {cause}"


def sqlite_path(uri: str) -> Path | None:
    """The database file a ``sqlite:///`` URI names, or None for other stores."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def lock_path(database: Path) -> Path:
    """The file whose OS lock serialises creating and migrating ``database``."""
    return database.with_name(database.name + ".lock")


def migrating(database: Path) -> "contextlib.AbstractContextManager[None]":
    """Hold the lock beside ``database`` while this process may create or migrate it."""
    return oslock.held(lock_path(database))


def open_sqlite(uri: str) -> MlflowClient:
    """Open (creating and migrating if need be) the sqlite store ``uri`` under its lock.

    MLflow keeps the opened store for the process, so later clients skip the migration.
    Raises TrackingError (one line; for a half-migrated store, what to do about it).
    """
    database = sqlite_path(uri)
    assert database is not None, uri
    # "Creating initial MLflow database tables..." and alembic's steps: nothing to act on.
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with migrating(database):
            client = MlflowClient(uri)
            client.search_experiments(max_results=1)
    except (OSError, MlflowException, SQLAlchemyError, AlembicError) as e:
        raise TrackingError(_half_migrated(database, e) or cannot_open(uri, e)) from None
    return client


def _half_migrated(database: Path, error: Exception) -> str | None:
    """Say what to do about a sqlite store an interrupted migration left broken, if it is one."""
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()
    if not cause or not _HALF_MIGRATED.search(cause[0]):
        return None
    return (
        f"the sqlite store {database} was left half-migrated ({cause[0]}): two processes "
        f"created it at once, or its first start was cut short. {_what_to_do(database)}"
    )


def _what_to_do(database: Path) -> str:
    runs = _count_runs(database)
    aside = f"mv {database} {database}.broken"
    if runs == 0:
        return f"It holds no runs: move it aside ({aside}) and run again to start a new store."
    held = "an unknown number of" if runs is None else str(runs)
    return (
        f"It holds {held} runs: restore it from a backup, or move it aside ({aside}) "
        "and run again to start a new store (its runs stay in the moved file)."
    )


def _count_runs(database: Path) -> int | None:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError as e:
        return 0 if "no such table" in str(e) else None
    except sqlite3.Error:
        return None
