"""Model configs: every shipped option builds, any allowed `_target_` works, logging fits the library."""

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import need_extra, sweeplab
from sweeplab.data.apple_sales import apple_sales
from sweeplab.model import estimators
from sweeplab.model.tasks import TASKS
from sweeplab.run import plan
from sweeplab.run.runner import execute

CONF = Path(estimators.__file__).parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def declared_tasks(cfg) -> list[str]:
    target = cfg.model._target_
    if isinstance(target, str):
        return [
            "classification" if "Classifier" in target or "Logistic" in target else "regression"
        ]
    return list(target)


@pytest.mark.parametrize("option", MODELS)
def test_every_shipped_model_builds_for_each_task_it_names(compose_cfg, option):
    if option in ("lightgbm", "xgboost"):
        need_extra(option)
    cfg = compose_cfg(f"model={option}")
    for task in declared_tasks(cfg):
        estimator, target = estimators.build(cfg.model, TASKS[task], [])
        assert f"{type(estimator).__module__.split('.')[0]}" == target.split(".")[0]
        hyperparameters = estimators.hyperparameters(cfg.model)
        assert {k: estimator.get_params()[k] for k in hyperparameters} == hyperparameters


def test_random_forest_keeps_the_tutorials_seven_parameters(compose_cfg):
    import tutorial_lab2

    assert estimators.hyperparameters(compose_cfg().model) == tutorial_lab2.PARAMS


@pytest.mark.parametrize(
    ("dataset", "model"),
    [
        ("dataset=sklearn dataset.name=diabetes", "model=hist_gradient_boosting"),
        ("dataset=sklearn dataset.name=iris", "model=hist_gradient_boosting"),
        ("dataset=sklearn dataset.name=breast_cancer", "model=lightgbm"),
        ("dataset=sklearn dataset.name=wine", "model=xgboost"),
    ],
)
def test_a_model_for_both_tasks_picks_its_class_by_the_datasets_task(compose_cfg, dataset, model):
    if model != "model=hist_gradient_boosting":
        need_extra(model.removeprefix("model="))
    smaller = "model.max_iter=10" if "hist" in model else "model.n_estimators=10"
    planned = plan.make(compose_cfg(*dataset.split(), model, smaller))
    expected = "Regressor" if "diabetes" in dataset else "Classifier"
    assert planned.target.endswith(expected)


def test_nested_estimators_are_built_and_checked_like_the_model(compose_cfg):
    cfg = compose_cfg(
        "model._target_=sklearn.ensemble.BaggingRegressor",
        "~model.n_estimators", "~model.max_depth", "~model.min_samples_split",
        "~model.min_samples_leaf", "~model.bootstrap", "~model.oob_score",
        "+model.n_estimators=3", "+model.estimator={_target_: sklearn.linear_model.Ridge, alpha: 2}",
    )  # fmt: skip
    planned = plan.make(cfg)
    assert type(planned.estimator.estimator).__name__ == "Ridge"
    assert planned.estimator.estimator.alpha == 2
    bad = compose_cfg("+model.estimator={_target_: os.system}")
    with pytest.raises(Exception, match=r"model.estimator._target_='os.system' is not allowed"):
        plan.make(bad)


def lgbm_configs(root: Path) -> Path:
    """A user's config dir with the README's LightGBM model."""
    folder = root / "my-configs" / "model"
    folder.mkdir(parents=True)
    # One thread (n_jobs): beside the suite's other worker, LightGBM's OpenMP threads spin
    # waiting for the busy core (with one core kept busy: 25.6 s against 31.2 s).
    (folder / "lgbm.yaml").write_text(
        "_target_: lightgbm.LGBMRegressor\nn_estimators: 300\nlearning_rate: 0.05\nverbose: -1\n"
        "n_jobs: 1\n"
    )
    return root / "my-configs"


def test_a_users_lightgbm_config_logs_through_mlflows_lightgbm_flavor(tmp_path):
    need_extra("lightgbm")
    configs = lgbm_configs(tmp_path)
    done = sweeplab("--config-dir", str(configs), "model=lgbm", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr.lower()
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("Apple_Models").experiment_id])
    assert run.info.run_name == "LGBMRegressor"  # no `name`: the class names it
    assert run.data.params["n_estimators"] == "300"
    assert run.data.params["learning_rate"] == "0.05"
    # The logged model is named after its kind and what the run changed.
    (model,) = client.search_logged_models([run.info.experiment_id])
    assert model.name == "LGBMRegressor"
    model_uri = f"runs:/{run.info.run_id}/{model.name}"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    assert "lightgbm:" in (local / "MLmodel").read_text()
    requirements = (local / "requirements.txt").read_text().split()
    assert f"lightgbm=={__import__('lightgbm').__version__}" in requirements

    # MLflow's pyfunc loads it (LightGBM's own file, no pickle) and predicts on raw rows.
    rows = apple_sales(n_rows=5000, end_date="2023-11-01").drop(columns=["date", "demand"])
    assert float(mlflow.pyfunc.load_model(model_uri).predict(rows.tail(1))[0]) > 0

    swept = sweeplab("-m", "--config-dir", str(configs), "model=lgbm", "+model.num_leaves=7,15",
                     cwd=tmp_path, timeout=300)  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    assert "2 finished, 0 failed" in swept.stdout


def test_a_lightgbm_model_in_a_pipeline_names_lightgbm_in_its_requirements(compose_cfg, isolated):
    need_extra("lightgbm")
    import pandas as pd

    rng = np.random.default_rng(1)
    pd.DataFrame(
        {"shop": rng.choice(["a", "b"], 200), "x": rng.normal(size=200), "y": rng.normal(size=200)}
    ).to_csv(isolated / "shops.csv", index=False)
    result = execute(compose_cfg("dataset=table", "dataset.path=shops.csv", "dataset.target=y",
                                 "model=lightgbm", "model.n_estimators=5"))  # fmt: skip
    local = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    assert "serialization_format: skops" in (local / "MLmodel").read_text()
    requirements = (local / "requirements.txt").read_text().split()
    names = sorted(r.split("==")[0] for r in requirements)
    assert names == ["lightgbm", "mlflow", "scikit-learn", "skops"]
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    rows = pd.read_csv(isolated / "shops.csv").drop(columns="y")
    assert loaded.predict(rows).shape == (200,)
