"""`sweeplab-tools`: a tracking server over the local store, experiment search, comparisons,
registered models (list, promote) and batch predictions."""

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

from sweeplab.compare import ties
from sweeplab.config import schema
from sweeplab.model import tasks
from sweeplab.model.tasks import METRICS
from sweeplab.tracking.tags import ERROR_TAG
from sweeplab.util import env, process, quiet
from sweeplab.util.errors import UserError, error_lines
from sweeplab.util.redact import redact_uri


def tracking_config(option: str, uri: str | None = None) -> DictConfig:
    """The ``tracking`` group composed and validated as the runner would, optionally at ``uri``."""
    schema.register_configs()
    with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"tracking={option}"])
    if uri:
        # Assigned, not passed as an override: URIs may hold characters Hydra's grammar parses.
        cfg.tracking.uri = uri
    schema.validate(cfg)
    tracking: DictConfig = cfg.tracking
    return tracking


def server_command(
    host: str,
    port: int,
    workers: int,
    extra: Sequence[str] = (),
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
) -> list[str]:
    """The `mlflow server` command line: the local store by default, or the given ones."""
    local = tracking_config("local")
    return [
        sys.executable, "-P", "-m", "mlflow", "server",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--backend-store-uri", backend_store_uri or str(local.uri),
        # Artifacts are proxied: clients upload and download through the server, so workers
        # on other machines need no shared filesystem. By default they go into the folder
        # the local store uses, so the UI shows both.
        "--artifacts-destination", artifacts_destination or str(local.artifact_location),
        *extra,
    ]  # fmt: skip


def check_backend_store(uri: str) -> None:
    """Fail with one line when a database backend store is unreachable or its driver missing."""
    if not uri.startswith("postgresql"):
        return
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        raise UserError(
            f"a PostgreSQL backend store needs psycopg: pip install 'sweeplab[postgres]' "
            f"(for {redact_uri(uri)})"
        )
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": 5})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as e:  # the driver's message says what is wrong (host, auth, database)
        cause = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise UserError(f"cannot open the backend store {redact_uri(uri)}: {cause}") from None


def _check_port_free(host: str, port: int) -> None:
    # `mlflow server` reports a taken port in its log and still exits 0.
    import socket

    with socket.socket() as probe:
        # As the server's own socket does: a port whose old connections linger is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UserError(
                f"cannot listen on {host}:{port} ({e.strerror}): another server runs there? "
                "Pick another port with --port"
            ) from None


def serve(args: argparse.Namespace) -> int:
    """Run `mlflow server` in this process on the local store, or the given ones."""
    _check_port_free(args.host, args.port)
    if args.backend_store_uri:
        check_backend_store(args.backend_store_uri)
    # The server exists to serve the store under outputs/, whatever MLFLOW_TRACKING_URI says.
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    extra = []
    if args.app_name:
        extra += ["--app-name", args.app_name]
    if args.allowed_hosts:
        extra += ["--allowed-hosts", args.allowed_hosts]
    command = server_command(
        args.host,
        args.port,
        args.workers,
        extra,
        args.backend_store_uri,
        args.artifacts_destination,
    )
    # MLflow's background job workers (GenAI scorers) cost ~1.6 GB; runs don't need them.
    jobs = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
    shown = [] if jobs in os.environ else [f"{jobs}=false"]  # the command as run, to rerun
    os.environ.setdefault(jobs, "false")
    _migrate_local_store(command[command.index("--backend-store-uri") + 1])
    print("starting:", redact_uri(" ".join([*shown, *command])), flush=True)
    # uvicorn's worker processes never run sweeplab's filters (util.quiet): the environment
    # carries the one they need.
    given = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [given, f"ignore:{quiet.SERVER_NOTICE}"]))
    # MLflow's own command line (its console script's entry point), in this process rather
    # than a new interpreter: MLflow is imported already, which saves one of the three
    # imports of MLflow a server start took (21 s to healthy; see docs/speed.md).
    from mlflow.cli import cli

    # exits, as `mlflow server` does
    cli.main(args=command[command.index("server") :], prog_name="mlflow")
    return 0


def _migrate_local_store(uri: str) -> None:
    """Create or migrate a sqlite backend store under sweeplab's lock, before MLflow opens it.

    The server's own start would migrate it unlocked, racing a run started at the same time.
    """
    from sweeplab.tracking.store import open_sqlite, sqlite_path

    if sqlite_path(uri) is not None:
        open_sqlite(uri)  # its error is one line, a half-migrated store's says what to do


def open_store(args: argparse.Namespace) -> "MlflowClient":
    """Connect to the store ``--tracking``/``--tracking-uri`` name, which must exist already."""
    from sweeplab.tracking.log import connect
    from sweeplab.tracking.store import sqlite_path

    tracking = tracking_config(args.tracking, args.tracking_uri)
    uri = str(tracking.uri)
    if (database := sqlite_path(uri)) and not database.is_file():
        raise UserError(f"no store at {uri} yet: runs create it (run `sweeplab` first)")
    # MLflow takes its client settings (timeouts, retries) only from the environment.
    os.environ.update(env.mlflow_client(tracking))
    return connect(tracking)


def list_experiments(args: argparse.Namespace) -> int:
    """Print the experiments matching an MLflow filter string, one per line with tags."""
    from mlflow.exceptions import MlflowException

    client = open_store(args)
    uri = str(client.tracking_uri)
    try:
        experiments = client.search_experiments(filter_string=args.filter)
    except MlflowException as e:
        raise UserError(f"cannot search with filter {args.filter!r}: {e.message}") from None
    print(f"{len(experiments)} experiment(s) in {redact_uri(uri)} matching {args.filter!r}")
    for exp in experiments:
        shown = sorted((k, v) for k, v in exp.tags.items() if k != "mlflow.note.content")
        tags = ", ".join(f"{k}={v}" for k, v in shown)
        print(f"{exp.experiment_id:>6}  {exp.name}  [{exp.lifecycle_stage}]  {tags}")
    return 0


def compare_runs(args: argparse.Namespace) -> int:
    """Print (and write) the comparison of a sweep, or of the runs in matching experiments."""
    from mlflow.exceptions import MlflowException

    from sweeplab.compare import results
    from sweeplab.sweep import parent

    if (args.parent_run_id is None) == (args.experiments is None):
        raise UserError("give either a sweep's parent run id or --experiments FILTER")
    client = open_store(args)
    try:
        if args.parent_run_id is not None:
            print(
                parent.regenerate(
                    client, args.parent_run_id, args.out, args.metric, args.direction, args.alpha
                )
            )
            return 0
        rows = results.rows_of_experiments(client, args.experiments, args.runs)
    except MlflowException as e:
        raise UserError(e.message) from None
    if not rows:
        raise UserError(f"no runs in experiments matching {args.experiments!r}")
    # Without --metric: regression's rmse where the runs have it, else classification's accuracy.
    found = next((m for m in ("rmse", "accuracy") if any(m in row.metrics for row in rows)), "rmse")
    metric, direction = tasks.ranking(args.metric, args.direction, fallback=found)
    rows = results.with_folds(client, rows, metric)
    alpha = ties.ALPHA if args.alpha is None else args.alpha
    comparison = results.compare(rows, metric, direction, across_sweeps=True, alpha=alpha)
    out = args.out or Path("outputs", "comparisons", time.strftime("%Y-%m-%d_%H-%M-%S"))
    files = results.write(comparison, out)
    print(results.leaderboard(comparison))
    if note := results.grouping_note(comparison):
        print(f"\n{note}")
    setting = "--alpha" if args.alpha is not None else "the default; --alpha to change it"
    if note := results.ties_note(comparison, setting):
        print(f"\ntied: {note}")
    print(f"\n{results.outcome(comparison.counts)}; wrote {', '.join(str(f) for f in files)}")
    return 0


def mark_killed(args: argparse.Namespace) -> int:
    """End the runs of an experiment left RUNNING by a process that died, as KILLED."""

    client = open_store(args)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise UserError(
            f"no experiment named {args.experiment!r} in {redact_uri(str(client.tracking_uri))}"
        )
    cutoff_ms = (time.time() - 60 * args.older_than) * 1000
    running = [
        run
        for run in client.search_runs(
            [experiment.experiment_id], "attributes.status = 'RUNNING'", max_results=50000
        )
        if run.info.start_time <= cutoff_ms
    ]
    if args.older_than < 0:
        raise UserError(f"--older-than {args.older_than:g} is not allowed: must be >= 0 minutes")
    verb = "would be marked" if args.dry_run else "marked"
    for run in running:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.info.start_time / 1000))
        if not args.dry_run:
            client.set_tag(run.info.run_id, ERROR_TAG, "left RUNNING by a process that died; "
                           "marked KILLED by sweeplab-tools mark-killed")  # fmt: skip
            client.set_terminated(run.info.run_id, "KILLED")
        print(f"{verb} KILLED: {run.info.run_id}  {run.info.run_name!r}  started {started}")
    print(f"{len(running)} run(s) {verb} KILLED in experiment {experiment.name!r}")
    return 0


def list_models(args: argparse.Namespace) -> int:
    """Print registered models' versions: aliases, metric, data and source runs."""
    from mlflow.exceptions import MlflowException

    from sweeplab.registry import champion

    client = open_store(args)
    try:
        found = champion.versions(client, args.name)
    except MlflowException:
        raise UserError(
            f"no registered model {args.name!r} in {redact_uri(str(client.tracking_uri))}"
        ) from None
    if not found:
        print(f"no registered models in {redact_uri(str(client.tracking_uri))}")
        return 0
    print(champion.table(found))
    return 0


def promote_run(args: argparse.Namespace) -> int:
    """Register a run's model (unless it is already a version) and promote it, as a sweep does."""
    from sweeplab.registry import champion

    client = open_store(args)
    for line in champion.promote_run(
        client, args.run_id, args.name, alias=args.alias, always=args.always,
        metric=args.metric, direction=args.direction,
    ):  # fmt: skip
        print(line)
    return 0


def predict_table(args: argparse.Namespace) -> int:
    """Score a table file with a model URI into another table file."""
    import mlflow

    from sweeplab.cli.predict import predict

    client = open_store(args)
    mlflow.set_tracking_uri(client.tracking_uri)
    print(predict(args.model_uri, args.input, args.output, args.column, proba=args.proba))
    return 0


def _store_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--tracking",
        default="local",
        choices=["local", "server"],
        help="the store, as conf/tracking/ names it: local (outputs/mlflow.db) or server",
    )
    command.add_argument("--tracking-uri", default=None, help="override the option's URI")


def parser() -> argparse.ArgumentParser:
    """The argument parser for `sweeplab-tools`."""
    p = argparse.ArgumentParser(prog="sweeplab-tools", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "server",
        help="run `mlflow server` over the local store (outputs/), or a PostgreSQL database",
    )
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    s.add_argument("--port", type=int, default=8080, help="port (default: 8080, as the tutorial)")
    s.add_argument("--workers", type=int, default=2, help="server worker processes")
    s.add_argument(
        "--backend-store-uri",
        metavar="URI",
        help="database of runs instead of outputs/mlflow.db, e.g. "
        "postgresql://mlflow@127.0.0.1:5432/mlflow (password in PGPASSWORD or ~/.pgpass)",
    )
    s.add_argument(
        "--artifacts-destination",
        metavar="DIR_OR_URI",
        help="where the server stores the artifacts it proxies (default outputs/artifacts)",
    )
    s.add_argument(
        "--app-name", help="MLflow server app, e.g. basic-auth for users and permissions"
    )
    s.add_argument(
        "--allowed-hosts", help="Host headers to accept besides localhost (MLflow's middleware)"
    )
    s.set_defaults(func=serve)

    e = sub.add_parser("experiments", help="list experiments matching an MLflow filter string")
    e.add_argument(
        "filter", nargs="?", default="", help="e.g. \"tags.`project_name` = 'grocery-forecasting'\""
    )
    _store_options(e)
    e.set_defaults(func=list_experiments)

    c = sub.add_parser(
        "compare",
        help="rank a sweep's jobs again (by parent run id), or the runs of matching experiments",
    )
    c.add_argument(
        "parent_run_id", nargs="?", help="a sweep's parent run: re-log its comparison/ artifacts"
    )
    c.add_argument(
        "--experiments",
        metavar="FILTER",
        help="compare every run of the experiments matching this MLflow filter string, "
        "e.g. \"tags.`project_name` = 'grocery-forecasting'\"",
    )
    c.add_argument("--runs", default="", metavar="FILTER", help="only runs matching this filter")
    c.add_argument(
        "--metric",
        choices=list(METRICS),
        help="rank by (default: the sweep's, else rmse or accuracy, whichever the runs have)",
    )
    c.add_argument(
        "--direction",
        choices=["minimize", "maximize"],
        help="default: the sweep's for its metric, else the metric's own",
    )
    c.add_argument(
        "--alpha",
        type=float,
        help="runs on the same folds whose paired p-value against the best is at least this "
        f"are tied with it (default: a sweep's sweep.alpha, else {ties.ALPHA})",
    )
    c.add_argument("--out", type=Path, help="also write the table and plots into this folder")
    _store_options(c)
    c.set_defaults(func=compare_runs)

    k = sub.add_parser(
        "mark-killed",
        help="end runs left RUNNING by a hard kill (SIGKILL, power loss) as KILLED",
    )
    k.add_argument("experiment", help="experiment name")
    k.add_argument(
        "--older-than", type=float, default=0, metavar="MINUTES",
        help="only runs started at least this long ago (default 0: every RUNNING run; "
        "use it while other sweeps are still running)",
    )  # fmt: skip
    k.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    _store_options(k)
    k.set_defaults(func=mark_killed)
    m = sub.add_parser("models", help="registered models: versions, aliases, scores, source runs")
    m.add_argument("name", nargs="?", help="one registered model (default: all of them)")
    _store_options(m)
    m.set_defaults(func=list_models)

    r = sub.add_parser(
        "promote",
        help="register a run's model as a version of NAME and move the alias if it wins",
    )
    r.add_argument("run_id", help="the run whose logged model to register")
    r.add_argument("--name", required=True, help="the registered model (created when missing)")
    r.add_argument("--alias", default="champion", help="the alias to move (default: champion)")
    r.add_argument(
        "--always", action="store_true", help="move the alias even if the version does not win"
    )
    r.add_argument(
        "--metric", choices=list(METRICS),
        help="compare by (default: the run's sweep's metric, else its task's own)",
    )  # fmt: skip
    r.add_argument("--direction", choices=["minimize", "maximize"], help="default: the metric's")
    _store_options(r)
    r.set_defaults(func=promote_run)

    q = sub.add_parser(
        "predict", help="score a CSV, TSV or Parquet file with a model: the table plus predictions"
    )
    q.add_argument(
        "model_uri", help="models:/NAME@champion, models:/NAME/3, models:/<id> or runs:/<id>/<name>"
    )
    q.add_argument(
        "--input", required=True, type=Path, help="the table to score (.csv, .tsv, .parquet)"
    )
    q.add_argument(
        "--output", required=True, type=Path, help="the table with the predictions (same kinds)"
    )
    q.add_argument(
        "--column", default="prediction", help="the predictions' column (default: prediction)"
    )
    q.add_argument(
        "--proba",
        action="store_true",
        help="a classifier's class probabilities too: one column <column>_<class> each",
    )
    _store_options(q)
    q.set_defaults(func=predict_table)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `sweeplab-tools`."""
    process.configure()
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as e:
        print(error_lines("sweeplab-tools", e), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sweeplab-tools models | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
