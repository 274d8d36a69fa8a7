"""Registered models: a run's model as a new version, and an alias (``@champion``) that moves
to it only when it wins on the same metric and the same data.

MLflow 3's registry: registered models, versions and aliases (no stages). Moving an alias is
compare-then-set, which two sweeps finishing at once could interleave; sweeplab holds a lock
in the registry itself (a registered model whose name is taken atomically by whoever creates
it first, on any store) while it compares and moves, so the last mover compares against what
the alias points at when it moves it.
"""

import contextlib
import math
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sweeplab.compare import ties
from sweeplab.tracking.tags import (
    DATA_DIGEST_TAG,
    FINGERPRINT_TAG,
    LOCK_TAG,
    MLFLOW_PARENT_RUN_ID,
    OVERRIDES_TAG,
    PARENT_RUN_TAG,
    REGISTERED_TAG,
    SOURCE_RUN_TAG,
    SWEEP_DIRECTION_TAG,
    SWEEP_METRIC_TAG,
    SWEEP_TAG,
    TASK_TAG,
    VERSION_DIRECTION_TAG,
    VERSION_METRIC_TAG,
    VERSION_VALUE_TAG,
)
from sweeplab.util.errors import UserError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from sweeplab.run.runner import RunResult

LOCK_SUFFIX = ".sweeplab-lock"
# A lock older than this was left by a process that died while holding it.
STALE_LOCK_SECONDS = 60.0
WAIT_FOR_LOCK_SECONDS = 120.0


@dataclass(frozen=True)
class Entry:
    """A version as sweeplab compares it: its number and how it scored on which data."""

    version: str
    metric: str | None
    value: float | None
    direction: str | None
    digest: str | None
    # A cross-validated version's fold values of its metric, and its folds' validation ratio
    # (compare.ties.ratio_of).
    folds: tuple[float, ...] = ()
    ratio: float | None = None

    @classmethod
    def of(cls, version: "ModelVersion") -> "Entry":
        """Read a version's sweeplab tags (None where a version registered by hand has none)."""
        tags = version.tags or {}
        raw = tags.get(VERSION_VALUE_TAG)
        return cls(
            version=str(version.version),
            metric=tags.get(VERSION_METRIC_TAG),
            value=float(raw) if raw is not None else None,
            direction=tags.get(VERSION_DIRECTION_TAG),
            digest=tags.get(DATA_DIGEST_TAG),
        )

    @classmethod
    def read(cls, client: "MlflowClient", version: "ModelVersion") -> "Entry":
        """A version's tags, and its run's fold values when it was cross-validated."""
        entry = cls.of(version)
        if entry.metric is None or not version.run_id:
            return entry
        from sweeplab.compare.results import fold_values

        run = client.get_run(version.run_id)
        ratio = ties.ratio_of(run.data.params)
        if f"{entry.metric}_std" not in run.data.metrics or ratio is None:
            return entry
        folds = tuple(fold_values(client, version.run_id, entry.metric))
        return replace(entry, folds=folds, ratio=ratio)

    def scored(self) -> str:
        """``v4 (rmse 121.59)``."""
        if self.metric is None or self.value is None:
            return f"v{self.version} (no sweeplab metric)"
        return f"v{self.version} ({self.metric} {self.value:.6g})"


def _model_id(run: "Run") -> str:
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise UserError(f"run {run.info.run_id} logged no model to register")
    return str(outputs[0].model_id)


def register(
    client: "MlflowClient",
    name: str,
    run: "Run",
    *,
    metric: str,
    direction: str,
    parent_run_id: str | None = None,
    description: str = "",
) -> "ModelVersion":
    """Register ``run``'s logged model as a new version of ``name`` (created when missing)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    value = run.data.metrics.get(metric)
    if value is None or not math.isfinite(value):
        raise UserError(f"run {run.info.run_id} has no {metric} to register its model by")
    try:
        client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    tags = {
        SOURCE_RUN_TAG: run.info.run_id,
        VERSION_METRIC_TAG: metric,
        VERSION_VALUE_TAG: repr(float(value)),
        VERSION_DIRECTION_TAG: direction,
        DATA_DIGEST_TAG: run.data.tags.get(DATA_DIGEST_TAG, ""),
        FINGERPRINT_TAG: run.data.tags.get(FINGERPRINT_TAG, ""),
    }
    if parent_run_id:
        tags[PARENT_RUN_TAG] = parent_run_id
    model_id = _model_id(run)
    with _tracking_uri(str(client.tracking_uri)):
        return client.create_model_version(
            name,
            source=f"models:/{model_id}",
            run_id=run.info.run_id,
            tags=tags,
            description=description or None,
            model_id=model_id,
        )


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to ``uri`` meanwhile.

    MLflow 3.17's sqlite registry looks a ``models:/<id>`` source up with a client of the
    global URI, not of the client registering it.
    """
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def _current(client: "MlflowClient", name: str, alias: str) -> "ModelVersion | None":
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def decide(
    new: Entry, now: Entry | None, always: bool, alpha: float = ties.ALPHA
) -> tuple[bool, str]:
    """Whether the alias moves from ``now`` to ``new``, and why not when it does not.

    On the same folds (cross-validated, same digest) ``new`` wins only when it is better
    and a paired test on the folds gives p < ``alpha``; a holdout wins on any gain.
    """
    if now is None or always:
        return True, ""
    if now.version == new.version:
        return False, "it points there already"
    if now.metric is None or now.value is None:
        return False, f"v{now.version} has no sweeplab metric to compare with"
    if (now.metric, now.direction) != (new.metric, new.direction):
        return False, (
            f"v{now.version} is ranked by {now.metric} ({now.direction}), "
            f"v{new.version} by {new.metric} ({new.direction}): not compared"
        )
    if now.digest != new.digest:
        return False, (
            f"v{new.version} was trained on other data (digest {new.digest or '?'}, "
            f"v{now.version}: {now.digest or '?'}): not compared"
        )
    assert new.value is not None
    better = new.value < now.value if new.direction == "minimize" else new.value > now.value
    if not better:
        return False, f"v{new.version} has {new.metric} {new.value:.6g}, no better"
    if new.folds and new.ratio is not None and len(new.folds) == len(now.folds):
        p = ties.p_value(new.folds, now.folds, new.ratio)
        if p >= alpha:
            return False, (
                f"v{new.version} has {new.metric} {new.value:.6g}, within noise: on the same "
                f"{len(new.folds)} folds the corrected paired t-test gives p={p:.3g} >= "
                f"sweep.alpha={alpha:g}"
            )
    return True, ""


class _Lock:
    """The registry-wide lock for one registered model's aliases, as a registered model."""

    def __init__(self, client: "MlflowClient", name: str) -> None:
        self.client, self.name = client, name + LOCK_SUFFIX

    def __enter__(self) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import (
            RESOURCE_ALREADY_EXISTS,
            RESOURCE_DOES_NOT_EXIST,
            ErrorCode,
        )

        # Both say "held": MLflow's store, refused a name that exists, looks that model up to
        # word its error, and the holder may delete it in between (then: does not exist).
        held = {ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)}
        holder = f"{socket.gethostname()}:{os.getpid()}"
        deadline = time.monotonic() + WAIT_FOR_LOCK_SECONDS
        while True:
            try:
                self.client.create_registered_model(
                    self.name, tags={LOCK_TAG: holder},
                    description="held by sweeplab while it moves an alias; removed after",
                )  # fmt: skip
                return
            except MlflowException as e:
                if e.error_code not in held:
                    raise
            self._break_if_stale()
            if time.monotonic() > deadline:
                raise UserError(
                    f"registered model {self.name!r} (sweeplab's lock) was held for over "
                    f"{WAIT_FOR_LOCK_SECONDS:.0f} s; delete it if no sweep is running"
                )
            time.sleep(0.1)

    def _break_if_stale(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            held = self.client.get_registered_model(self.name)
        except MlflowException:  # released meanwhile
            return
        if time.time() - held.creation_timestamp / 1000 > STALE_LOCK_SECONDS:
            with contextlib.suppress(MlflowException):
                self.client.delete_registered_model(self.name)

    def __exit__(self, *exc: object) -> None:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):
            self.client.delete_registered_model(self.name)


def promote(
    client: "MlflowClient",
    name: str,
    version: "ModelVersion",
    alias: str,
    *,
    always: bool,
    forced_by: str = "sweep.promote=always",
    alpha: float = ties.ALPHA,
) -> str:
    """Move ``alias`` to ``version`` when it wins (or ``always``); return the console's line.

    ``champion: apple_demand v4 (rmse 121.59) replaces v3 (rmse 121.86)``, or
    ``champion stays apple_demand v3 (rmse 121.86): v4 has rmse 123.30``.
    """
    new = Entry.read(client, version)
    with _Lock(client, name):
        current = _current(client, name, alias)
        now = Entry.read(client, current) if current is not None else None
        move, why = decide(new, now, always, alpha)
        if move:
            client.set_registered_model_alias(name, alias, new.version)
    if not move:
        assert now is not None
        return f"{alias} stays {name} {now.scored()}: {why}"
    if now is None:
        return f"{alias}: {name} {new.scored()}, the first"
    if now.version == new.version:
        return f"{alias}: {name} {new.scored()} already"
    forced = f" ({forced_by})" if always and decide(new, now, False, alpha)[0] is False else ""
    return f"{alias}: {name} {new.scored()} replaces {now.scored()}{forced}"


def versions(
    client: "MlflowClient", name: str | None = None
) -> list[tuple["ModelVersion", list[str]]]:
    """Every version of ``name`` (or of every registered model) with its aliases, newest first
    within each model; sweeplab's locks left out."""
    if name:
        models = [client.get_registered_model(name)]
    else:
        listed = client.search_registered_models(max_results=1000)
        models = [m for m in listed if LOCK_TAG not in (m.tags or {})]
    found: list[tuple[ModelVersion, list[str]]] = []
    for model in models:
        # Versions found by a search carry no aliases; the registered model has them all.
        aliases: dict[str, list[str]] = {}
        for alias, number in (model.aliases or {}).items():
            aliases.setdefault(str(number), []).append(alias)
        for version in _versions_named(client, model.name):
            found.append((version, sorted(aliases.get(str(version.version), []))))
    return sorted(found, key=lambda pair: (pair[0].name, -int(pair[0].version)))


def _versions_named(client: "MlflowClient", name: str) -> list["ModelVersion"]:
    """Every version of registered model ``name`` (MlflowException if there is none)."""
    escaped = name.replace("'", "\\'")
    return list(client.search_model_versions(f"name = '{escaped}'", max_results=10000))


def _existing_versions(client: "MlflowClient", name: str) -> list["ModelVersion"]:
    """The versions of ``name``, newest first; none when the registered model does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        found = _versions_named(client, name)
    except MlflowException:
        return []
    return sorted(found, key=lambda v: -int(v.version))


def fitting_version(
    client: "MlflowClient", name: str, run: "Run", metric: str, direction: str
) -> "tuple[ModelVersion | None, str]":
    """An existing version of ``name`` that is this run's model again, and its line; or none.

    Raises UserError when ``name``'s versions are ranked by another metric or direction:
    a version ranked otherwise could never be compared with them, so it is not registered.
    A version with the same config fingerprint, data digest and score is the same model
    trained again (an identical sweep re-run): it is reused instead of a duplicate.
    """
    existing = _existing_versions(client, name)
    ranked = [Entry.of(v) for v in existing if Entry.of(v).metric is not None]
    if ranked and (ranked[0].metric, ranked[0].direction) != (metric, direction):
        newest = ranked[0]
        # Ranking it their way is a way out only where the run has their metric.
        theirs = f", or rank it by {newest.metric}" if newest.metric in run.data.metrics else ""
        raise UserError(
            f"{name}'s versions are ranked by {newest.metric} ({newest.direction}), v"
            f"{newest.version} the newest; run {run.info.run_id}'s model is ranked by {metric} "
            f"({direction}) and could never be compared with them: register it under another "
            f"name{theirs}"
        )
    tags = run.data.tags
    fingerprint, digest = tags.get(FINGERPRINT_TAG), tags.get(DATA_DIGEST_TAG, "")
    value = run.data.metrics.get(metric)
    for version in existing:
        vtags = version.tags or {}
        if (
            fingerprint
            and vtags.get(FINGERPRINT_TAG) == fingerprint
            and vtags.get(DATA_DIGEST_TAG, "") == digest
            and value is not None
            and vtags.get(VERSION_VALUE_TAG) == repr(float(value))
        ):
            return version, (
                f"registry {name} v{version.version} is this model already (same config "
                f"fingerprint, data and {metric} {value:.6g}): no new version"
            )
    return None, ""


def _registered(name: str, version: "ModelVersion", run_id: str) -> str:
    """``registry apple_demand v4 (models:/apple_demand/4, run <id>)``."""
    return f"registry {name} v{version.version} (models:/{name}/{version.version}, run {run_id})"


def register_and_promote(
    client: "MlflowClient",
    name: str,
    run_id: str,
    *,
    alias: str,
    always: bool,
    metric: str,
    direction: str,
    parent_run_id: str | None = None,
    description: str = "",
    noted_on: str | None = None,
    alpha: float = ties.ALPHA,
) -> list[str]:
    """Register run ``run_id``'s model under ``name``, then promote it; the lines to print.

    ``noted_on``: the run (a sweep's parent, or ``run_id`` itself) that gets REGISTERED_TAG.
    """
    run = client.get_run(run_id)
    version, line = fitting_version(client, name, run, metric, direction)
    if version is None:
        version = register(
            client, name, run, metric=metric, direction=direction, parent_run_id=parent_run_id,
            description=description,
        )  # fmt: skip
        line = _registered(name, version, run_id)
    moved = promote(client, name, version, alias, always=always, alpha=alpha)
    if noted_on:
        client.set_tag(noted_on, REGISTERED_TAG, f"{name} v{version.version}")
    return [line, moved]


def register_run(
    result: "RunResult",
    overrides: list[str],
    *,
    name: str,
    alias: str,
    always: bool,
    alpha: float = ties.ALPHA,
) -> list[str]:
    """Register a single run's model in ``name`` (sweep.register); the lines to print."""
    from sweeplab.tracking.record import store_client

    return register_and_promote(
        store_client(result.tracking_uri), name, result.run_id, alias=alias, always=always,
        metric=result.metric, direction=result.direction,
        description=f"Run {result.run_name!r} ({result.run_id}), ranked by {result.metric}: "
        f"{' '.join(overrides) or '(defaults)'}",
        noted_on=result.run_id, alpha=alpha,
    )  # fmt: skip


def _ranking(client: "MlflowClient", run: "Run", metric: str | None,
             direction: str | None) -> tuple[str, str]:  # fmt: skip
    """How to compare ``run``: the given metric, else its sweep's, else its task's own."""

    from sweeplab.model import tasks

    sweep_tags: dict[str, str] = {}
    if parent := run.data.tags.get(MLFLOW_PARENT_RUN_ID):
        sweep_tags = client.get_run(parent).data.tags
    return tasks.ranking(
        metric,
        direction,
        task=tasks.TASKS.get(run.data.tags.get(TASK_TAG, "")),
        earlier=(sweep_tags.get(SWEEP_METRIC_TAG), sweep_tags.get(SWEEP_DIRECTION_TAG)),
    )


def promote_run(
    client: "MlflowClient",
    run_id: str,
    name: str,
    *,
    alias: str,
    always: bool,
    metric: str | None = None,
    direction: str | None = None,
) -> list[str]:
    """``sweeplab-tools promote``: register ``run_id``'s model under ``name`` unless it is a
    version already, then promote it; the lines to print.

    A sweep's parent run stands for its best job's run.
    """
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise UserError(f"no run {run_id}: {e.message.splitlines()[0]}") from None
    lines = []
    if run.data.tags.get(SWEEP_TAG) == "true":
        best = run.data.tags.get("best_run_id")
        if not best:
            raise UserError(f"run {run_id} is a sweep's parent with no best job to promote")
        lines.append(f"run {run_id} is a sweep's parent: promoting its best job's run {best}")
        run = client.get_run(best)
    metric, direction = _ranking(client, run, metric, direction)
    model_id = _model_id(run)
    existing = _version_of(client, name, model_id)
    if existing is not None:
        entry = Entry.of(existing)
        if (entry.metric, entry.direction) != (metric, direction):
            raise UserError(
                f"{name} v{existing.version} is run {run.info.run_id}'s model already, ranked by "
                f"{entry.metric} ({entry.direction}), not {metric} ({direction}); promote it "
                f"with --metric {entry.metric}, or register it in another model (--name)"
            )
        version = existing
        lines.append(f"registry {name} v{version.version} is run {run.info.run_id}'s model already")
    elif (same := fitting_version(client, name, run, metric, direction))[0] is not None:
        version = same[0]
        lines.append(same[1])
    else:
        parent = run.data.tags.get(MLFLOW_PARENT_RUN_ID)
        overrides = run.data.tags.get(OVERRIDES_TAG, "")
        version = register(
            client, name, run, metric=metric, direction=direction, parent_run_id=parent,
            description=f"Promoted by hand from run {run.info.run_id}"
            + (f" of sweep {parent}" if parent else "") + f": {overrides or '(defaults)'}",
        )  # fmt: skip
        lines.append(_registered(name, version, run.info.run_id))
    moved = promote(client, name, version, alias, always=always, forced_by="--always")
    return [*lines, moved]


def _version_of(client: "MlflowClient", name: str, model_id: str) -> "ModelVersion | None":
    """The newest version of ``name`` that is logged model ``model_id``, if any."""
    from mlflow.exceptions import MlflowException

    try:
        found = _versions_named(client, name)
    except MlflowException:  # no such registered model yet
        return None
    same = [v for v in found if v.source == f"models:/{model_id}"]
    return max(same, key=lambda v: int(v.version)) if same else None


def table(found: list[tuple["ModelVersion", list[str]]]) -> str:
    """The versions as an aligned table, one row each, newest first within each model."""
    import pandas as pd

    rows = []
    for v, aliases in found:
        entry = Entry.of(v)
        tags = v.tags or {}
        rows.append({
            "model": v.name,
            "version": int(v.version),
            "aliases": ",".join(aliases),
            "metric": entry.metric or "",
            "value": f"{entry.value:.6g}" if entry.value is not None else "",
            "data": entry.digest or "",
            "run": v.run_id or "",
            "sweep": tags.get(PARENT_RUN_TAG, ""),
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(v.creation_timestamp / 1000)),
        })  # fmt: skip
    return str(pd.DataFrame(rows).to_string(index=False))
