"""The comparison of a sweep's jobs (or any runs): a ranked table, its files and its plots."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sweeplab.compare import ties
from sweeplab.model.tasks import METRICS
from sweeplab.tracking.tags import (
    BEST_RUN_TAG,
    DATA_DIGEST_TAG,
    ERROR_TAG,
    JOB_TAG,
    MLFLOW_PARENT_RUN_ID,
    NOTE_TAG,
    OVERRIDES_TAG,
    PRUNED_TAG,
    SUMMARY_TAG,
    SWEEP_TAG,
)
from sweeplab.util import plotting

if TYPE_CHECKING:  # MLflow loads only where the comparison is made (the tracking process)
    from mlflow import MlflowClient
    from mlflow.entities import Run

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
    run_name: str = ""
    experiment: str = ""
    # The content digest of the run's data (sweeplab.data_digest): runs on other data are
    # not ranked against each other.
    data: str = ""
    # Each fold's value of the ranking metric, for cross-validated runs (with_folds).
    folds: list[float] = field(default_factory=list)


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
    # The threshold that tied rows' p-values reach (sweep.alpha).
    alpha: float = ties.ALPHA

    @property
    def tied(self) -> int:
        """How many rows a paired test on the same folds cannot separate from their best."""
        return int((self.table["best"] == "=").sum())

    @property
    def best(self) -> pd.Series | None:
        """The best row, or None when no run produced the metric."""
        ranked = self.table[self.table["rank"].notna()]
        return None if ranked.empty else ranked.iloc[0]

    @property
    def counts(self) -> dict[str, int]:
        """How many rows ended in each status."""
        return {str(k): int(v) for k, v in self.table["status"].value_counts().items()}

    @property
    def data_groups(self) -> int:
        """How many sets of data the ranked runs were trained on (each ranked on its own)."""
        if "data" not in self.table.columns:
            return 1
        return int(self.table[self.table["rank"].notna()]["data"].nunique())

    def failed(self) -> pd.DataFrame:
        """The rows of jobs that did not finish (pruned ones stopped as designed)."""
        return self.table[~self.table["status"].isin(["FINISHED", "REUSED", "PRUNED"])]


def param_of_override(override: str) -> tuple[str, str] | None:
    """The logged param an override sets (``model.max_depth=3`` -> ``max_depth``, ``3``)."""
    key, sep, value = override.lstrip("+~").partition("=")
    if not sep or key.startswith(("hydra", "tracking", "experiment", "sweep", "run_name")):
        return None
    return key.removeprefix("model."), value


def _row_of_run(run: Run, note: str = "", status: str | None = None, experiment: str = "") -> Row:
    tags = run.data.tags
    job = tags.get(JOB_TAG)
    return Row(
        run_name=str(run.info.run_name or ""),
        experiment=experiment,
        data=tags.get(DATA_DIGEST_TAG, ""),
        # A run its pruner stopped ended KILLED; it was stopped as designed, not interrupted.
        status=status or ("PRUNED" if PRUNED_TAG in tags else run.info.status),
        run_id=run.info.run_id,
        job=int(job) if job is not None and job.isdigit() else None,
        params=dict(run.data.params),
        metrics={k: v for k, v in run.data.metrics.items() if k.removesuffix("_std") in METRICS},
        note=note
        or tags.get(ERROR_TAG, "")
        or (f"pruned {tags[PRUNED_TAG]}" if PRUNED_TAG in tags else ""),
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


# Run ids per search: a few hundred keep the query under every backend's parameter limits.
_IDS_PER_SEARCH = 200


def _runs_by_id(
    client: MlflowClient, experiment_ids: list[str], run_ids: list[str]
) -> dict[str, Run]:
    """The runs with these ids, in a search per _IDS_PER_SEARCH ids rather than one per run.

    A run the experiments do not hold (since deleted) is missing from the answer.
    """
    found: dict[str, Run] = {}
    unique = sorted(set(run_ids))
    for start in range(0, len(unique), _IDS_PER_SEARCH):
        chunk = ", ".join(f"'{i}'" for i in unique[start : start + _IDS_PER_SEARCH])
        for run in _search_all(client, experiment_ids, f"attributes.run_id IN ({chunk})"):
            found[run.info.run_id] = run
    return found


def running_children(
    client: MlflowClient, experiment_id: str, parent_run_id: str, *, job: int | None = None
) -> list[Run]:
    """The RUNNING child runs of the sweep whose parent is ``parent_run_id`` (job ``job``'s)."""
    return children_in(client, experiment_id, parent_run_id, "RUNNING", job=job)


def children_in(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    status: str,
    *,
    job: int | None = None,
) -> list[Run]:
    """The child runs in ``status`` of the sweep whose parent is ``parent_run_id``."""
    where = f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}' AND attributes.status = '{status}'"
    if job is not None:
        where += f" AND tags.`{JOB_TAG}` = '{job}'"
    return client.search_runs([experiment_id], where, max_results=1 if job is not None else 1000)


def job_records(client: MlflowClient, parent_run_id: str) -> list[JobRecord]:
    """The records a sweep's jobs without a child run left on its parent."""
    import tempfile

    files = client.list_artifacts(parent_run_id, JOB_RECORDS)
    if not files:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(client.download_artifacts(parent_run_id, JOB_RECORDS, tmp))
        return [JobRecord(**json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def rows_of_sweep(client: MlflowClient, parent: Run, also: Sequence[str] = ()) -> list[Row]:
    """A row per job of the sweep whose parent run is ``parent``, and per run of ``also``.

    ``also``: runs of earlier sweeps this one continues (a resumed Optuna study's trials),
    each noted as such; their job numbers were another sweep's, so they show none.
    """
    children = _search_all(
        client,
        [parent.info.experiment_id],
        f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.info.run_id}'",
    )
    rows = [_row_of_run(run) for run in children]
    records = job_records(client, parent.info.run_id)
    reused = _runs_by_id(
        client,
        [parent.info.experiment_id],
        [r.run_id for r in records if r.status == "REUSED" and r.run_id],
    )
    for record in records:
        if record.status == "REUSED" and record.run_id in reused:
            earlier = reused[record.run_id]
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
                    note=record.error
                    or (f"reused run {record.run_id} is gone" if record.status == "REUSED" else ""),
                    overrides=" ".join(record.overrides),
                )
            )
    have = {row.run_id for row in rows}
    wanted = [i for i in also if i not in have]
    for found in _runs_by_id(client, [parent.info.experiment_id], wanted).values():
        before = found.data.tags.get(MLFLOW_PARENT_RUN_ID, "?")
        row = _row_of_run(found, note=f"an earlier run of this study (parent {before})")
        row.job = None
        rows.append(row)
    return rows


def rows_of_experiments(
    client: MlflowClient, experiment_filter: str, run_filter: str = ""
) -> list[Row]:
    """A row per run (sweep parents aside) in the experiments matching an MLflow filter."""
    experiments = client.search_experiments(filter_string=experiment_filter)
    if not experiments:
        return []
    names = {e.experiment_id: e.name for e in experiments}
    runs = _search_all(client, list(names), run_filter)
    return [
        _row_of_run(run, experiment=names[run.info.experiment_id])
        for run in runs
        if run.data.tags.get(SWEEP_TAG) != "true"
    ]


def fold_values(client: MlflowClient, run_id: str, metric: str) -> list[float]:
    """A cross-validated run's value of ``metric`` on each fold, in fold order."""
    history = client.get_metric_history(run_id, f"{metric}_fold")
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def with_folds(client: MlflowClient, rows: list[Row], metric: str) -> list[Row]:
    """``rows``, cross-validated ones given their fold values of ``metric`` (one query each)."""
    for row in rows:
        if row.run_id and f"{metric}_std" in row.metrics and not row.folds:
            row.folds = fold_values(client, row.run_id, metric)
    return rows


def swept_params(rows: Iterable[Row], overrides: Sequence[str] = ()) -> list[str]:
    """The params whose values differ between the rows that have them, within one model kind.

    Two models' own defaults (logistic regression's max_iter 1000, a boosting model's 100)
    are not a swept value: a param is swept when runs of the same model (param ``model``)
    differ in it, and ``model`` itself when the runs' models differ. Params the sweep's
    ``overrides`` name come first, in their order.
    """
    rows = list(rows)
    models = {row.params["model"] for row in rows if "model" in row.params}
    values: dict[str, dict[str | None, set[str]]] = {}
    for row in rows:
        # One model (or none named): every row is of the same kind, refused jobs too.
        kind = row.params.get("model") if len(models) > 1 else None
        for key, value in row.params.items():
            values.setdefault(key, {}).setdefault(None if key == "model" else kind, set()).add(
                value
            )
    swept = [key for key, by_kind in values.items() if any(len(s) > 1 for s in by_kind.values())]
    named = [p[0] for p in map(param_of_override, overrides) if p and p[0] in swept]
    return named + sorted(set(swept) - set(named))


# Statuses of runs that rank: they ended with the model they scored.
_RANKED = ("FINISHED", "REUSED")


def compare(
    rows: Sequence[Row],
    metric: str,
    direction: str,
    overrides: Sequence[str] = (),
    *,
    across_sweeps: bool = False,
    alpha: float = ties.ALPHA,
) -> Comparison:
    """Rank ``rows`` by ``metric`` (best first; rows without it, or not FINISHED, last).

    ``overrides`` (the sweep's) order the param columns. Runs on different data (another
    digest) are ranked within their own group, the largest group first, each with its best
    marked. ``across_sweeps`` (runs of any sweeps or experiments) names each row's experiment
    and run instead of its job number, which only means something within one sweep.
    Cross-validated rows (with fold values) are tested against their group's best on the same
    folds: those with p >= ``alpha`` are tied with it, marked ``=`` (see sweeplab.compare.ties).
    """
    swept = swept_params(rows, overrides)
    # The metrics the runs have (their tasks'), in a fixed order; the ranking one always,
    # and its spread over folds where runs have one.
    logged = {m for row in rows for m in row.metrics} | {metric}
    metrics = [m for m in METRICS if m in logged]
    spread = [f"{metric}_std"] if f"{metric}_std" in logged else []
    labels = ["experiment", "run"] if across_sweeps else ["job"]
    records = [
        {
            "job": row.job,
            "experiment": row.experiment,
            "run": row.run_name,
            "data": row.data[:8],
            **{p: row.params.get(p) for p in swept},
            **{m: row.metrics.get(m, math.nan) for m in [*metrics, *spread]},
            "status": row.status,
            "run_id": row.run_id or "",
            "note": row.note,
            "overrides": row.overrides,
            "_folds": row.folds,
            "_ratio": ties.ratio_of(row.params),
        }
        for row in rows
    ]
    table = pd.DataFrame.from_records(
        records, columns=["job", "experiment", "run", "data", *swept, *metrics, *spread,
                          "status", "run_id", "note", "overrides", "_folds", "_ratio"],
    )  # fmt: skip
    table["job"] = table["job"].astype("Int64")
    # A run that failed after logging its metrics (its worker died while it logged the model)
    # is not ranked: it cannot be the best.
    has_metric = table[metric].notna() & table["status"].isin(_RANKED)
    # Groups of comparable runs: the largest first, and among groups of one size the one with
    # the better best score (its best is the comparison's); rows without the metric have none.
    sizes = table[has_metric]["data"].value_counts(sort=False)
    by_data = table[has_metric].groupby("data")[metric]
    tops = by_data.min() if direction == "minimize" else -by_data.max()
    order = {d: i for i, d in enumerate(sorted(sizes.index, key=lambda d: (-sizes[d], tops[d])))}
    table["_group"] = table["data"].map(order).where(has_metric).astype("Float64")
    table = table.sort_values(
        ["_group", metric, "job"],
        ascending=[True, direction == "minimize", True],
        na_position="last",
    ).reset_index(drop=True)
    ranked = table["_group"].notna()
    rank = table[ranked].groupby("_group").cumcount() + 1
    table.insert(0, "rank", rank.reindex(table.index).astype("Int64"))
    tested = _p_vs_best(table, alpha)
    if spread:
        table["p_vs_best"] = tested
    marks = ["*" if r == 1 else "=" if p >= alpha else "" for r, p in
             zip(table["rank"].fillna(0), tested.fillna(-1.0), strict=True)]  # fmt: skip
    table.insert(0, "best", marks)
    columns = ["best", "rank", *labels, *(["data"] if len(order) > 1 else []), *swept, *metrics,
               *spread, *(["p_vs_best"] if spread else []), "status", "run_id", "note",
               "overrides"]  # fmt: skip
    return Comparison(
        table=table[columns], metric=metric, direction=direction, swept=swept, alpha=alpha
    )


def _p_vs_best(table: pd.DataFrame, alpha: float) -> pd.Series[float]:
    """Each ranked row's p-value against its group's best on the same folds (NaN: untested)."""
    p = pd.Series(math.nan, index=table.index, dtype=float)
    for _, group in table[table["rank"].notna()].groupby("_group"):
        best = group.iloc[0]
        if len(best["_folds"]) < 2 or pd.isna(best["_ratio"]):
            continue
        for index, row in group.iloc[1:].iterrows():
            if len(row["_folds"]) == len(best["_folds"]):
                p[index] = ties.p_value(row["_folds"], best["_folds"], best["_ratio"])
    return p


# Significant digits of a metric column's largest value; the column's other values get the
# same number of decimals, so that they line up and compare at a glance.
_DIGITS = 6
_MAX_DECIMALS = 12


def column_format(values: pd.Series[float]) -> str:
    """One format for a column of numbers: ``_DIGITS`` significant digits of its largest."""
    finite = values[values.notna() & (values.abs() != math.inf)].abs()
    largest = float(finite.max()) if not finite.empty else 0.0
    if largest == 0:
        return ".0f"
    decimals = _DIGITS - 1 - math.floor(math.log10(largest))
    return f".{min(_MAX_DECIMALS, max(0, decimals))}f"


def _formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text: metrics to one format a column, a spread after its mean (``±``)."""
    shown = table.copy()
    for m in [c for c in METRICS if c in shown.columns]:
        spec = column_format(shown[m])
        text = shown[m].map(lambda v, spec=spec: "" if pd.isna(v) else format(v, spec))
        if f"{m}_std" in shown.columns:
            text = text + shown[f"{m}_std"].map(
                lambda v, spec=spec: "" if pd.isna(v) else f" ± {v:{spec}}"
            )
            shown = shown.drop(columns=f"{m}_std")
        shown[m] = text
    if "p_vs_best" in shown.columns:
        shown["p_vs_best"] = shown["p_vs_best"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    return shown.astype(object).where(shown.notna(), "")


def leaderboard(comparison: Comparison, limit: int | None = None) -> str:
    """The table as aligned text for the terminal, best row marked with ``*``.

    ``limit``: at most that many rows, the best, and a line saying how many more the
    comparison files hold.
    """
    table = comparison.table
    shown = _formatted(table if limit is None else table.head(limit)).drop(columns="overrides")
    # A terminal's width: long run names (a run's full overrides) and notes are cut; the
    # comparison files keep them whole.
    for column, width in (("note", 60), ("run", 40), ("experiment", 24)):
        if column in shown.columns:
            shown[column] = shown[column].map(
                lambda s, w=width: s if len(str(s)) <= w else str(s)[: w - 3] + "..."
            )
    text = str(shown.to_string(index=False))
    if limit is not None and len(table) > limit:
        more = len(table) - limit
        text += f"\n... {more} more job{'s' * (more != 1)} in {COMPARISON_DIR}/comparison.csv"
    return text


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


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _has(values: pd.Series[Any]) -> pd.Series[bool]:
    """Which of a param's values are there: not missing (a model without that param)."""
    return values.notna() & ~values.astype(str).isin(["None", "nan", ""])


def _lines(rows: pd.DataFrame, by: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    """The rows split into one line per value of ``by`` (rows without it last), or one line."""
    if by is None:
        return [(None, rows)]
    has = _has(rows[by])
    lines = [
        (f"{by}={value}", rows[has & (rows[by].astype(str) == value)])
        for value in _ordered(rows[by][has])
    ]
    return lines + ([(f"no {by}", rows[~has])] if (~has).any() else [])


def plot(comparison: Comparison, folder: Path) -> list[Path]:
    """Plot the metric against each swept param, plus a heatmap when exactly two are swept.

    The files are named after the params only, so that ranking by another metric again
    replaces them. Numeric params are joined by lines; categorical ones (a swept model) are
    points only, and runs without a param (another model's) are left out of its plot.
    """
    plotting.load()
    import matplotlib.pyplot as plt

    metric, swept = comparison.metric, comparison.swept
    done = comparison.table[comparison.table["rank"].notna()]
    if done.empty or not swept:
        return []
    on = ""
    if comparison.data_groups > 1:
        # Scores on other data are not comparable: the plots show the largest group only.
        done = done[done["data"] == done["data"].iloc[0]]
        on = f", data {done['data'].iloc[0]}"
    written = []
    best = "min" if comparison.direction == "minimize" else "max"
    for param in swept:
        present = done[_has(done[param])]
        order = _ordered(present[param])
        if len(order) < 2:
            continue  # one value (the plotted data group has no other): nothing to compare
        numeric = all(map(_is_number, order))
        # Numbers on a number line with the axis's own ticks (Optuna's 0.0117115, 0.0160712 ...
        # as categories would be evenly spaced, their labels running together).
        scaled = numeric
        line = "-" if numeric else "none"
        marker = "o" if len(order) <= _LABELLED_TICKS * 2 else "."
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        others = [p for p in swept if p != param]
        # With two params swept, one line per value of the other; runs that share a point
        # (several sweeps of one experiment) show the best of them, as the heatmap does.
        # More lines than a legend can tell apart: one line, the best over the other values.
        by = others[0] if len(others) == 1 and present[others[0]].nunique() <= 10 else None
        for label, group in _lines(present, by):
            points = group.groupby(group[param].astype(str))[metric].agg(best)
            points = points.reindex([x for x in order if x in points.index])
            xs = [float(x) if scaled else order.index(x) for x in points.index]
            ax.plot(xs, points.to_numpy(), marker=marker, linestyle=line, label=label)
        if scaled:
            values = [float(x) for x in order]
            if min(values) > 0 and max(values) / min(values) >= 100:
                ax.set_xscale("log")
            if len(order) <= _LABELLED_TICKS and all(v.is_integer() for v in values):
                ax.set_xticks(values, order)  # a few whole numbers (3, 6, 9): each labelled
        else:
            positions, labels = _thinned(order)
            ax.set_xticks(positions, labels)
        best_of = f"; best over {', '.join(others)}" if others and by is None else ""
        title = f"{metric} by {param} ({comparison.direction}{on}{best_of})"
        ax.set(xlabel=param, ylabel=metric, title=title)
        if by:
            ax.legend()
        written.append(folder / f"by_{_safe(param)}.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)
    if len(swept) == 2:
        both = done[_has(done[swept[0]]) & _has(done[swept[1]])]
        if not both.empty:
            written.append(_heatmap(both, swept, metric, comparison.direction, folder))
    return written


def _heatmap(
    done: pd.DataFrame, swept: list[str], metric: str, direction: str, folder: Path
) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows, cols = swept
    grid = done.assign(**{rows: done[rows].astype(str), cols: done[cols].astype(str)})
    best = "min" if direction == "minimize" else "max"
    pivot = grid.pivot_table(index=rows, columns=cols, values=metric, aggfunc=best)
    pivot = pivot.reindex(index=_ordered(pivot.index), columns=_ordered(pivot.columns))
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    # Darker is better either way.
    image = ax.imshow(
        pivot.to_numpy(), cmap="viridis" if best == "min" else "viridis_r", aspect="auto"
    )
    ax.set_xticks(*_thinned(list(pivot.columns)))
    ax.set_yticks(*_thinned(list(pivot.index)))
    middle = (pivot.min().min() + pivot.max().max()) / 2
    cells = pd.DataFrame(pivot.to_numpy()).stack()
    top = cells.idxmin() if best == "min" else cells.idxmax()
    # Values in the cells while they fit; beyond that the colour bar reads them.
    readable = max(pivot.shape) <= _LABELLED_SIDE
    decimals = _telling_decimals(cells.tolist(), cells[top])
    for (i, j), value in cells.items() if readable else ():
        # Dark text on the bright end of viridis, light text on the dark end.
        bright = (value > middle) == (best == "min")
        ax.text(j, i, f"{value:.{decimals}f}" + ("\nbest" if (i, j) == top else ""), ha="center",
                va="center", fontsize=9, color="black" if bright else "white",
                fontweight="bold" if (i, j) == top else "normal")  # fmt: skip
    ax.add_patch(Rectangle((top[1] - 0.5, top[0] - 0.5), 1, 1, fill=False, edgecolor="red",
                           linewidth=3))  # fmt: skip
    ax.set(xlabel=cols, ylabel=rows, title=f"{metric} ({direction}); best cell framed")
    fig.colorbar(image, ax=ax, label=metric)
    path = folder / f"heatmap_{_safe(rows)}_{_safe(cols)}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# Beyond this many values a plot's axis labels only some of them; beyond this many rows or
# columns a heatmap's cells carry no text (a 1,000-job sweep stays readable).
_LABELLED_TICKS = 20
_LABELLED_SIDE = 12


def _telling_decimals(values: list[float], best: float) -> int:
    """Decimals that show 4 significant digits, and more until the best value reads apart from
    every other (121.56 and 121.62, not 121.6 twice); at most 6 more."""
    spec = column_format(pd.Series(values, dtype=float))
    decimals = max(0, int(spec[1:-1]) - 2)  # column_format's 6 significant digits, less 2
    others = [v for v in values if v != best and math.isfinite(v)]
    for more in range(decimals, decimals + 7):
        if all(f"{v:.{more}f}" != f"{best:.{more}f}" for v in others):
            return more
    return decimals + 6


def _thinned(values: list[Any]) -> tuple[list[int], list[str]]:
    """Tick positions and labels for categorical ``values``: at most _LABELLED_TICKS, evenly."""
    step = max(1, -(-len(values) // _LABELLED_TICKS))
    positions = list(range(0, len(values), step))
    return positions, [str(values[i]) for i in positions]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def write(comparison: Comparison, folder: Path) -> list[Path]:
    """Write the table (``comparison.csv``, ``comparison.md``) and the plots into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / "comparison.csv", folder / "comparison.md"
    comparison.table.to_csv(csv, index=False)
    md.write_text(markdown(comparison) + "\n")
    return [csv, md, *plot(comparison, folder)]


def log_to_parent(client: MlflowClient, parent: Run, comparison: Comparison) -> None:
    """Attach the comparison to the parent run: files, best run, its metric and its model.

    The parent carries the best job's value under the metric's own name too, so the UI's runs
    table shows it beside the children's; its description lists the jobs with links, reused
    runs of earlier sweeps included (they are nobody's children here).
    """
    import tempfile

    from mlflow.entities import LoggedModelOutput, Metric

    parent_run_id = parent.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        write(comparison, Path(tmp))
        client.log_artifacts(parent_run_id, tmp, COMPARISON_DIR)
    counts = comparison.counts
    client.set_tag(parent_run_id, SUMMARY_TAG, outcome(counts))
    client.set_tag(parent_run_id, NOTE_TAG, description(comparison, parent.info.experiment_id))
    if (best := comparison.best) is None:
        return
    best_run_id, value = str(best["run_id"]), float(best[comparison.metric])
    client.set_tag(parent_run_id, BEST_RUN_TAG, best_run_id)
    client.log_batch(
        parent_run_id,
        metrics=[
            Metric(key, value, int(time.time() * 1000), 0)
            for key in (comparison.metric, f"best_{comparison.metric}")
        ],
    )
    # The best model as the parent's output: the UI files a run with a model as training
    # (a parent without one reads "Evaluations") and lists the model on the parent's page.
    models = _model_ids(client.get_run(best_run_id))
    if models and models[0] not in _model_ids(parent):  # once, if compared again
        client.log_outputs(parent_run_id, [LoggedModelOutput(models[0], 0)])


def _model_ids(run: Run) -> list[str]:
    return [o.model_id for o in run.outputs.model_outputs] if run.outputs else []


# Jobs listed in the parent's description; the comparison files hold them all.
_DESCRIBED_JOBS = 20


def description(comparison: Comparison, experiment_id: str) -> str:
    """The parent run's description (Markdown): outcome, then the best jobs linked to their runs."""
    metric = comparison.metric
    lines = [
        f"Sweep: {outcome(comparison.counts)}, ranked by {metric} ({comparison.direction}).",
        "",
    ]
    for _, row in comparison.table.head(_DESCRIBED_JOBS).iterrows():
        values = " ".join(f"{p}={row[p]}" for p in comparison.swept if not pd.isna(row[p]))
        score = "" if pd.isna(row[metric]) else f": {metric} {row[metric]:.6g}"
        run = (
            f" ([run](#/experiments/{experiment_id}/runs/{row['run_id']}))" if row["run_id"] else ""
        )
        reused = " (reused, trained earlier)" if row["status"] == "REUSED" else ""
        status = "" if row["status"] in ("FINISHED", "REUSED") else f" {row['status']}"
        lines.append(f"- job #{row['job']} {values}{score}{status}{reused}{run}")
    if len(comparison.table) > _DESCRIBED_JOBS:
        lines.append(f"- ... {len(comparison.table) - _DESCRIBED_JOBS} more in {COMPARISON_DIR}/")
    return "\n".join(lines)


def grouping_note(comparison: Comparison) -> str:
    """A line saying that runs on different data are ranked apart, or ""."""
    if comparison.data_groups < 2:
        return ""
    return (
        f"the ranked runs are on {comparison.data_groups} different datasets or folds (the data "
        "column: a digest of the rows and, for a split with folds or a test part, of how they "
        "are split), ranked within each: a score on other rows is not comparable; the best is "
        "the best of the group with the most runs (of groups as large, the better-scoring)"
    )


def ties_note(comparison: Comparison, setting: str = "sweep.alpha") -> str:
    """A line saying how many rows are tied with the best (``=``), when rows have folds.

    ``setting``: what set the threshold, as the line names it.
    """
    if "p_vs_best" not in comparison.table.columns or comparison.table["p_vs_best"].isna().all():
        return ""
    n = comparison.tied
    if n == 0:
        return (
            f"none: the paired test on the same folds separates every other run from the best "
            f"(p < {comparison.alpha:g}, {setting})"
        )
    return (
        f"{n} other run{'s' * (n != 1)} (=) cannot be told from the best: on the same folds "
        f"the corrected paired t-test gives p >= {comparison.alpha:g} ({setting}); more "
        "folds or more rows may separate them"
    )


def outcome(counts: dict[str, int]) -> str:
    """``7 finished, 2 failed`` (reused runs count as finished; skipped ones say so)."""
    finished = counts.get("FINISHED", 0) + counts.get("REUSED", 0)
    failed = sum(
        n for status, n in counts.items() if status not in ("FINISHED", "REUSED", "PRUNED")
    )
    reused = f" ({counts['REUSED']} reused)" if counts.get("REUSED") else ""
    pruned = f", {counts['PRUNED']} pruned" if counts.get("PRUNED") else ""
    return f"{finished} finished{reused}{pruned}, {failed} failed"
