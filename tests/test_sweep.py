"""Multiruns as users launch them: a parent run, nested children, a ranked comparison."""

import csv
import io
import math
import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from conftest import BIN, sweeplab
from sweeplab.compare import Row, compare, swept_params

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


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One 2x2 sweep with the basic launcher: (launch dir, the process's result)."""
    root = tmp_path_factory.mktemp("grid")
    return root, sweeplab("-m", *GRID, cwd=root, timeout=300)


def test_a_sweep_makes_one_parent_and_a_nested_child_per_job(grid):
    root, done = grid
    assert done.returncode == 0, done.stderr
    parent, children = sweep_runs(store(root))
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "sweep random_forest max_depth=3,6 n_estimators=20,40"
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


def test_the_parent_names_the_best_child_and_carries_the_table_and_plots(grid, tmp_path):
    root, _ = grid
    client = store(root)
    parent, children = sweep_runs(client)
    best = min(children, key=lambda c: c.data.metrics["rmse"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_rmse"] == pytest.approx(best.data.metrics["rmse"])

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
        "comparison/rmse_by_max_depth.png",
        "comparison/rmse_by_n_estimators.png",
        "comparison/rmse_heatmap_max_depth_n_estimators.png",
    }
    md = Path(client.download_artifacts(parent.info.run_id, "comparison/comparison.md", tmp_path))
    assert md.read_text().startswith("| best ")


def test_the_terminal_shows_progress_then_a_leaderboard(grid):
    root, done = grid
    parent, _ = sweep_runs(store(root))
    out = done.stdout
    for line in (
        "[1/4] #0 max_depth=3 n_estimators=20 -> rmse ",
        "[4/4] #3 max_depth=6 n_estimators=40",
    ):
        assert line in out
    assert "4 finished, 0 failed" in out
    best = parent.data.tags["best_run_id"]
    (marked,) = [line for line in out.splitlines() if line.lstrip().startswith("*")]
    assert best in marked
    assert f"sweeplab-tools compare {parent.info.run_id}" in out


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

    tutorial_search = "tags.`project_name` = 'grocery-forecasting'"
    done = sweeplab_tools(
        "compare", "--experiments", tutorial_search, "--out", str(tmp_path / "all"), cwd=root
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "all" / "comparison.csv").open()))
    # The children, not the parent: only runs with a model and metrics are ranked.
    assert len(rows) == 4
    assert (tmp_path / "all" / "rmse_heatmap_max_depth_n_estimators.png").is_file()


def sweeplab_tools(*args: str, cwd: Path):
    import subprocess

    return subprocess.run(
        [str(BIN / "sweeplab-tools"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


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


def test_a_parallel_sweep_on_a_fresh_store_loses_nothing(tmp_path):
    done = sweeplab(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "model.n_estimators=5,10,15,20", "model.max_depth=2,4",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "8 finished, 0 failed" in done.stdout
    _, children = sweep_runs(store(tmp_path))
    assert len(children) == 8
    assert {c.info.status for c in children} == {"FINISHED"}
    assert all(c.outputs.model_outputs for c in children)
    db = sqlite3.connect(tmp_path / "outputs" / "mlflow.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


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


def test_where_to_log_cannot_vary_within_one_sweep(tmp_path):
    done = sweeplab("-m", "experiment.name=A,B", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sweeplab: error: experiment.name='A,B' is not allowed: cannot vary within one sweep: "
        "its parent run and comparison use one store, experiment and metric; "
        "run one sweep per value"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_the_sweep_metric_and_direction_rank_the_jobs(tmp_path):
    done = sweeplab(
        "-m", "model.max_depth=2,6", "model.n_estimators=10",
        "sweep.metric=r2", "sweep.direction=maximize", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "max_depth=2 n_estimators=10 -> r2 0." in done.stdout
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
