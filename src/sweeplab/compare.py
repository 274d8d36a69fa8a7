"""The comparison of a sweep's jobs (or any runs): a ranked table, its files and its plots."""

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from sweeplab.errors import ERROR_TAG
from sweeplab.tasks import METRICS

# Tags that tie runs to a sweep. The parent carries the sweep's settings; children their job.
SWEEP_TAG = "sweeplab.sweep"  # on the parent: "true"
JOB_TAG = "sweeplab.sweep.job"  # on a child: the job's number in the multirun
OVERRIDES_TAG = "sweeplab.sweep.overrides"
METRIC_TAG = "sweeplab.sweep.metric"
DIRECTION_TAG = "sweeplab.sweep.direction"
SUMMARY_TAG = "sweeplab.sweep.summary"
BEST_RUN_TAG = "best_run_id"

# Parent-run artifacts recording jobs that have no child run: refused before training,
# or reused from an earlier run by sweep.skip_finished.
JOB_RECORDS = "sweep/jobs"
COMPARISON_DIR = "comparison"

NOT_STARTED = "NOT_STARTED"


@dataclass
class Row:
    """One job or run in a comparison."""

    status: str
    run_id: str | None = None
    job: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""
    # The job's command-line overrides, as Hydra's job log shows them.
    overrides: str = ""


@dataclass(frozen=True)
class JobRecord:
    """What a job without a child run leaves on the parent run."""

    job: int
    overrides: list[str]
    status: str  # NOT_STARTED or REUSED
    error: str = ""
    run_id: str | None = None

    def to_json(self) -> str:
        """The record as the JSON stored under the parent's ``sweep/jobs/``."""
        return json.dumps(self.__dict__, indent=1)


@dataclass(frozen=True)
class Comparison:
    """A ranked table of runs, best first, and what ranked it."""

    table: pd.DataFrame
    metric: str
    direction: str
    swept: list[str]

    @property
    def best(self) -> pd.Series | None:
        """The best row, or None when no run produced the metric."""
        ranked = self.table[self.table["rank"].notna()]
        return None if ranked.empty else ranked.iloc[0]

    @property
    def counts(self) -> dict[str, int]:
        """How many rows ended in each status."""
        return {str(k): int(v) for k, v in self.table["status"].value_counts().items()}

    def failed(self) -> pd.DataFrame:
        """The rows of jobs that did not finish."""
        return self.table[~self.table["status"].isin(["FINISHED", "REUSED"])]


def param_of_override(override: str) -> tuple[str, str] | None:
    """The logged param an override sets (``model.max_depth=3`` -> ``max_depth``, ``3``)."""
    key, sep, value = override.lstrip("+~").partition("=")
    if not sep or key.startswith(("hydra", "tracking", "experiment", "sweep", "run_name")):
        return None
    return key.removeprefix("model."), value


def _row_of_run(run: Run, note: str = "", status: str | None = None) -> Row:
    tags = run.data.tags
    job = tags.get(JOB_TAG)
    return Row(
        status=status or run.info.status,
        run_id=run.info.run_id,
        job=int(job) if job is not None and job.isdigit() else None,
        params=dict(run.data.params),
        metrics={k: v for k, v in run.data.metrics.items() if k in METRICS},
        note=note or tags.get(ERROR_TAG, ""),
        overrides=tags.get(OVERRIDES_TAG, ""),
    )


def _search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def job_records(client: MlflowClient, parent_run_id: str) -> list[JobRecord]:
    """The records a sweep's jobs without a child run left on its parent."""
    import tempfile

    files = client.list_artifacts(parent_run_id, JOB_RECORDS)
    if not files:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(client.download_artifacts(parent_run_id, JOB_RECORDS, tmp))
        return [JobRecord(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def rows_of_sweep(client: MlflowClient, parent: Run) -> list[Row]:
    """A row per job of the sweep whose parent run is ``parent``."""
    children = _search_all(
        client,
        [parent.info.experiment_id],
        f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}'",
    )
    rows = [_row_of_run(run) for run in children]
    for record in job_records(client, parent.info.run_id):
        if record.status == "REUSED" and record.run_id:
            earlier = client.get_run(record.run_id)
            row = _row_of_run(earlier, note="reused: trained earlier", status="REUSED")
            row.job, row.overrides = record.job, " ".join(record.overrides)
            rows.append(row)
        else:
            params = dict(filter(None, map(param_of_override, record.overrides)))
            rows.append(
                Row(
                    status=record.status,
                    job=record.job,
                    params=params,
                    note=record.error,
                    overrides=" ".join(record.overrides),
                )
            )
    return rows


def rows_of_experiments(
    client: MlflowClient, experiment_filter: str, run_filter: str = ""
) -> list[Row]:
    """A row per run (sweep parents aside) in the experiments matching an MLflow filter."""
    experiments = client.search_experiments(filter_string=experiment_filter)
    if not experiments:
        return []
    runs = _search_all(client, [e.experiment_id for e in experiments], run_filter)
    return [_row_of_run(run) for run in runs if run.data.tags.get(SWEEP_TAG) != "true"]


def swept_params(rows: Iterable[Row], overrides: Sequence[str] = ()) -> list[str]:
    """The params whose values differ between the rows that have them.

    Params the sweep's ``overrides`` name come first, in their order.
    """
    values: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.params.items():
            values.setdefault(key, set()).add(value)
    swept = [key for key, seen in values.items() if len(seen) > 1]
    named = [p[0] for p in map(param_of_override, overrides) if p and p[0] in swept]
    return named + sorted(set(swept) - set(named))


def compare(
    rows: Sequence[Row], metric: str, direction: str, overrides: Sequence[str] = ()
) -> Comparison:
    """Rank ``rows`` by ``metric`` (best first; rows without it last) into a table.

    ``overrides`` (the sweep's) order the param columns.
    """
    swept = swept_params(rows, overrides)
    # The metrics the runs have (their tasks'), in a fixed order; the ranking one always.
    logged = {m for row in rows for m in row.metrics} | {metric}
    metrics = [m for m in METRICS if m in logged]
    records = [
        {
            "job": row.job,
            **{p: row.params.get(p) for p in swept},
            **{m: row.metrics.get(m, math.nan) for m in metrics},
            "status": row.status,
            "run_id": row.run_id or "",
            "note": row.note,
            "overrides": row.overrides,
        }
        for row in rows
    ]
    columns = ["job", *swept, *metrics, "status", "run_id", "note", "overrides"]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["job"] = table["job"].astype("Int64")
    table = table.sort_values(
        [metric, "job"], ascending=[direction == "minimize", True], na_position="last"
    ).reset_index(drop=True)
    has_metric = table[metric].notna()
    table.insert(0, "rank", pd.Series(range(1, len(table) + 1), dtype="Int64").where(has_metric))
    table.insert(0, "best", ["*" if i == 0 and has_metric.iloc[0] else "" for i in table.index])
    return Comparison(table=table, metric=metric, direction=direction, swept=swept)


def _formatted(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.copy()
    for m in [c for c in METRICS if c in shown.columns]:
        shown[m] = shown[m].map(lambda v: "" if pd.isna(v) else f"{v:.6g}")
    return shown.astype(object).where(shown.notna(), "")


def leaderboard(comparison: Comparison) -> str:
    """The table as aligned text for the terminal, best row marked with ``*``."""
    shown = _formatted(comparison.table).drop(columns="overrides")
    shown["note"] = shown["note"].map(lambda s: s if len(s) <= 60 else s[:57] + "...")
    return str(shown.to_string(index=False))


def markdown(comparison: Comparison) -> str:
    """The table as Markdown."""
    return str(_formatted(comparison.table).to_markdown(index=False))


def _ordered(values: Iterable[Any]) -> list[str]:
    """Distinct param values, numbers in numeric order first, then the rest (e.g. None)."""

    def key(v: str) -> tuple[int, float, str]:
        try:
            return (0, float(v), "")
        except ValueError:
            return (1, 0.0, v)

    return sorted({str(v) for v in values}, key=key)


def load_plotting() -> None:
    """Import matplotlib with its file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def plot(comparison: Comparison, folder: Path) -> list[Path]:
    """Plot the metric against each swept param, plus a heatmap when exactly two are swept."""
    load_plotting()
    import matplotlib.pyplot as plt

    metric, swept = comparison.metric, comparison.swept
    done = comparison.table[comparison.table[metric].notna()]
    if done.empty or not swept:
        return []
    written = []
    best = "min" if comparison.direction == "minimize" else "max"
    for param in swept:
        order = _ordered(done[param])
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        others = [p for p in swept if p != param]
        # With two params swept, one line per value of the other; runs that share a point
        # (several sweeps of one experiment) show the best of them, as the heatmap does.
        by = others[0] if len(others) == 1 else None
        values = _ordered(done[by]) if by else [None]
        for value in values:
            group = done if by is None else done[done[by].astype(str) == value]
            points = group.groupby(group[param].astype(str))[metric].agg(best)
            points = points.reindex([x for x in order if x in points.index])
            xs = [order.index(x) for x in points.index]
            ax.plot(xs, points.to_numpy(), marker="o", label=f"{by}={value}" if by else None)
        ax.set_xticks(range(len(order)), order)
        ax.set(xlabel=param, ylabel=metric, title=f"{metric} by {param} ({comparison.direction})")
        if by:
            ax.legend()
        written.append(folder / f"{metric}_by_{_safe(param)}.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    if len(swept) == 2:
        written.append(_heatmap(done, swept, metric, comparison.direction, folder))
    return written


def _heatmap(
    done: pd.DataFrame, swept: list[str], metric: str, direction: str, folder: Path
) -> Path:
    import matplotlib.pyplot as plt

    rows, cols = swept
    grid = done.assign(**{rows: done[rows].astype(str), cols: done[cols].astype(str)})
    best = "min" if direction == "minimize" else "max"
    pivot = grid.pivot_table(index=rows, columns=cols, values=metric, aggfunc=best)
    pivot = pivot.reindex(index=_ordered(pivot.index), columns=_ordered(pivot.columns))
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    # Darker is better either way.
    image = ax.imshow(pivot.to_numpy(), cmap="viridis" if best == "min" else "viridis_r")
    ax.set_xticks(range(len(pivot.columns)), pivot.columns)
    ax.set_yticks(range(len(pivot.index)), pivot.index)
    middle = (pivot.min().min() + pivot.max().max()) / 2
    for (i, j), value in pd.DataFrame(pivot.to_numpy()).stack().items():
        # Dark text on the bright end of viridis, light text on the dark end.
        bright = (value > middle) == (best == "min")
        ax.text(j, i, f"{value:.4g}", ha="center", va="center", fontsize=9,
                color="black" if bright else "white")  # fmt: skip
    ax.set(xlabel=cols, ylabel=rows, title=f"{metric} ({direction})")
    fig.colorbar(image, ax=ax, label=metric)
    path = folder / f"{metric}_heatmap_{_safe(rows)}_{_safe(cols)}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def write(comparison: Comparison, folder: Path) -> list[Path]:
    """Write the table (``comparison.csv``, ``comparison.md``) and the plots into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / "comparison.csv", folder / "comparison.md"
    comparison.table.to_csv(csv, index=False)
    md.write_text(markdown(comparison) + "\n")
    return [csv, md, *plot(comparison, folder)]


def log_to_parent(client: MlflowClient, parent_run_id: str, comparison: Comparison) -> None:
    """Attach the comparison files to the parent run and tag it with the best run."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write(comparison, Path(tmp))
        client.log_artifacts(parent_run_id, tmp, COMPARISON_DIR)
    counts = comparison.counts
    client.set_tag(parent_run_id, SUMMARY_TAG, outcome(counts))
    if (best := comparison.best) is not None:
        client.set_tag(parent_run_id, BEST_RUN_TAG, str(best["run_id"]))
        client.log_metric(
            parent_run_id, f"best_{comparison.metric}", float(best[comparison.metric])
        )


def outcome(counts: dict[str, int]) -> str:
    """``7 finished, 2 failed`` (reused runs count as finished; skipped ones say so)."""
    finished = counts.get("FINISHED", 0) + counts.get("REUSED", 0)
    failed = sum(n for status, n in counts.items() if status not in ("FINISHED", "REUSED"))
    reused = f" ({counts['REUSED']} reused)" if counts.get("REUSED") else ""
    return f"{finished} finished{reused}, {failed} failed"
