"""Multiruns as users launch them: a parent run, nested children, a ranked comparison."""

import csv
import io
import math
import re
import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from conftest import copy_of_store, sweeplab, sweeplab_tools
from sweeplab.compare.results import Row, compare, swept_params

# One worker runs them all (--dist loadgroup): they share its module's sweep.
pytestmark = pytest.mark.xdist_group("sweep")

# Small forests keep each job well under a second.
GRID = ("model.max_depth=3,6", "model.n_estimators=20,40")


def store(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root}/outputs/mlflow.db")


def sweep_runs(client: MlflowClient, experiment: str = "Apple_Models") -> tuple[Run, list[Run]]:
    """The experiment's only sweep parent and its children."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def parent_csv(client: MlflowClient, parent: Run, tmp_path: Path) -> list[dict[str, str]]:
    path = client.download_artifacts(parent.info.run_id, "comparison/comparison.csv", tmp_path)
    return list(csv.DictReader(io.StringIO(Path(path).read_text())))


@pytest.fixture(scope="session")
def grid(tmp_path_factory, migrated_store):
    """One 2x2 sweep with the basic launcher: (launch dir, the process's result)."""
    root = tmp_path_factory.mktemp("grid")
    copy_of_store(migrated_store, root / "outputs" / "mlflow.db")
    return root, sweeplab("-m", *GRID, cwd=root, timeout=300)


def test_a_sweep_makes_one_parent_and_a_nested_child_per_job(grid):
    root, done = grid
    assert done.returncode == 0, done.stderr
    parent, children = sweep_runs(store(root))
    assert parent.info.status == "FINISHED"
    # What was swept comes first: the UI's name column is narrow.
    assert parent.info.run_name == "max_depth (md) x n_estimators (ne): 4 jobs of random_forest"
    assert parent.data.tags["sweeplab.sweep.overrides"] == " ".join(GRID)
    assert len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.info.experiment_id for c in children} == {parent.info.experiment_id}
    assert {(c.data.params["max_depth"], c.data.params["n_estimators"]) for c in children} == {
        ("3", "20"), ("3", "40"), ("6", "20"), ("6", "40")
    }  # fmt: skip
    # Each child is a complete run: metrics and a model, like a single run.
    for child in children:
        assert set(child.data.metrics) >= {"mae", "mse", "rmse", "r2"}
        assert child.outputs.model_outputs
    # Children are named by their swept values, short enough for the UI's name column to tell
    # apart (its ~20 characters); their models by kind and the full keys.
    assert {c.info.run_name for c in children} == {
        f"md={d} ne={n}" for d in (3, 6) for n in (20, 40)
    }  # fmt: skip
    values = {f"max_depth={d} n_estimators={n}" for d in (3, 6) for n in (20, 40)}
    client = store(root)
    models = client.search_logged_models([parent.info.experiment_id])
    # Names every URI form takes (runs:/<id>/<name>): no spaces.
    assert {m.name for m in models} == {f"random_forest-{v.replace(' ', '-')}" for v in values}
    # MLflow's UI opens the experiment in its model-training view, not the GenAI one.
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_parent_names_the_best_child_and_carries_the_table_and_plots(grid, tmp_path):
    root, _ = grid
    client = store(root)
    parent, children = sweep_runs(client)
    best = min(children, key=lambda c: c.data.metrics["rmse"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_rmse"] == pytest.approx(best.data.metrics["rmse"])
    # Under the metric's own name too, so the runs table shows it on the parent's row; and
    # the best model as the parent's output, which files the parent as a training run.
    assert parent.data.metrics["rmse"] == pytest.approx(best.data.metrics["rmse"])
    assert [o.model_id for o in parent.outputs.model_outputs] == [
        o.model_id for o in best.outputs.model_outputs
    ]
    # Its description lists the jobs, best first, each linked to its run.
    description = parent.data.tags["mlflow.note.content"]
    assert description.startswith("Sweep: 4 finished, 0 failed, ranked by rmse (minimize).")
    for child in children:
        assert f"(#/experiments/{parent.info.experiment_id}/runs/{child.info.run_id})" in (
            description
        )

    rows = parent_csv(client, parent, tmp_path)
    assert rows[0]["run_id"] == best.info.run_id
    rmses = [float(r["rmse"]) for r in rows]
    assert rmses == sorted(rmses)
    assert list(rows[0])[:4] == ["best", "rank", "job", "max_depth"]
    assert {"n_estimators", "mae", "mse", "rmse", "r2", "status", "run_id"} <= set(rows[0])
    assert [r["best"] for r in rows] == ["*", "", "", ""]

    files = {f.path for f in client.list_artifacts(parent.info.run_id, "comparison")}
    assert files == {
        "comparison/comparison.csv",
        "comparison/comparison.md",
        "comparison/by_max_depth.png",
        "comparison/by_n_estimators.png",
        "comparison/heatmap_max_depth_n_estimators.png",
    }
    md = Path(client.download_artifacts(parent.info.run_id, "comparison/comparison.md", tmp_path))
    assert md.read_text().startswith("| best ")


def test_the_terminal_shows_progress_then_a_leaderboard(grid):
    root, done = grid
    parent, _ = sweep_runs(store(root))
    out = done.stdout
    # Piped, as in CI logs: every progress line whole and on its own line, counted in order.
    progress = [line for line in out.splitlines() if " -> " in line]
    assert len(progress) == 4
    for count, line in enumerate(progress, 1):
        assert re.fullmatch(
            rf"\[{count}/4\] #\d max_depth=\d n_estimators=\d0 -> rmse [\d.]+", line
        )
    assert "[1/4] #0 max_depth=3 n_estimators=20 -> rmse " in out
    assert "4 finished, 0 failed" in out
    best = parent.data.tags["best_run_id"]
    (marked,) = [line for line in out.splitlines() if line.lstrip().startswith("*")]
    assert best in marked
    # One precision per metric column: each column's numbers have the same decimals.
    board = out[out.index("best rank") : out.index("\nbest     job")].strip().splitlines()
    header = board[0].split()[1:]  # the best column is blank but on the best row
    cells = [row.split()[1:] if row.split()[0] == "*" else row.split() for row in board[1:]]
    for column in range(header.index("mae"), header.index("r2") + 1):
        decimals = {len(row[column].partition(".")[2]) for row in cells}
        assert len(decimals) == 1, board
    assert f"sweeplab-tools compare {parent.info.run_id}" in out
    # The light server, and the runs table in MLflow's model-training view.
    assert out.rstrip().endswith(
        "http://127.0.0.1:8080/#/experiments/1/runs?workflowType=machine_learning  "
        "(the sweep is the parent row; expand it for the jobs)"
    )
    # No third-party warning (or its colour codes) reaches the user's terminal.
    assert "Warning" not in done.stderr and "\x1b[" not in done.stderr + out


def test_the_comparison_can_be_regenerated_by_parent_id_or_experiment_filter(grid, tmp_path):
    root, _ = grid
    parent, _ = sweep_runs(store(root))
    done = sweeplab_tools("compare", parent.info.run_id, "--out", str(tmp_path / "again"), cwd=root)
    assert done.returncode == 0, done.stderr
    assert "4 finished, 0 failed" in done.stdout
    assert (tmp_path / "again" / "comparison.csv").is_file()
    by_r2 = sweeplab_tools(
        "compare", parent.info.run_id, "--metric", "r2", "--direction", "maximize", cwd=root
    )
    assert by_r2.returncode == 0, by_r2.stderr
    assert "(run " in by_r2.stdout and " r2 0." in by_r2.stdout
    # Ranked again by r2: the parent says so, and the plots are replaced, not joined.
    client = store(root)
    tags = client.get_run(parent.info.run_id).data.tags
    assert (tags["sweeplab.sweep.metric"], tags["sweeplab.sweep.direction"]) == ("r2", "maximize")
    assert "ranked by r2 (maximize)" in tags["mlflow.note.content"]
    files = {f.path for f in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {f for f in files if f.endswith(".png")} == {
        "comparison/by_max_depth.png",
        "comparison/by_n_estimators.png",
        "comparison/heatmap_max_depth_n_estimators.png",
    }

    tutorial_search = "tags.`project_name` = 'grocery-forecasting'"
    done = sweeplab_tools(
        "compare", "--experiments", tutorial_search, "--out", str(tmp_path / "all"), cwd=root
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "all" / "comparison.csv").open()))
    # The children, not the parent: only runs with a model and metrics are ranked. Rows of
    # any sweep say which experiment and run they are; job numbers would repeat.
    assert len(rows) == 4
    assert list(rows[0])[:5] == ["best", "rank", "experiment", "run", "max_depth"]
    assert {r["experiment"] for r in rows} == {"Apple_Models"}
    assert (tmp_path / "all" / "heatmap_max_depth_n_estimators.png").is_file()


def test_failed_jobs_are_recorded_and_the_rest_still_run(tmp_path):
    # n_estimators=-1 fails validation (no run); an out-of-bag score without bootstrap
    # passes it, and scikit-learn raises inside the run.
    done = sweeplab(
        "-m", "model.n_estimators=-1,20", "model.oob_score=false,true", "model.bootstrap=false",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert "1 finished, 3 failed" in done.stdout
    client = store(tmp_path)
    parent, children = sweep_runs(client)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["sweeplab.sweep.summary"] == "1 finished, 3 failed"
    by_status = {c.info.status: c for c in children}
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    failed = by_status["FAILED"]
    assert failed.data.tags["sweeplab.error"].startswith("ValueError: Out of bag estimation")
    traceback = client.download_artifacts(failed.info.run_id, "error/traceback.txt", tmp_path)
    assert "Traceback" in Path(traceback).read_text()

    rows = parent_csv(client, parent, tmp_path)
    # Unscored jobs follow the scored ones, in job order.
    assert [r["status"] for r in rows] == ["FINISHED", "NOT_STARTED", "NOT_STARTED", "FAILED"]
    assert rows[0]["best"] == "*"
    not_started = rows[1]
    assert not_started["n_estimators"] == "-1"
    assert (
        "model.n_estimators=-1 is not allowed: must be an int in the range [1, inf)"
        in (not_started["note"])
    )
    # The summary names each failed job by its overrides.
    failed_lines = [line for line in done.stdout.splitlines() if line.startswith("failed")]
    assert len(failed_lines) == 3
    assert any("model.n_estimators=20 model.oob_score=True" in line for line in failed_lines)
    assert sum("model.n_estimators=-1" in line for line in failed_lines) == 2


def test_joblib_workers_are_started_and_importing_before_the_first_job():
    # Workers of a fresh loky pool import scikit-learn, MLflow and skops in their first job;
    # the launcher hands them that work as it is set up, before the sweep opens its store.
    from joblib import Parallel, delayed

    from hydra_plugins.sweeplab_joblib_launcher.joblib_launcher import JoblibLauncher
    from sweeplab import app
    from sweeplab.sweep.joblib_pool import settings_of, warmed

    launcher = JoblibLauncher(n_jobs=2)
    # Another app's jobs (Hydra's contract suites run them) get no warm-up.
    launcher.setup(hydra_context=None, task_function=lambda cfg: cfg, config=None)
    assert launcher.warming is None
    # Hydra hands launchers the function @hydra.main decorates.
    launcher.setup(hydra_context=None, task_function=app.main.__wrapped__, config=None)
    assert launcher.warming is not None
    warmed(launcher.warming)
    probe = "[m for m in ('skops.io', 'mlflow.sklearn') if m in __import__('sys').modules]"
    seen = Parallel(**settings_of(launcher.joblib), return_as="list")(
        delayed(eval)(probe) for _ in range(6)
    )
    assert seen == [["skops.io", "mlflow.sklearn"]] * 6


def test_skip_finished_reuses_runs_and_trains_only_what_is_missing(tmp_path):
    first = sweeplab("-m", "model.n_estimators=5,-1", cwd=tmp_path, timeout=300)
    assert first.returncode == 1  # the bad value; the other job finished
    client = store(tmp_path)
    _, (earlier,) = sweep_runs(client)

    again = sweeplab(
        "-m", "model.n_estimators=5,10", "sweep.skip_finished=true", cwd=tmp_path, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert f"(reused run {earlier.info.run_id})" in again.stdout
    assert "2 finished (1 reused), 0 failed" in again.stdout
    exp = client.get_experiment_by_name("Apple_Models")
    parents = client.search_runs([exp.experiment_id], "tags.`sweeplab.sweep` = 'true'")
    latest = max(parents, key=lambda r: r.info.start_time)
    (trained,) = client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{latest.info.run_id}'"
    )
    assert trained.data.params["n_estimators"] == "10"
    rows = parent_csv(client, latest, tmp_path)
    assert {r["run_id"]: r["status"] for r in rows} == {
        earlier.info.run_id: "REUSED",
        trained.info.run_id: "FINISHED",
    }

    # Everything reused: the parent has no children, and still shows what it stands for.
    third = sweeplab(
        "-m", "model.n_estimators=5,10", "sweep.skip_finished=true", cwd=tmp_path, timeout=300
    )  # fmt: skip
    assert "2 finished (2 reused), 0 failed" in third.stdout
    parents = client.search_runs([exp.experiment_id], "tags.`sweeplab.sweep` = 'true'")
    newest = max(parents, key=lambda r: r.info.start_time)
    assert not client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{newest.info.run_id}'"
    )
    best = client.get_run(newest.data.tags["best_run_id"])
    assert newest.outputs.model_outputs[0].model_id == best.outputs.model_outputs[0].model_id
    description = newest.data.tags["mlflow.note.content"]
    for reused in (earlier, trained):
        assert f"(reused, trained earlier) ([run](#/experiments/{exp.experiment_id}/runs/" \
            f"{reused.info.run_id}))" in description  # fmt: skip


def test_a_job_that_does_not_compose_stops_the_sweep_before_any_run(tmp_path):
    done = sweeplab("-m", "dataset.n_rows=100,abc", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "sweeplab: error: dataset.n_rows='abc' is not allowed: "
        "Value 'abc' of type 'str' could not be converted to Integer\n"
    )
    typo = sweeplab("-m", "model.max_dept=3,6", cwd=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr.startswith(
        "sweeplab: error: model.max_dept='3' is not allowed: unknown hyperparameter of "
        "sklearn.ensemble.RandomForestRegressor"
    )
    client = store(tmp_path)
    exp = client.get_experiment_by_name("Apple_Models")
    assert exp is None or not client.search_runs([exp.experiment_id])


@pytest.mark.fresh_store
def test_where_to_log_cannot_vary_within_one_sweep(tmp_path):
    done = sweeplab("-m", "experiment.name=A,B", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sweeplab: error: experiment.name='A,B' is not allowed: cannot vary within one sweep: "
        "its parent run, comparison and registration use one store, experiment, metric and "
        "registered model; run one sweep per value"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_the_sweep_metric_and_direction_rank_the_jobs(tmp_path):
    done = sweeplab(
        "-m", "model.max_depth=2,6", "model.n_estimators=10",
        "sweep.metric=r2", "sweep.direction=maximize", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Each job by its swept value alone; the first line gives what they share.
    assert "sweep 'n_estimators=10 · max_depth (md): 2 jobs of random_forest'" in done.stdout
    assert "] #0 max_depth=2 -> r2 0." in done.stdout
    parent, children = sweep_runs(store(tmp_path))
    best = max(children, key=lambda c: c.data.metrics["r2"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_r2"] == pytest.approx(best.data.metrics["r2"])


# ---------------------------------------------------------------- the table itself


def test_rows_rank_best_first_with_unscored_rows_last():
    rows = [
        Row("FINISHED", "a", 0, {"alpha": "1.0"}, {"rmse": 3.0, "r2": 0.5}),
        Row("NOT_STARTED", None, 1, {"alpha": "-1"}, note="alpha=-1 is not allowed"),
        Row("FINISHED", "b", 2, {"alpha": "2.0"}, {"rmse": 2.0, "r2": 0.7}),
    ]
    table = compare(rows, "rmse", "minimize").table
    assert list(table["run_id"]) == ["b", "a", ""]
    assert list(table["best"]) == ["*", "", ""]
    assert list(table["rank"].astype("float").fillna(0)) == [1, 2, 0]
    by_r2 = compare(rows, "r2", "maximize").table
    assert list(by_r2["run_id"]) == ["b", "a", ""]
    assert math.isnan(by_r2["rmse"].iloc[2])


def test_swept_params_are_those_that_differ_in_sweep_order():
    rows = [
        Row("FINISHED", params={"n_estimators": "10", "max_depth": "3", "seed": "1"}),
        Row("FINISHED", params={"n_estimators": "20", "max_depth": "6", "seed": "1"}),
    ]
    assert swept_params(rows) == ["max_depth", "n_estimators"]
    order = ["model.n_estimators=10,20", "model.max_depth=3,6"]
    assert swept_params(rows, order) == ["n_estimators", "max_depth"]


def test_runs_on_different_data_are_ranked_within_their_own_data():
    rows = [
        Row("FINISHED", "big-a", metrics={"rmse": 120.0}, data="aaaa1111", run_name="a"),
        Row("FINISHED", "small", metrics={"rmse": 75.0}, data="bbbb2222", run_name="s"),
        Row("FINISHED", "big-b", metrics={"rmse": 118.0}, data="aaaa1111", run_name="b"),
        Row("NOT_STARTED", None, note="refused"),
    ]
    comparison = compare(rows, "rmse", "minimize", across_sweeps=True)
    table = comparison.table
    # The larger group first; the 2,000-row run is not "best" against 5,000-row runs.
    assert list(table["run_id"]) == ["big-b", "big-a", "small", ""]
    assert list(table["rank"].astype("float").fillna(0)) == [1, 2, 1, 0]
    assert list(table["best"]) == ["*", "", "*", ""]
    assert list(table["data"]) == ["aaaa1111", "aaaa1111", "bbbb2222", ""]
    assert comparison.best["run_id"] == "big-b"
    assert comparison.data_groups == 2
    assert "job" not in table.columns and list(table.columns[2:4]) == ["experiment", "run"]
    # One data set: no data column.
    same = compare(rows[:1] + rows[2:], "rmse", "minimize")
    assert "data" not in same.table.columns and same.data_groups == 1


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ([95.878, 95.8607, 101.2], ["95.878", "95.861", "101.200"]),
        ([15125.0, 14777.6], ["15125.0", "14777.6"]),
        ([0.770012, -0.2], ["0.770012", "-0.200000"]),
        ([3e-5, 1e-7], ["0.0000300000", "0.0000001000"]),
    ],
)
def test_a_metric_column_has_one_precision(values, shown):
    import pandas as pd

    from sweeplab.compare.results import column_format

    spec = column_format(pd.Series(values))
    assert [format(v, spec) for v in values] == shown


def test_categorical_and_missing_params_plot_as_they_are(tmp_path):
    """A sweep over models: `model` is categorical, `max_depth` is missing for ridge."""
    from sweeplab.compare.results import plot

    rows = [
        Row("FINISHED", "r", 0, {"model": "ridge"}, {"rmse": 124.3}),
        Row("FINISHED", "f", 1, {"model": "random_forest", "max_depth": "6"}, {"rmse": 121.6}),
        Row("FINISHED", "g", 2, {"model": "gradient_boosting", "max_depth": "3"}, {"rmse": 122.4}),
    ]
    comparison = compare(rows, "rmse", "minimize")
    import matplotlib.pyplot as plt

    drawn = []
    original = plt.Figure.savefig

    def keep(fig, path, **kwargs):
        ax = fig.axes[0]
        drawn.append(
            (Path(path).name, [t.get_text() for t in ax.get_xticklabels()],
             [line.get_linestyle() for line in ax.get_lines()])
        )  # fmt: skip
        return original(fig, path, **kwargs)

    plt.Figure.savefig = keep
    try:
        plot(comparison, tmp_path)
    finally:
        plt.Figure.savefig = original
    # Each model has its own max_depth, none swept: max_depth is no swept param, not plotted.
    assert comparison.swept == ["model"]
    assert drawn == [
        # Points, not lines through unrelated models.
        ("by_model.png", ["gradient_boosting", "random_forest", "ridge"], ["None"]),
    ]
    # Swept within a model, it is plotted: one line per model that has it, ridge left out.
    rows.append(
        Row("FINISHED", "f9", 3, {"model": "random_forest", "max_depth": "9"}, {"rmse": 121.0})
    )
    drawn.clear()
    plt.Figure.savefig = keep
    try:
        plot(compare(rows, "rmse", "minimize"), tmp_path)
    finally:
        plt.Figure.savefig = original
    by_depth = next(d for d in drawn if d[0] == "by_max_depth.png")
    assert by_depth[1] == ["3", "6", "9"] and by_depth[2] == ["-", "-"]


def _many_jobs(count: int, seeds: int = 1) -> list[Row]:
    return [
        Row("FINISHED", f"r{i}-{s}", i * seeds + s, {"alpha": str(i + 1), "seed": str(s)},
            {"rmse": 100.0 + abs(i - count / 3) + s})
        for i in range(count) for s in range(seeds)
    ]  # fmt: skip


def test_a_big_sweeps_leaderboard_shows_the_best_rows_and_counts_the_rest():
    from sweeplab.compare.results import leaderboard

    comparison = compare(_many_jobs(1000), "rmse", "minimize")
    text = leaderboard(comparison, limit=25).splitlines()
    assert len(text) == 1 + 25 + 1  # header, the rows, the count
    assert text[1].lstrip().startswith("*")  # the best first
    assert text[-1] == "... 975 more jobs in comparison/comparison.csv"
    assert len(leaderboard(comparison).splitlines()) == 1001  # `sweeplab-tools compare`: all


def test_a_big_sweeps_plots_label_a_readable_number_of_ticks(tmp_path):
    """1,000 values of alpha on a number line; a 100x2 heatmap without text in its cells."""
    import matplotlib.pyplot as plt

    from sweeplab.compare.results import plot

    comparison = compare(_many_jobs(100, seeds=2), "rmse", "minimize")
    drawn = {}
    original = plt.Figure.savefig

    def keep(fig, path, **kwargs):
        fig.canvas.draw()
        ax = fig.axes[0]
        drawn[Path(path).name] = (
            [t.get_text() for t in ax.get_xticklabels() if t.get_text()],
            [t.get_text() for t in ax.get_yticklabels() if t.get_text()],
            len(ax.texts),
        )
        return original(fig, path, **kwargs)

    plt.Figure.savefig = keep
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            plot(comparison, tmp_path)
    finally:
        plt.Figure.savefig = original
    by_alpha, _, _ = drawn["by_alpha.png"]
    assert 3 <= len(by_alpha) <= 20  # the axis's own ticks, not 100 labels
    _, rows, cell_texts = drawn["heatmap_alpha_seed.png"]
    assert 3 <= len(rows) <= 20 and cell_texts == 0
    assert drawn["by_seed.png"][0] == ["0", "1"]  # few values: each labelled, as before
    assert warned == []  # no legend of 100 lines crushing the axes


def test_parents_of_one_grid_on_different_values_differ_in_the_uis_name_column(compose_cfg):
    from sweeplab.sweep.parent import sweep_name

    grid = ["model.max_depth=3,6,9", "model.n_estimators=50,100,200"]
    swept = ["model.max_depth", "model.n_estimators"]

    def name(*fixed: str) -> str:
        return sweep_name(compose_cfg(*fixed), [*fixed, *grid], swept, 9)

    names = [
        name(),
        name("dataset.n_rows=2000"),
        name("model.min_samples_leaf=8"),
        name("model=gradient_boosting", "dataset.n_rows=2000"),
    ]
    assert names == [
        "max_depth (md) x n_estimators (ne): 9 jobs of random_forest",
        "n_rows=2000 · max_depth (md) x n_estimators (ne): 9 jobs of random_forest",
        "min_samples_leaf=8 · max_depth (md) x n_estimators (ne): 9 jobs of random_forest",
        "gradient_boosting n_rows=2000 · max_depth (md) x n_estimators (ne): 9 jobs",
    ]
    # MLflow's UI shows about 20 characters of a name.
    assert len({n[:20] for n in names}) == len(names)
