"""The user's own data: CSV and Parquet files, bundled datasets, classification, their checks."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from conftest import sweeplab
from sweeplab.model import train
from sweeplab.run import plan
from sweeplab.run.runner import execute
from sweeplab.util.checks import ConfigError


def sales(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Daily unit sales of three stores: a date, a text and a boolean column, one unknown target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows).strftime("%Y-%m-%d"),
            "store": rng.choice(["north", "south", "east"], rows),
            "promo": rng.choice([True, False], rows),
            "price": rng.uniform(1, 3, rows).round(2),
        }
    )
    frame["units"] = (
        100 - 20 * frame.price + 15 * frame.promo + np.where(frame.store == "north", 10, 0)
    ) + rng.normal(0, 3, rows).round(1)
    frame.loc[3, "units"] = np.nan
    return frame


@pytest.fixture
def sales_csv(isolated: Path) -> Path:
    path = isolated / "data" / "sales.csv"
    path.parent.mkdir()
    sales().to_csv(path, index=False)
    return path


def table(path: str, target: str = "units", *more: str) -> list[str]:
    return ["dataset=table", f"dataset.path={path}", f"dataset.target={target}", *more]


def predict_in_a_fresh_process(model_uri: str, rows: Path, out: Path) -> np.ndarray:
    """Load the logged model with mlflow.pyfunc in a new Python and predict on raw file rows."""
    code = (
        "import sys, mlflow, pandas as pd, numpy as np; "
        "rows = pd.read_csv(sys.argv[2]) if sys.argv[2].endswith('.csv') else pd.read_parquet(sys.argv[2]); "
        "np.save(sys.argv[3], np.asarray(mlflow.pyfunc.load_model(sys.argv[1]).predict(rows)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, model_uri, str(rows), str(out)],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ,
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return np.load(out, allow_pickle=True)


def test_a_csv_with_text_and_boolean_columns_trains_a_model_that_takes_its_raw_rows(
    compose_cfg, sales_csv, isolated, capsys
):
    overrides = table(
        "data/sales.csv", "units", "dataset.drop=[date]", "model=hist_gradient_boosting"
    )
    result = execute(compose_cfg(*overrides), overrides)
    assert "1 of 300 rows of data/sales.csv have no 'units': left out" in capsys.readouterr().err
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["dataset.path"] == "data/sales.csv"
    assert run.data.params["dataset.drop"] == "['date']"
    assert run.data.tags["sweeplab.task"] == "regression"
    assert run.data.tags["sweeplab.estimator"] == "sklearn.ensemble.HistGradientBoostingRegressor"
    assert set(run.data.metrics) == {"mae", "mse", "rmse", "r2"}
    (training,) = [i for i in run.inputs.dataset_inputs if i.tags[0].value == "training"]
    assert training.dataset.name == "sales"
    assert str(sales_csv) in training.dataset.source
    # The logged model's name is one every URI form takes: no spaces, brackets or dots.
    (model,) = client.search_logged_models([run.info.experiment_id])
    assert model.name == (
        "hist_gradient_boosting-dataset=table-dataset-path=data-sales-csv-dataset-target=units-"
        "dataset-drop=-date"
    )
    assert result.model_uri == f"runs:/{run.info.run_id}/{model.name}"

    # The model is a Pipeline that one-hot encodes `store` and `promo` itself: it takes the
    # file's rows as they are, date column and all, in a Python that never saw the training.
    planned = plan.make(compose_cfg(*overrides))
    expected = train.train(planned.estimator, planned.split, planned.task).estimator
    raw = pd.read_csv(sales_csv).drop(columns=["units"])
    loaded = predict_in_a_fresh_process(result.model_uri, sales_csv, isolated / "p.npy")
    np.testing.assert_allclose(loaded, expected.predict(raw.drop(columns=["date"])), rtol=1e-12)
    assert type(planned.estimator).__name__ == "Pipeline"


def test_parquet_reads_like_csv(compose_cfg, sales_csv, isolated):
    sales().to_parquet(isolated / "data" / "sales.parquet")
    from_csv = plan.make(compose_cfg(*table(str(sales_csv), "units", "dataset.drop=[date]")))
    from_parquet = plan.make(
        compose_cfg(*table("data/sales.parquet", "units", "dataset.drop=[date]"))
    )
    assert from_parquet.data.source == str(isolated / "data" / "sales.parquet")
    pd.testing.assert_frame_equal(from_csv.split.X_val, from_parquet.split.X_val)
    assert (
        from_csv.data.categorical
        == from_parquet.data.categorical
        == {
            "store": "onehot",
            "promo": "onehot",
        }
    )


def test_the_fingerprint_follows_the_files_content_not_its_path(compose_cfg, sales_csv, isolated):
    overrides = [*table("data/sales.csv", "units", "dataset.drop=[date]"), "model=ridge",
                 "sweep.skip_finished=true"]  # fmt: skip
    first = execute(compose_cfg(*overrides))
    again = execute(compose_cfg(*overrides))
    assert again.reused and again.run_id == first.run_id
    # The same bytes elsewhere are the same data (in the experiment named after sales.csv).
    (isolated / "copy.csv").write_bytes(sales_csv.read_bytes())
    moved = execute(compose_cfg(*table("copy.csv", "units", "dataset.drop=[date]"), "model=ridge",
                                "sweep.skip_finished=true", "experiment.name=sales"))  # fmt: skip
    assert moved.reused and moved.run_id == first.run_id
    # One changed value past MLflow's own 10,000-row digest window would not matter; here it does.
    changed = sales()
    changed.loc[299, "price"] = 9.99
    changed.to_csv(sales_csv, index=False)
    after = execute(compose_cfg(*overrides))
    assert not after.reused
    tags = {
        r: MlflowClient(first.tracking_uri).get_run(r).data.tags
        for r in (first.run_id, after.run_id)
    }
    assert (
        tags[first.run_id]["sweeplab.config_fingerprint"]
        != tags[after.run_id]["sweeplab.config_fingerprint"]
    )
    assert tags[first.run_id]["sweeplab.data_digest"] != tags[after.run_id]["sweeplab.data_digest"]


@pytest.mark.parametrize(
    ("target", "task"),
    [("units", "regression"), ("store", "classification"), ("promo", "classification")],
)
def test_auto_task_classifies_text_and_booleans_and_regresses_numbers(
    compose_cfg, sales_csv, target, task
):
    drop = "dataset.drop=[date]" if target == "units" else "dataset.drop=[date,units]"
    model = "model=ridge" if task == "regression" else "model=logistic_regression"
    planned = plan.make(compose_cfg(*table("data/sales.csv", target, drop), model))
    assert planned.task.name == task
    assert (planned.metric, planned.direction) == (
        ("rmse", "minimize") if task == "regression" else ("accuracy", "maximize")
    )


def test_classification_splits_keep_each_class_share(compose_cfg, sales_csv):
    planned = plan.make(compose_cfg(*table("data/sales.csv", "store", "dataset.drop=[date,units]"),
                                    "model=logistic_regression"))  # fmt: skip
    whole = planned.data.frame["store"].value_counts(normalize=True)
    held_out = planned.split.y_val.value_counts(normalize=True)
    assert (held_out - whole).abs().max() < 0.02


# ---------------------------------------------------------------- classification end to end


def test_iris_is_a_classification_scored_by_accuracy(compose_cfg):
    result = execute(
        compose_cfg("dataset=sklearn", "dataset.name=iris", "model=logistic_regression")
    )
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert set(run.data.metrics) == {"accuracy", "f1_macro", "log_loss", "roc_auc"}
    assert run.data.metrics["accuracy"] > 0.9
    assert (result.metric, result.direction) == ("accuracy", "maximize")
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    from sklearn.datasets import load_iris

    assert set(loaded.predict(load_iris(as_frame=True).data)) == {0, 1, 2}


def test_breast_cancer_gets_a_binary_roc_auc_and_ranks_by_it_when_asked(compose_cfg):
    cfg = compose_cfg("dataset=sklearn", "dataset.name=breast_cancer", "model=random_forest_classifier",
                      "model.n_estimators=20", "sweep.metric=roc_auc")  # fmt: skip
    result = execute(cfg)
    assert 0.95 < result.metrics["roc_auc"] <= 1
    assert (result.metric, result.direction) == ("roc_auc", "maximize")


def test_a_classification_sweep_ranks_by_accuracy_on_the_parent(tmp_path):
    done = sweeplab("-m", "dataset=sklearn", "dataset.name=wine", "model=random_forest_classifier",
                    "model.n_estimators=5,30", cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "-> accuracy 0." in done.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    # No experiment named: the one named after the data, without the tutorial's tags.
    exp = client.get_experiment_by_name("wine")
    assert "project_name" not in exp.tags
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("sweeplab.sweep") == "true"]
    children = [r for r in runs if r is not parent and r.data.tags.get("sweeplab.sweep") != "true"]
    best = max(children, key=lambda r: r.data.metrics["accuracy"])
    assert parent.data.tags["sweeplab.sweep.metric"] == "accuracy"
    assert parent.data.tags["sweeplab.sweep.direction"] == "maximize"
    assert parent.data.metrics["best_accuracy"] == best.data.metrics["accuracy"]


# ---------------------------------------------------------------- bad data: one line, no store


def write(isolated: Path, name: str, content: bytes | str) -> str:
    path = isolated / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return name


# The shipped models an error offers: LightGBM's and XGBoost's only where installed.
LGBM = "model=lightgbm, " if importlib.util.find_spec("lightgbm") else ""
XGB = "model=xgboost, " if importlib.util.find_spec("xgboost") else ""


@pytest.mark.fresh_store
@pytest.mark.parametrize(
    ("setup", "overrides", "message"),
    [
        (None, table("nope.csv"), r"dataset.path='nope.csv' is not allowed: no such file: .*nope.csv"),
        (("empty.csv", ""), table("empty.csv"), r"dataset.path='empty.csv' is not allowed: the file is empty"),
        (("header.csv", "a,units\n"), table("header.csv"), r"the file has no rows"),
        (("bad.parquet", b"\x00not parquet"), table("bad.parquet"), r"dataset.path='bad.parquet' is not allowed: cannot be read as PARQUET \("),
        (("notes.xlsx", "x"), table("notes.xlsx"), r"must name a .csv, .tsv or .parquet file"),
        ("sales", table("data/sales.csv", "sold"), r"dataset.target='sold' is not allowed: not a column of data/sales.csv: columns are \['date', 'store', 'promo', 'price', 'units'\]"),
        ("sales", table("data/sales.csv", "units", "dataset.drop=[date,day]"), r"dataset.drop=\['date', 'day'\] is not allowed: \['day'\] not column\(s\) of data/sales.csv"),
        ("sales", table("data/sales.csv"), r"column\(s\) \['date'\] of data/sales.csv hold dates, times or other values that cannot be features: leave them out with 'dataset.drop=\[date\]'"),
        (("few.csv", "x,label\n1,a\n2,a\n3,b\n4,b\n5,c\n"), [*table("few.csv", "label"), "model=logistic_regression"], r"dataset.target='label' is not allowed: class\(es\) \['c'\] of few have a single row"),
        ("sales", [*table("data/sales.csv", "units", "dataset.drop=[date]"), "sweep.metric=accuracy"], r"sweep.metric='accuracy' is not allowed: the dataset's task, regression, has \['mae', 'mse', 'rmse', 'r2'\]"),
        ("sales", [*table("data/sales.csv", "store", "dataset.drop=[date]"), "model=ridge"], rf"model='ridge' is not allowed: sklearn.linear_model.Ridge is a regressor, and the dataset's task is classification: pick a classifier: model=hist_gradient_boosting, {LGBM}model=logistic_regression, model=random_forest_classifier, {XGB}or your own"),
        (None, ["dataset=sklearn", "dataset.name=diabetes", "model=random_forest_classifier"], rf"RandomForestClassifier is a classifier, and the dataset's task is regression: pick a regressor: model=gradient_boosting, model=hist_gradient_boosting, {LGBM}model=random_forest, model=ridge, {XGB}or your own"),
        (None, ["dataset=sklearn", "model=logistic_regression", "model.C=0"], r"model.C=0 is not allowed: must be a float in the range \(0.0, inf\]"),
        (None, ["dataset=sklearn", "model=logistic_regression", "+model.c=1"], r"model.c=1 is not allowed: unknown hyperparameter of sklearn.linear_model.LogisticRegression: its parameters are \['C', 'class_weight'"),
        ("sales", [*table("data/sales.csv", "promo", "dataset.drop=[date]"), "model=logistic_regression"], r"model='logistic_regression' is not allowed: sklearn.linear_model.LogisticRegression does not take missing values, and column\(s\) \['units'\] of sales have some: pick a model that does"),
        (None, ["dataset=sklearn", "model=random_forest_classifier", "sweep.metric=rmse"], r"sweep.metric='rmse' is not allowed: the dataset's task, classification, has \['accuracy', 'f1_macro', 'log_loss', 'roc_auc'\]"),
    ],
    ids=["missing", "empty", "no-rows", "unreadable", "format", "target", "drop", "dates",
         "single-class-row", "metric-for-task", "regressor-on-classes", "classifier-on-numbers",
         "bad-value", "unknown-hyperparameter", "missing-values", "classification-metric"],
)  # fmt: skip
def test_bad_data_and_mismatches_are_one_line_before_any_store(
    compose_cfg, isolated, sales_csv, setup, overrides, message
):
    if isinstance(setup, tuple):
        write(isolated, *setup)
    with pytest.raises(ConfigError, match=message):
        plan.make(compose_cfg(*overrides))
    assert not (isolated / "outputs").exists()


@pytest.mark.fresh_store
def test_on_the_command_line_bad_data_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "sales.csv").write_text("date,units\n2024-01-01,3\n2024-01-02,4\n")
    done = sweeplab(*table("sales.csv"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "sweeplab: error: dataset.drop=[] is not allowed: column(s) ['date'] of sales.csv hold "
        "dates, times or other values that cannot be features: leave them out with "
        "'dataset.drop=[date]'\n"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


@pytest.mark.fresh_store
def test_every_problem_of_a_file_and_its_model_comes_in_one_pass(tmp_path):
    rows = 1200
    frame = pd.DataFrame({
        "tenure": [float(i % 40) if i % 7 else None for i in range(rows)],
        "city": [f"city{i % 1100}" for i in range(rows)],        # 1,100 values: needs a choice
        "email": [f"user{i}@example.com" for i in range(rows)],  # unique: an id
        "signup": pd.date_range("2020-01-01", periods=rows, freq="D").astype(str),
        "churned": ["yes" if i % 3 else "no" for i in range(rows)],
    })  # fmt: skip
    frame.to_csv(tmp_path / "customers.csv", index=False)
    done = sweeplab(*table("customers.csv", "churned"), "model=ridge", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("sweeplab: error: ") for line in lines)
    # Dates, an id, too many categories, and a regressor for classes: four lines, one run.
    assert len(lines) == 4, lines
    assert "column(s) ['signup'] of customers.csv hold dates" in lines[0]
    assert "'dataset.drop=[signup,email]'" in lines[0]
    assert "['email'] of customers.csv hold a different value in every row" in lines[1]
    assert (
        "dataset.encode={} is not allowed: text column(s) city (1,100 values) of customers.csv "
        "have more distinct values than dataset.max_categories=1,000: choose an encoding for "
        "each, e.g. '+dataset.encode={city:target}' (target, ordinal, native, or onehot: the 999 "
        "commonest values and one 'other'), or leave them out with "
        "'dataset.drop=[signup,email,city]'"
    ) in lines[2]
    assert "is a regressor, and the dataset's task is classification" in lines[3]
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    # Each choice made as the lines say, what is left is the missing values the model refuses.
    again = sweeplab(*table("customers.csv", "churned"), "model=logistic_regression",
                     "dataset.drop=[signup,email]", "+dataset.encode={city:target}",
                     cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2
    assert again.stderr.count("sweeplab: error:") == 1, again.stderr
    assert "does not take missing values, and column(s) ['tenure']" in again.stderr


def test_the_file_is_read_once_per_run_digest_included(compose_cfg, sales_csv):
    opened: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open" and str(args[0]).endswith("sales.csv"):
            opened.append(str(args[0]))

    sys.addaudithook(audit)  # hooks cannot be removed; this one only ever appends
    execute(compose_cfg(*table("data/sales.csv", "units", "dataset.drop=[date]"), "model=ridge"))
    assert opened == [str(sales_csv)]


def test_logged_datasets_have_the_schema_mlflow_would_infer(sales_csv):
    from sweeplab.tracking.log import dataset_schema

    frame = pd.read_csv(sales_csv)
    frame.loc[7, "store"] = None
    assert dataset_schema(frame) == mlflow.data.from_pandas(frame).schema
    assert [c.required for c in dataset_schema(frame).inputs] == [True, False, True, True, False]


def test_a_text_column_as_wide_as_the_data_is_refused_as_an_id(compose_cfg, isolated):
    rows = 1500
    pd.DataFrame(
        {"order_id": [f"o{i}" for i in range(rows)], "x": range(rows), "y": range(rows)}
    ).to_csv(isolated / "orders.csv", index=False)
    with pytest.raises(
        ConfigError,
        match=r"text column\(s\) \['order_id'\] of orders.csv hold a different value in every row \(ids or free text; to encode one anyway, name it in dataset.encode\): leave them out with 'dataset.drop=\[order_id\]'$",
    ):
        plan.make(compose_cfg(*table("orders.csv", "y")))
    # Chosen, an encoding is used even there: the user has said what they want.
    chosen = plan.make(compose_cfg(*table("orders.csv", "y"), "+dataset.encode={order_id:ordinal}"))
    assert chosen.data.categorical == {"order_id": "ordinal"}


def test_missing_feature_values_go_to_the_model_as_they_are(compose_cfg, isolated):
    frame = sales()
    frame.loc[[5, 50, 150], "price"] = np.nan
    frame.loc[[7, 70], "store"] = None
    frame.to_csv(isolated / "gaps.csv", index=False)
    overrides = table("gaps.csv", "units", "dataset.drop=[date]", "model=hist_gradient_boosting")
    planned = plan.make(compose_cfg(*overrides))
    assert planned.data.frame["price"].isna().sum() == 3  # not imputed, not dropped
    result = execute(compose_cfg(*overrides))
    rows = pd.read_csv(isolated / "gaps.csv").drop(columns=["units"]).head(10)
    assert np.isfinite(mlflow.pyfunc.load_model(result.model_uri).predict(rows)).all()


@pytest.mark.fresh_store
def test_a_sweep_ranked_by_a_metric_its_task_lacks_stops_before_any_run(tmp_path):
    done = sweeplab("-m", "dataset=sklearn", "dataset.name=diabetes", "sweep.metric=accuracy",
                    "model=ridge,random_forest", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "sweeplab: error: sweep.metric='accuracy' is not allowed: the dataset's task, "
        "regression, has ['mae', 'mse', 'rmse', 'r2']\n"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


@pytest.mark.parametrize("name", ["sales.tsv", "sales.csv.gz", "sales.csv.zip"])
def test_tab_separated_and_compressed_files_read_like_csv(compose_cfg, isolated, name):
    frame = sales()
    frame.to_csv(isolated / name, index=False, sep="\t" if name.endswith(".tsv") else ",")
    planned = plan.make(compose_cfg(*table(name, "units", "dataset.drop=[date]")))
    assert planned.data.features == ["store", "promo", "price"]
    assert len(planned.data.frame) == 299


def test_a_sweeps_ranking_comes_from_the_files_target_column(compose_cfg, sales_csv):
    by_store = compose_cfg(*table("data/sales.csv", "store", "dataset.drop=[date,units]"))
    assert plan.task_of(by_store).name == "classification"
    assert plan.task_of(compose_cfg(*table("data/sales.csv", "units"))).name == "regression"
    told = compose_cfg(*table("data/sales.csv", "units", "dataset.task=classification"))
    assert plan.task_of(told).name == "classification"


def test_a_boolean_target_is_a_binary_classification_with_roc_auc(compose_cfg, sales_csv):
    overrides = [
        *table("data/sales.csv", "promo", "dataset.drop=[date,units]"),
        "model=logistic_regression",
    ]
    result = execute(compose_cfg(*overrides))
    assert set(result.metrics) == {"accuracy", "f1_macro", "log_loss", "roc_auc"}
    # promo is drawn at random here: what matters is that a binary AUC is computed at all.
    assert 0 <= result.metrics["roc_auc"] <= 1


# ---------------------------------------------------------------- the experiment of one's data


def test_runs_on_ones_own_data_go_to_an_experiment_named_after_it(compose_cfg):
    def experiment(*overrides: str) -> dict:
        return OmegaConf.to_container(compose_cfg(*overrides).experiment, resolve=True)

    unnamed = {"description": "", "tags": {}}
    assert experiment(*table("data/customers.csv.gz", "churned")) == {
        "name": "customers",
        **unnamed,
    }
    assert experiment("dataset=sklearn", "dataset.name=wine") == {"name": "wine", **unnamed}
    # Named by the user, in either way, the name is theirs.
    assert experiment(*table("c.csv", "y"), "experiment.name=Churn")["name"] == "Churn"
    tutorial = experiment(*table("c.csv", "y"), "experiment=apple_models")
    assert tutorial["name"] == "Apple_Models"
    assert tutorial["tags"]["project_name"] == "grocery-forecasting"
    assert experiment()["name"] == "Apple_Models"


def test_a_dataset_file_of_ones_own_names_its_experiment_too(tmp_path):
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / "churn.yaml").write_text(
        "defaults: [table, _self_]\npath: data/customers.csv\ntarget: churned\n"
    )
    shown = sweeplab("--config-dir", "conf", "dataset=churn", "--cfg", "job", "--resolve",
                     cwd=tmp_path)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "experiment:\n  name: customers\n" in shown.stdout


@pytest.mark.fresh_store
def test_a_sweep_over_the_data_that_names_its_experiment_asks_for_a_name(tmp_path):
    over = ["-m", "dataset=sklearn", "dataset.name=iris,wine", "model=logistic_regression"]
    done = sweeplab(*over, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "sweeplab: error: dataset.name='iris,wine' is not allowed: varies the data that names "
        "the experiment, and a sweep's runs share one: name it, e.g. "
        "experiment.name=my_comparison\n"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    named = sweeplab(*over, "experiment.name=both", cwd=tmp_path)
    assert named.returncode == 0, named.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("both").experiment_id])
    assert len(runs) == 3  # the parent and its two jobs


@pytest.mark.fresh_store
def test_a_sweep_on_a_file_every_job_would_refuse_stops_before_its_parent(tmp_path):
    sales().to_csv(tmp_path / "sales.csv", index=False)
    done = sweeplab("-m", *table("sales.csv", "units"), "model=ridge", "model.alpha=1,10",
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    (error,) = [line for line in done.stderr.splitlines() if "error" in line]
    assert error.startswith("sweeplab: error: dataset.drop=[] is not allowed: column(s) ['date'] "
                            "of sales.csv hold dates")  # fmt: skip
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
