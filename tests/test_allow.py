"""Configs are data: no config file makes sweeplab import or call code outside the allow-list."""

import importlib.util
import sqlite3
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from conftest import sweeplab, sweeplab_process
from sweeplab.run import plan
from sweeplab.run.runner import execute
from sweeplab.util import allow
from sweeplab.util.allow import TargetRefused
from sweeplab.util.errors import UserError

# A callback that copies a file: Hydra's own blocklist lets it through.
COPYING_CALLBACK = """# @package _global_
hydra:
  callbacks:
    copy:
      _target_: shutil.copyfile
      src: {src}
      dst: {dst}
"""

# An estimator of the user's own package, for SWEEPLAB_ALLOW_TARGETS.
USER_ESTIMATOR = '''
from sklearn.linear_model import Ridge


class ShrunkRidge(Ridge):
    """Ridge with a stronger default penalty."""

    def __init__(self, alpha=10.0, fit_intercept=True):
        super().__init__(alpha=alpha, fit_intercept=fit_intercept)
'''


@pytest.mark.fresh_store
def test_a_hydra_callback_from_a_config_dir_is_refused_before_hydra_calls_it(tmp_path):
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("s3cret\n")
    (tmp_path / "mine" / "experiment" / "grab.yaml").write_text(
        COPYING_CALLBACK.format(src=tmp_path / "secret.txt", dst=tmp_path / "copied.txt")
    )
    done = sweeplab("--config-dir", str(tmp_path / "mine"), "experiment=grab", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "sweeplab: error: hydra.callbacks.copy._target_='shutil.copyfile' is not allowed: Hydra "
        "may instantiate only sweeplab's and the official launcher and sweeper plugins; "
        "if you trust that code, allow it from the environment: SWEEPLAB_ALLOW_TARGETS=shutil "
        "(module prefixes, comma-separated)\n"
    )
    assert not (tmp_path / "copied.txt").exists()
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    # The same in a sweep.
    swept = sweeplab("-m", "--config-dir", str(tmp_path / "mine"), "experiment=grab",
                     "model.max_depth=3,4", cwd=tmp_path)  # fmt: skip
    assert swept.returncode == 2
    assert not (tmp_path / "copied.txt").exists()


def test_a_model_target_is_refused_before_its_module_is_imported(
    compose_cfg, isolated, monkeypatch
):
    # Importing this module would leave a file behind.
    (isolated / "sideeffect.py").write_text(
        "from pathlib import Path\nPath('imported').touch()\nclass Model: pass\n"
    )
    monkeypatch.syspath_prepend(str(isolated))
    with pytest.raises(TargetRefused, match=r"model._target_='sideeffect.Model' is not allowed"):
        plan.make(compose_cfg("model._target_=sideeffect.Model"))
    assert not (isolated / "imported").exists()
    assert "sideeffect" not in sys.modules


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model._target_=os.system", "model._target_='os.system' is not allowed: a model must be an estimator class from sklearn, lightgbm, xgboost, catboost; if you trust that code"),
        ("model._target_=sklearn.datasets.dump_svmlight_file", "model._target_='sklearn.datasets.dump_svmlight_file' is not allowed: a model must be a scikit-learn-style estimator class (with fit, predict and get_params)"),
        ("model._target_=sklearn.preprocessing.StandardScaler", "a model must be a scikit-learn-style estimator class"),
        ("+experiment.tags._target_=os.system", "experiment.tags._target_='os.system' is not allowed"),
    ],
)  # fmt: skip
def test_only_estimator_classes_can_be_models(compose_cfg, override, message):
    with pytest.raises(TargetRefused) as refused:
        plan.make(compose_cfg(override))
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hydra": {"job_logging": {"handlers": {"h": {"class": "subprocess.Popen"}}}}}, "hydra.job_logging.handlers.h.class='subprocess.Popen' is not allowed"),
        ({"hydra": {"hydra_logging": {"filters": {"f": {"()": "os.system"}}}}}, "hydra.hydra_logging.filters.f.()='os.system' is not allowed"),
        ({"hydra": {"job_logging": {"handlers": {"h": {"stream": "ext://antigravity.x"}}}}}, "stream='ext://antigravity.x' is not allowed"),
        ({"hydra": {"searchpath": ["pkg://some_package.conf"]}}, "hydra.searchpath[0]='pkg://some_package.conf' is not allowed"),
        ({"hydra": {"launcher": {"_target_": "my.launcher.Launcher"}}}, "hydra.launcher._target_='my.launcher.Launcher' is not allowed"),
    ],
)  # fmt: skip
def test_hydras_other_routes_to_code_are_covered_too(config, message):
    with pytest.raises(TargetRefused) as refused:
        allow.check_config(OmegaConf.create(config))
    assert message in str(refused.value)


def test_hydras_own_defaults_and_the_shipped_configs_pass(compose_cfg):
    from hydra import compose, initialize_config_module

    launchers = ["basic", "joblib", "ray"]
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher"):  # sweeplab[slurm]
        launchers.append("slurm")
    for launcher in launchers:
        with initialize_config_module(config_module="sweeplab.conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"hydra/launcher={launcher}"],
                          return_hydra_config=True)  # fmt: skip
        allow.check_config(cfg)


def test_the_official_optuna_sweepers_sampler_is_allowed():
    sweeper = {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
               "sampler": {"_target_": "optuna.samplers.TPESampler", "seed": 1}}  # fmt: skip
    allow.check_config(OmegaConf.create({"hydra": {"sweeper": sweeper}}))


def test_the_environment_widens_the_list_by_module_prefix(monkeypatch):
    assert not allow.is_estimator_target("mypkg.models.ShrunkRidge")
    monkeypatch.setenv("SWEEPLAB_ALLOW_TARGETS", "otherpkg, mypkg.models")
    assert allow.is_estimator_target("mypkg.models.ShrunkRidge")
    assert allow.is_plugin_target("mypkg.models.Callback")
    # A prefix is a module path, not a string prefix.
    assert not allow.is_estimator_target("mypkg.modelsevil.Model")
    assert not allow.is_estimator_target("mypkg.ShrunkRidge")


@pytest.mark.fresh_store
def test_a_swept_target_is_checked_too(tmp_path):
    done = sweeplab("-m", "model._target_=sklearn.linear_model.Ridge,os.system", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("sweeplab: error: model._target_='os.system' is not allowed")
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_config_path_is_refused_because_it_would_bypass_the_checks(tmp_path):
    done = sweeplab("--config-path", str(tmp_path), "--config-name", "x", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("sweeplab: error: --config-path is not supported")


def test_a_missing_optional_library_says_which_extra_installs_it(compose_cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "catboost", None)  # as if not installed
    with pytest.raises(UserError, match=r"catboost is not installed"):
        plan.make(compose_cfg("model._target_=catboost.CatBoostRegressor"))


# ---------------------------------------------------------------- the user's own estimators


@pytest.fixture
def user_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """mypkg.models.ShrunkRidge on PYTHONPATH, and a config dir with model/shrunk.yaml."""
    package = tmp_path / "src" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(USER_ESTIMATOR)
    (tmp_path / "my-configs" / "model").mkdir(parents=True)
    (tmp_path / "my-configs" / "model" / "shrunk.yaml").write_text(
        "_target_: mypkg.models.ShrunkRidge\nname: shrunk\nalpha: 5.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    return tmp_path


def test_a_users_estimator_needs_the_environment_to_allow_it(
    compose_cfg, user_package, monkeypatch
):
    searchpath = f"hydra.searchpath=[file://{user_package}/my-configs]"
    with pytest.raises(TargetRefused, match=r"SWEEPLAB_ALLOW_TARGETS=mypkg\.models"):
        plan.make(compose_cfg("model=shrunk", searchpath))
    monkeypatch.setenv("SWEEPLAB_ALLOW_TARGETS", "mypkg")
    result = execute(compose_cfg("model=shrunk", searchpath))
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.params["alpha"] == "5.0"
    assert run.data.tags["sweeplab.estimator"] == "mypkg.models.ShrunkRidge"


@pytest.mark.fresh_store
@pytest.mark.process
@pytest.mark.slow
def test_a_joblib_sweep_of_a_users_estimator_on_a_fresh_store_loses_nothing(user_package):
    """Two workers open a store nobody made yet, import the user's package from PYTHONPATH,
    and find it allowed by the environment the sweep hands them."""
    env = {"PYTHONPATH": str(user_package / "src"), "SWEEPLAB_ALLOW_TARGETS": "mypkg.models"}
    args = ("-m", "--config-dir", str(user_package / "my-configs"), "model=shrunk",
            "model.alpha=1,2,3,4", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")  # fmt: skip
    done = sweeplab_process(*args, cwd=user_package, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "4 finished, 0 failed" in done.stdout
    # Jobs finish out of order in two workers: the count still goes 1..4, one line each.
    progress = [line for line in done.stdout.splitlines() if " -> " in line]
    assert [line.split()[0] for line in progress] == [f"[{k}/4]" for k in range(1, 5)]
    assert sorted(line.split()[1] for line in progress) == [f"#{j}" for j in range(4)]
    # The workers hand their outcomes back to the sweep's process, which counts: no files.
    # (Until 2026-12: an outcome file per job, and a counter file under a lock.)
    left = [p for p in user_package.rglob("*") if p.name.startswith((".sweeplab", "sweeplab_job"))]
    assert left == []
    db = user_package / "outputs" / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("Apple_Models")
    children = client.search_runs([exp.experiment_id], "tags.`sweeplab.sweep.job` != ''")
    assert sorted(c.data.params["alpha"] for c in children) == ["1", "2", "3", "4"]
    assert {c.info.status for c in children} == {"FINISHED"}
    assert all(c.outputs.model_outputs for c in children)
    assert {c.data.tags["sweeplab.estimator"] for c in children} == {"mypkg.models.ShrunkRidge"}
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    refused = sweeplab(*args, cwd=user_package)
    assert refused.returncode == 2
    assert "model._target_='mypkg.models.ShrunkRidge' is not allowed" in refused.stderr
