"""The split group: k folds, time order and groups score as scikit-learn does, and log so.

Scores are checked against scikit-learn's own cross_validate on the same splitter, not
against numbers written here; runs are read back from a real sqlite store.
"""

import re
import threading
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedKFold,
    TimeSeriesSplit,
    cross_validate,
)

from conftest import sweeplab, sweeplab_tools
from sweeplab.config.schema import ConfigError
from sweeplab.model import train
from sweeplab.run import plan
from sweeplab.tracking.tags import DATA_DIGEST_TAG, FINGERPRINT_TAG

SMALL = ("model=ridge", "dataset.n_rows=400")
REGRESSION = {
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "mse": "neg_mean_squared_error",
    "r2": "r2",
}


def assert_matches_cross_validate(planned, splitter, scoring, groups=None):
    """The run's per-fold, mean and std scores equal cross_validate's to 1e-9."""
    trained = train.train(planned.estimator, planned.split, planned.task)
    X, y = planned.split.X, planned.split.y
    theirs = cross_validate(
        clone(planned.estimator), X, y, cv=splitter, scoring=scoring, groups=groups
    )
    for ours, name in scoring.items():
        sign = -1 if name.startswith("neg_") else 1
        expected = sign * theirs[f"test_{ours}"]
        np.testing.assert_allclose([f[ours] for f in trained.folds], expected, rtol=0, atol=1e-9)
        assert trained.metrics[ours] == pytest.approx(expected.mean(), abs=1e-9)
        assert trained.metrics[f"{ours}_std"] == pytest.approx(expected.std(), abs=1e-9)
    return trained


def test_kfold_scores_equal_cross_validate_and_the_model_is_refit_on_every_row(compose_cfg):
    cfg = compose_cfg(*SMALL, "split=kfold", "split.k=4", "split.seed=7")
    planned = plan.make(cfg)
    splitter = KFold(n_splits=4, shuffle=True, random_state=7)
    trained = assert_matches_cross_validate(planned, splitter, REGRESSION)
    assert len(trained.folds) == 4
    refit = clone(planned.estimator).fit(planned.split.X, planned.split.y)
    np.testing.assert_array_equal(trained.estimator.coef_, refit.coef_)
    assert len(planned.split.X) == 400  # no test part: every row is in a fold


def test_time_folds_equal_time_series_split_on_rows_put_in_date_order(compose_cfg):
    cfg = compose_cfg(*SMALL, "split=time", "split.k=3", "split.gap=5")
    planned = plan.make(cfg)
    assert planned.params["split.order"] == "date"  # logged as the column it is
    dates = planned.data.frame.loc[planned.split.X.index, "date"]
    assert dates.is_monotonic_increasing
    assert_matches_cross_validate(planned, TimeSeriesSplit(n_splits=3, gap=5), REGRESSION)
    for train_rows, val_rows in planned.split.folds:
        assert dates.iloc[train_rows].max() < dates.iloc[val_rows].min()


def test_stratified_folds_for_classification_equal_cross_validate(compose_cfg):
    cfg = compose_cfg(
        "dataset=sklearn", "dataset.name=iris", "model=logistic_regression", "split=kfold",
        "split.k=3",
    )  # fmt: skip
    planned = plan.make(cfg)
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=42)
    scoring = {"accuracy": "accuracy", "f1_macro": "f1_macro", "log_loss": "neg_log_loss",
               "roc_auc": "roc_auc_ovr"}  # fmt: skip
    assert_matches_cross_validate(planned, splitter, scoring)


@pytest.fixture
def shops(tmp_path):
    """A table of 60 rows from 12 shops (a group column that is not a feature) and a date."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "shop": [f"s{i % 12}" for i in range(60)],
            "day": pd.date_range("2024-01-01", periods=60, freq="D").astype(str)[::-1],
            "price": rng.normal(size=60),
            "sales": rng.normal(size=60),
        }
    )
    path = tmp_path / "shops.csv"
    frame.to_csv(path, index=False)
    return ("dataset=table", f"dataset.path={path}", "dataset.target=sales",
            "dataset.drop=[shop,day]", "model=ridge")  # fmt: skip


def test_group_folds_never_split_a_group_and_equal_group_kfold(compose_cfg, shops):
    planned = plan.make(compose_cfg(*shops, "split=group", "split.column=shop", "split.k=4"))
    groups = planned.data.frame["shop"].to_numpy()
    assert_matches_cross_validate(
        planned, GroupKFold(n_splits=4), {"rmse": "neg_root_mean_squared_error"}, groups=groups
    )
    for train_rows, val_rows in planned.split.folds:
        assert not set(groups[train_rows]) & set(groups[val_rows])


def test_the_test_part_is_kept_out_of_every_fold(compose_cfg, shops):
    grouped = plan.make(compose_cfg(*shops, "split=group", "split.column=shop", "split.k=3",
                                    "split.test_share=0.25")).split  # fmt: skip
    frame = pd.read_csv(shops[1].removeprefix("dataset.path="))
    assert not set(frame.loc[grouped.X.index, "shop"]) & set(
        frame.loc[grouped.X_test.index, "shop"]
    )

    timed = plan.make(compose_cfg(*shops, "split=time", "split.order=day", "split.k=3",
                                  "split.test_share=0.2")).split  # fmt: skip
    days = pd.to_datetime(frame["day"])
    assert len(timed.X_test) == 12
    assert days[timed.X.index].max() < days[timed.X_test.index].min()  # the test part is the future

    shuffled = plan.make(compose_cfg(*SMALL, "split=kfold", "split.test_share=0.2")).split
    assert len(shuffled.X_test) == 80 and len(shuffled.X) == 320
    assert not set(shuffled.X.index) & set(shuffled.X_test.index)


ROWS = "dataset.n_rows=400"


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        (["dataset=sklearn", "model=logistic_regression", "split=time"], "split.order",
         "split.order='null' is not allowed: must name the column that holds the rows' times "
         "(dates, times or numbers) in iris; it has no order of its own"),
        ([ROWS, "split=time", "split.order=when"], "split.order", "its columns are ['date', "),
        (["dataset.n_rows=5", "split=time"], "split.k", "cannot make 5 time-ordered folds"),
        ([ROWS, "split=group"], "split.column", "split.column is not set: give it a value"),
        ([ROWS, "split=group", "split.column=nope"], "split.column", "columns are ["),
        ([ROWS, "split=group", "split.column=weekend"], "split.k", "must be <= the 2 groups"),
        ([ROWS, "split=kfold", "split.k=1"], "split.k", "must be >= 2"),
        ([ROWS, "split=kfold", "split.k=500"], "split.k", "must be <= the 400 rows"),
        ([ROWS, "split.test_share=1"], "split.test_share", "must be >= 0 and < 1"),
        (["dataset=sklearn", "model=logistic_regression", "split=kfold", "split.k=60"], "split.k",
         "must be <= 50: class"),
    ],
)  # fmt: skip
def test_a_split_that_cannot_apply_names_its_key(compose_cfg, overrides, key, allowed):
    with pytest.raises(ConfigError) as excinfo:
        model = [] if "dataset=sklearn" in overrides else ["model=ridge"]
        plan.make(compose_cfg(*model, *overrides))
    assert excinfo.value.key == key
    assert allowed in str(excinfo.value)


def test_a_split_that_cannot_apply_fails_before_any_run(isolated):
    done = sweeplab("model=ridge", "dataset.n_rows=400", "split=time", "split.order=when",
                    cwd=isolated)  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "split.order='when'" in line and "columns are [" in line
    client = MlflowClient(f"sqlite:///{isolated}/outputs/mlflow.db")
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_a_cross_validated_run_logs_mean_spread_folds_and_its_own_digest(isolated):
    done = sweeplab(*SMALL, "split=kfold", "split.k=3", "split.test_share=0.2", cwd=isolated)
    assert done.returncode == 0, done.stderr
    shown = re.search(r"rmse \d+\.?(\d*) ± \d+\.?(\d*) ", done.stdout)
    assert shown and len(shown.group(1)) == len(shown.group(2))  # the spread, as many decimals
    assert (
        "test       split.test_share=0.2 of the rows are kept aside and not scored" in done.stdout
    )
    holdout = sweeplab(*SMALL, cwd=isolated)
    assert holdout.returncode == 0, holdout.stderr
    client = MlflowClient(f"sqlite:///{isolated}/outputs/mlflow.db")
    cv_run, plain = client.search_runs(
        [client.get_experiment_by_name("Apple_Models").experiment_id],
        order_by=["attributes.start_time ASC"],
    )
    folds = client.get_metric_history(cv_run.info.run_id, "rmse_fold")
    assert [m.step for m in sorted(folds, key=lambda m: m.step)] == [0, 1, 2]
    values = [m.value for m in sorted(folds, key=lambda m: m.step)]
    assert cv_run.data.metrics["rmse"] == pytest.approx(np.mean(values), abs=1e-9)
    assert cv_run.data.metrics["rmse_std"] == pytest.approx(np.std(values), abs=1e-9)
    assert "test_rmse" not in cv_run.data.metrics  # a lone run is not chosen: no test score
    assert "rmse_std" not in plain.data.metrics and "rmse_fold" not in plain.data.metrics
    params = cv_run.data.params
    assert (params["split.kind"], params["split.k"], params["split.test_share"]) == (
        "kfold",
        "3",
        "0.2",
    )
    assert plain.data.params["split.kind"] == "holdout"
    contexts = sorted(i.tags[0].value for i in cv_run.inputs.dataset_inputs)
    assert contexts == ["test", "training"]
    for tag in (DATA_DIGEST_TAG, FINGERPRINT_TAG):
        assert cv_run.data.tags[tag] != plain.data.tags[tag]  # never compared with the holdout


def test_the_corrected_t_test_is_the_paired_t_test_widened_by_the_overlap():
    from scipy import stats

    from sweeplab.compare import ties

    a, b = [120.1, 118.4, 125.0, 121.9, 119.3], [121.0, 118.9, 126.2, 121.5, 120.8]
    # With no overlap to correct for it is scipy's paired t-test.
    assert ties.p_value(a, b, 0.0) == pytest.approx(stats.ttest_rel(a, b).pvalue, abs=1e-12)
    # 5 folds: each validates on 1/4 as many rows as it trains on; t shrinks by sqrt(1/5 / 9/20).
    t = stats.ttest_rel(a, b).statistic * np.sqrt((1 / 5) / (1 / 5 + 1 / 4))
    assert ties.p_value(a, b, ties.validation_ratio("kfold", 5)) == pytest.approx(
        2 * stats.t.sf(abs(t), 4), abs=1e-12
    )
    assert ties.p_value(a, a, 0.25) == 1.0
    assert ties.p_value(a, [x + 1 for x in a], 0.25) == 0.0


def test_a_cross_validated_sweep_calls_ties_ties_and_scores_only_its_best_on_the_test_part(
    isolated,
):
    common = ("model=ridge", "dataset.n_rows=400", "split=kfold", "split.k=4",
              "split.test_share=0.2", "sweep.register=apples")  # fmt: skip
    done = sweeplab("-m", *common, "model.alpha=1,1.01,100000", cwd=isolated)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    header, *rows = out[out.index("best rank") : out.index("tied     ")].strip().splitlines()
    # Mean ± spread; the near-twin of the best is tied (=), the heavily damped model is not.
    assert "p_vs_best" in header and all("±" in row for row in rows)
    assert [row.split()[:4] for row in rows] == [
        ["*", "1", "0", "1"],
        ["=", "2", "1", "1.01"],
        ["3", "2", "100000", "139.035"],
    ]
    assert "tied     1 other run (=) cannot be told from the best" in out
    assert "test     job #" in out and "test_rmse" in out
    client = MlflowClient(f"sqlite:///{isolated}/outputs/mlflow.db")
    experiment = client.get_experiment_by_name("Apple_Models").experiment_id
    runs = client.search_runs([experiment])
    parent = next(r for r in runs if r.data.tags.get("sweeplab.sweep") == "true")
    best_id = parent.data.tags["best_run_id"]
    with_test = {r.info.run_id for r in runs if "test_rmse" in r.data.metrics}
    assert with_test == {best_id, parent.info.run_id}  # the chosen job only, never the others
    assert "champion: apples v1" in out
    assert "alpha=1.01 -> rmse 54." in out and " ± " in out  # each job's line has its spread

    # Across experiments, runs on the same folds are tested the same way.
    listed = sweeplab_tools("compare", "--experiments", "name = 'Apple_Models'", "--out",
                            str(isolated / "cmp"), cwd=isolated)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "tied: 1 other run (=) cannot be told from the best" in listed.stdout

    # The same sweep again: its best wins by a hair on the same folds, not beyond noise.
    again = sweeplab("-m", *common, "model.alpha=0.999,100000", cwd=isolated)
    assert again.returncode == 0, again.stderr
    assert "champion stays apples v1" in again.stdout
    assert "within noise: on the same 4 folds the corrected paired t-test gives p=" in again.stdout


class _Recording(BaseEstimator, RegressorMixin):
    """A mean predictor that notes which thread each fit ran on."""

    seen: ClassVar[list[str]] = []

    def fit(self, X, y):
        self.seen.append(threading.current_thread().name)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def test_folds_fit_on_idle_cores_and_score_as_folds_in_turn(compose_cfg):
    planned = plan.make(compose_cfg(*SMALL, "split=kfold", "split.k=4"))
    forest = plan.make(compose_cfg("dataset.n_rows=400", "model.n_estimators=20", "split=kfold",
                                   "split.k=4")).estimator  # fmt: skip
    one = train.train(clone(forest), planned.split, planned.task, cores=1)
    two = train.train(clone(forest), planned.split, planned.task, cores=2)
    assert one.folds == two.folds and one.metrics == two.metrics
    np.testing.assert_array_equal(one.predictions, two.predictions)  # the same refit model

    _Recording.seen.clear()
    train.train(_Recording(), planned.split, planned.task, cores=2)
    assert len(_Recording.seen) == 5  # 4 folds and the refit, all on the fold threads
    assert all(name.startswith("sweeplab-fold") for name in _Recording.seen)
    _Recording.seen.clear()
    train.train(_Recording(), planned.split, planned.task, cores=1)
    assert _Recording.seen == ["MainThread"] * 5
    # Estimators that spread a fit over the cores themselves keep their folds in turn.
    hist = plan.make(compose_cfg("dataset.n_rows=400", "model=hist_gradient_boosting")).estimator
    assert train.fold_workers(hist, 4, 8) == 1
    assert train.fold_workers(RandomForestRegressor(n_jobs=-1), 4, 8) == 1
    assert train.fold_workers(RandomForestRegressor(), 4, 8) == 4


def test_a_sweep_whose_split_cannot_apply_fails_before_its_parent_run(isolated):
    done = sweeplab("-m", *SMALL, "split=group", "split.column=weekend", "model.alpha=1,2",
                    cwd=isolated)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "split.k=5 is not allowed: must be <= the 2 groups of column 'weekend'" in line
    client = MlflowClient(f"sqlite:///{isolated}/outputs/mlflow.db")
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []
