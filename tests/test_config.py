"""Composition: every shipped option composes and builds; bad values fail before any run."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

import tutorial_lab2
from sweeplab import config, models
from sweeplab.config import ConfigError, validate

CONF = Path(config.__file__).parents[2] / "conf"


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
    assert config.hyperparameters(cfg.model) == tutorial_lab2.PARAMS


@pytest.mark.parametrize("option", options("model"))
def test_every_model_option_composes_and_builds(compose_cfg, option):
    cfg = compose_cfg(f"model={option}")
    validate(cfg)
    estimator = models.build(cfg.model)
    hyperparameters = config.hyperparameters(cfg.model)
    assert type(estimator) is models.estimator_for(cfg.model).cls
    assert {k: estimator.get_params()[k] for k in hyperparameters} == hyperparameters


def test_every_model_schema_has_an_allowed_estimator():
    assert set(config.MODEL_SCHEMAS.values()) == set(models.ESTIMATORS)
    assert set(config.MODEL_SCHEMAS) <= set(options("model"))


@pytest.mark.parametrize("group", ["tracking", "experiment", "dataset"])
def test_every_other_option_composes_and_validates(compose_cfg, group):
    for option in options(group):
        validate(compose_cfg(f"{group}={option}"))


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
        ("model.max_depht=3", ConfigCompositionException, "Key 'max_depht' not in 'RandomForestConfig'"),
        ("model.n_estimators=abc", ConfigCompositionException, "Value 'abc' of type 'str' could not be converted to Integer"),
        ("dataset.n_rows=1.5", ConfigCompositionException, "could not be converted to Integer"),
        ("experiment.nmae=x", ConfigCompositionException, "Key 'nmae' not in 'ExperimentConfig'"),
        ("model.bootstrap=maybe", ConfigCompositionException, "Value 'maybe' is not a valid bool"),
        ("model=random_forst", MissingConfigException, "Could not find 'model/random_forst'"),
    ],
)  # fmt: skip
def test_compose_rejects_unknown_keys_and_wrong_types(compose_cfg, override, error, message):
    with pytest.raises(error) as excinfo:
        compose_cfg(override)
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
        (["model.n_estimators=0"], "model.n_estimators", "must be >= 1"),
        (["model.max_depth=0"], "model.max_depth", "must be >= 1 or null"),
        (["model.min_samples_split=1"], "model.min_samples_split", "must be >= 2"),
        (["model.min_samples_leaf=0"], "model.min_samples_leaf", "must be >= 1"),
        (["model.bootstrap=false", "model.oob_score=true"], "model.oob_score", "needs bootstrap=true"),
        (["model=gradient_boosting", "model.learning_rate=0"], "model.learning_rate", "must be > 0"),
        (["model=gradient_boosting", "model.subsample=1.5"], "model.subsample", "must be > 0 and <= 1"),
        (["model=ridge", "model.alpha=-1"], "model.alpha", "must be >= 0"),
        (["dataset.n_rows=1"], "dataset.n_rows", "must be >= 2"),
        (["dataset.test_size=0"], "dataset.test_size", "must be > 0 and < 1"),
        (["dataset.test_size=1.0"], "dataset.test_size", "must be > 0 and < 1"),
        (["dataset.end_date=2023-13-01"], "dataset.end_date", "must be an ISO date like 2023-11-01 (no time zone), or 'now'"),
        (["dataset.end_date='2023-11-01T00:00+05:00'"], "dataset.end_date", "no time zone"),
        (["dataset.seed=-1"], "dataset.seed", "must be from 0 to 4294967295"),
        (["dataset.split_seed=4294967296"], "dataset.split_seed", "must be from 0 to 4294967295"),
        (["model.random_state=-5"], "model.random_state", "must be from 0 to 4294967295 or null"),
        (["model=gradient_boosting", "model.random_state=-5"], "model.random_state", "or null"),
        (["dataset.end_date=0001-01-10", "dataset.n_rows=11"], "dataset.n_rows", "must be <= 10"),
        (["dataset.name=pears"], "dataset.name", "must be one of ['apple_sales']"),
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
        (
            "+model.max_depht=3",
            "model.max_depht",
            "unknown key in 'model': known keys are ['name', 'n_estimators'",
        ),
        ("+dataset.rows=10", "dataset.rows", "unknown key in 'dataset'"),
        (
            "+foo=1",
            "foo",
            "unknown key in the config: known keys are ['tracking', 'experiment', 'dataset', 'model', 'sweep', 'run_name']",
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


def test_model_option_without_a_schema_is_refused(tmp_path, compose_cfg):
    (tmp_path / "extra" / "model").mkdir(parents=True)
    (tmp_path / "extra" / "model" / "lasso.yaml").write_text("name: lasso\nalpha: 0.1\n")
    cfg = compose_cfg("model=lasso", f"hydra.searchpath=[file://{tmp_path}/extra]")
    with pytest.raises(ConfigError, match="must extend a model schema"):
        validate(cfg)
