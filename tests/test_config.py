"""Composition: every shipped option composes and builds; bad values fail before any run."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

import tutorial_lab2
from sweeplab.config.schema import ConfigError, validate
from sweeplab.model import estimators

CONF = Path(estimators.__file__).parents[1] / "conf"


def options(group: str) -> list[str]:
    """The option names a group ships, read from conf/<group>/*.yaml."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_default_config_is_the_tutorial(compose_cfg, isolated):
    cfg = compose_cfg()
    validate(cfg)
    assert cfg.tracking.uri == f"sqlite:///{isolated}/outputs/mlflow.db"
    assert cfg.tracking.artifact_location == f"{isolated}/outputs/artifacts"
    assert cfg.experiment.name == "Apple_Models"
    assert cfg.experiment.description == (
        "This is the grocery forecasting project. "
        "This experiment contains the produce models for apples."
    )
    assert dict(cfg.experiment.tags) == {
        "project_name": "grocery-forecasting",
        "store_dept": "produce",
        "team": "stores-ml",
        "project_quarter": "Q3-2023",
    }
    assert dict(cfg.dataset) == {
        "name": "apple_sales",
        "n_rows": 5000,
        "base_demand": 1000,
        "seed": 9999,
        "end_date": "2023-11-01",
        "test_size": 0.2,
        "split_seed": 42,
    }
    assert cfg.model._target_ == "sklearn.ensemble.RandomForestRegressor"
    assert estimators.hyperparameters(cfg.model) == tutorial_lab2.PARAMS


@pytest.mark.parametrize("group", ["tracking", "experiment", "dataset"])
def test_every_other_option_composes_and_validates(compose_cfg, group):
    for option in options(group):
        if option == "table":  # needs the user's file: see below
            continue
        validate(compose_cfg(f"{group}={option}"))


def test_the_table_option_asks_for_its_file_and_target(compose_cfg):
    with pytest.raises(ConfigError, match=r"dataset.path is not set: give it a value"):
        validate(compose_cfg("dataset=table"))
    with pytest.raises(ConfigError, match=r"dataset.target is not set: give it a value"):
        validate(compose_cfg("dataset=table", "dataset.path=sales.csv"))
    validate(compose_cfg("dataset=table", "dataset.path=sales.csv", "dataset.target=units"))


def test_server_option_is_the_tutorial_server(compose_cfg):
    cfg = compose_cfg("tracking=server")
    assert cfg.tracking.uri == "http://127.0.0.1:8080"
    assert cfg.tracking.artifact_location is None


@pytest.mark.parametrize("option", ["local", "server"])
def test_tracking_uri_env_var_beats_the_default_but_not_an_override(
    compose_cfg, monkeypatch, option
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert compose_cfg(f"tracking={option}").tracking.uri == "http://tracking.example:5000"
    explicit = compose_cfg(f"tracking={option}", "tracking.uri=sqlite:///elsewhere.db")
    assert explicit.tracking.uri == "sqlite:///elsewhere.db"


def test_user_config_dir_adds_options_checked_by_the_same_schema(tmp_path, compose_cfg):
    mine = tmp_path / "mine" / "experiment"
    mine.mkdir(parents=True)
    (mine / "dairy_models.yaml").write_text(
        "name: Dairy_Models\ntags: {project_name: grocery-forecasting, store_dept: dairy}\n"
    )
    (mine / "typo.yaml").write_text("nme: Oops\n")
    searchpath = f"hydra.searchpath=[file://{tmp_path}/mine]"
    cfg = compose_cfg("experiment=dairy_models", searchpath)
    validate(cfg)
    assert cfg.experiment.name == "Dairy_Models"
    assert cfg.experiment.tags.store_dept == "dairy"
    with pytest.raises(ConfigCompositionException) as excinfo:
        compose_cfg("experiment=typo", searchpath)
    assert "Key 'nme' not in 'ExperimentConfig'" in str(excinfo.value)


# --- compose-time errors: Hydra's own messages name the key ---------------------------


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        ("model.max_depht=3", ConfigCompositionException, "Key 'max_depht' is not in struct"),
        ("dataset.n_rows=1.5", ConfigCompositionException, "could not be converted to Integer"),
        ("experiment.nmae=x", ConfigCompositionException, "Key 'nmae' not in 'ExperimentConfig'"),
        ("dataset=table dataset.task=guess", ConfigCompositionException, "Invalid value 'guess'"),
        ("model=random_forst", MissingConfigException, "Could not find 'model/random_forst'"),
    ],
)  # fmt: skip
def test_compose_rejects_unknown_keys_and_wrong_types(compose_cfg, override, error, message):
    with pytest.raises(error) as excinfo:
        compose_cfg(*override.split())
    assert message in str(excinfo.value) or message in str(excinfo.value.__cause__)


def test_unknown_model_option_lists_the_available_ones(compose_cfg):
    with pytest.raises(MissingConfigException) as excinfo:
        compose_cfg("model=random_forst")
    assert excinfo.value.options is not None
    assert set(options("model")) <= set(excinfo.value.options)


# --- range checks after composition ----------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "allowed"),
    [
        (["dataset.n_rows=1"], "dataset.n_rows", "must be >= 2"),
        (["dataset.test_size=0"], "dataset.test_size", "must be > 0 and < 1"),
        (["dataset.test_size=1.0"], "dataset.test_size", "must be > 0 and < 1"),
        (["dataset.end_date=2023-13-01"], "dataset.end_date", "must be an ISO date like 2023-11-01 (no time zone), or 'now'"),
        (["dataset.end_date='2023-11-01T00:00+05:00'"], "dataset.end_date", "no time zone"),
        (["dataset.seed=-1"], "dataset.seed", "must be from 0 to 4294967295"),
        (["dataset.split_seed=4294967296"], "dataset.split_seed", "must be from 0 to 4294967295"),
        (["dataset.end_date=0001-01-10", "dataset.n_rows=11"], "dataset.n_rows", "must be <= 10"),
        (["dataset.name=pears"], "dataset.name", "must be one of ['apple_sales']"),
        (["dataset=sklearn", "dataset.name=mnist"], "dataset.name", "must be one of ['breast_cancer', 'diabetes', 'digits', 'iris', 'wine']"),
        (["dataset=sklearn", "dataset.test_size=0"], "dataset.test_size", "must be > 0 and < 1"),
        (["dataset=table", "dataset.path=' '", "dataset.target=y"], "dataset.path", "must not be empty"),
        (["experiment.name=''"], "experiment.name", "must not be empty"),
        (["tracking.uri=' '"], "tracking.uri", "must be a database URI like sqlite:///"),
        (["tracking.uri=mlruns"], "tracking.uri", "or a server URL like http://127.0.0.1:8080"),
        (["tracking.uri=file:///tmp/mlruns"], "tracking.uri", "must be a database URI"),
        (["tracking.connect_timeout=0"], "tracking.connect_timeout", "must be > 0 and <= 600"),
    ],
)  # fmt: skip
def test_range_checks_name_key_value_and_rule(compose_cfg, overrides, key, allowed):
    cfg = compose_cfg(*overrides)
    with pytest.raises(ConfigError) as excinfo:
        validate(cfg)
    assert excinfo.value.key == key
    assert str(excinfo.value).startswith(f"{key}=")
    assert allowed in str(excinfo.value)


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("+dataset.rows=10", "dataset.rows", "unknown key in 'dataset'"),
        (
            "+foo=1",
            "foo",
            "unknown key in the config: known keys are ['tracking', 'experiment', 'dataset', 'model', 'split', 'sweep', 'run_name']",
        ),
    ],
)
def test_keys_appended_with_plus_are_refused_too(compose_cfg, override, key, allowed):
    with pytest.raises(ConfigError) as excinfo:
        validate(compose_cfg(override))
    assert excinfo.value.key == key
    assert allowed in str(excinfo.value)


def test_error_messages_never_show_a_password(compose_cfg):
    cfg = compose_cfg("tracking.uri=ftp://bob:s3cr@t@db.example/x")
    with pytest.raises(ConfigError) as excinfo:
        validate(cfg)
    assert "s3cr" not in str(excinfo.value)
    assert "ftp://***@db.example/x" in str(excinfo.value)


@pytest.mark.parametrize(
    "uri",
    [
        "databricks",
        "databricks://profile",
        "postgresql+psycopg://u@db/mlflow",
        "https://mlflow.example",
    ],
)
def test_other_real_stores_are_accepted(compose_cfg, uri):
    validate(compose_cfg(f"tracking.uri='{uri}'"))


def test_model_option_without_a_target_is_refused(tmp_path, compose_cfg):
    (tmp_path / "extra" / "model").mkdir(parents=True)
    (tmp_path / "extra" / "model" / "lasso.yaml").write_text("name: lasso\nalpha: 0.1\n")
    cfg = compose_cfg("model=lasso", f"hydra.searchpath=[file://{tmp_path}/extra]")
    with pytest.raises(
        ConfigError, match=r"a model option needs `_target_: package.EstimatorClass`"
    ):
        validate(cfg)


def test_dataset_option_without_a_source_schema_is_refused(tmp_path, compose_cfg):
    (tmp_path / "extra" / "dataset").mkdir(parents=True)
    (tmp_path / "extra" / "dataset" / "mine.yaml").write_text("path: sales.csv\n")
    cfg = compose_cfg("dataset=mine", f"hydra.searchpath=[file://{tmp_path}/extra]")
    with pytest.raises(
        ConfigError,
        match=r"must extend a source's schema: .* \['apple_sales', 'sklearn', 'table'\]",
    ):
        validate(cfg)


def test_a_dataset_of_ones_own_builds_on_the_table_source(tmp_path, compose_cfg):
    (tmp_path / "extra" / "dataset").mkdir(parents=True)
    (tmp_path / "extra" / "dataset" / "sales.yaml").write_text(
        "defaults:\n  - table\n  - _self_\npath: data/sales.csv\ntarget: units\ndrop: [date]\n"
    )
    cfg = compose_cfg("dataset=sales", f"hydra.searchpath=[file://{tmp_path}/extra]")
    validate(cfg)
    assert cfg.dataset.task.value == "auto"
    assert list(cfg.dataset.drop) == ["date"]
    assert cfg.dataset.test_size == 0.2
