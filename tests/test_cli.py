"""The console scripts as users call them: exit codes, what they print, what they leave behind."""

import importlib.util
import signal
import subprocess
import sys

import pytest
from mlflow import MlflowClient

import sweeplab as sweeplab_package
from blocking import waiting_model
from conftest import (
    BIN,
    start_sweeplab,
    sweeplab,
    sweeplab_process,
    sweeplab_tools,
    wait_for_running,
)


@pytest.mark.fresh_store
@pytest.mark.process
def test_default_run_prints_where_to_look_and_stores_under_launch_dir(tmp_path):
    done = sweeplab_process(cwd=tmp_path)  # the console script itself, end to end
    assert done.returncode == 0, done.stderr
    db = tmp_path / "outputs" / "mlflow.db"
    assert db.is_file()
    out = done.stdout
    assert "experiment 'Apple_Models'" in out
    for metric in ("mae", "mse", "rmse", "r2"):
        assert f"{metric} " in out
    (run,) = MlflowClient(f"sqlite:///{db}").search_runs(
        [MlflowClient(f"sqlite:///{db}").get_experiment_by_name("Apple_Models").experiment_id]
    )
    # The logged model, by a URI that predict takes.
    assert (
        f"model      runs:/{run.info.run_id}/random_forest  ({BIN / 'sweeplab-tools'} predict "
        in out
    )
    # The light server on this folder's store, and the run's page in the model-training view.
    assert out.splitlines()[-1] == (
        f"view       `{BIN / 'sweeplab-tools'} server` from this folder, then "
        f"http://127.0.0.1:8080/#/experiments/1/runs/{run.info.run_id}"
        "?workflowType=machine_learning"
    )
    assert run.info.status == "FINISHED"


@pytest.mark.process
def test_python_dash_p_m_with_a_user_config_dir_beside_a_folder_named_sweeplab(tmp_path):
    mine = tmp_path / "team-configs" / "experiment"
    mine.mkdir(parents=True)
    (tmp_path / "team-configs" / "model").mkdir()
    # A variant that starts from the shipped random forest, as the README shows.
    (tmp_path / "team-configs" / "model" / "small_forest.yaml").write_text(
        "defaults:\n  - random_forest\n  - _self_\nname: small_forest\nn_estimators: 5\n"
    )
    (mine / "dairy_models.yaml").write_text(
        "name: Dairy_Models\n"
        "description: Produce models for dairy.\n"
        "tags: {project_name: grocery-forecasting, store_dept: dairy}\n"
    )
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    # A checkout named sweeplab beside one's projects: nothing sweeplab starts (its tracking
    # process, MLflow's server) may import it instead of the installed package.
    (elsewhere / "sweeplab").mkdir()
    (elsewhere / "sweeplab" / "__init__.py").write_text("raise ImportError('the wrong sweeplab')")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "sweeplab", "--config-dir", str(tmp_path / "team-configs"),
         "experiment=dairy_models", "model=small_forest"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrong sweeplab" not in done.stderr and "warning" not in done.stderr
    client = MlflowClient(f"sqlite:///{elsewhere}/outputs/mlflow.db")
    experiment = client.get_experiment_by_name("Dairy_Models")
    assert experiment.tags["store_dept"] == "dairy"
    assert experiment.tags["mlflow.note.content"] == "Produce models for dairy."
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["model"] == "small_forest"
    assert run.data.params["n_estimators"] == "5"
    assert run.data.params["max_depth"] == "6"  # inherited from random_forest.yaml


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize(
    ("sig", "code", "why"),
    # SIGTERM to a single run: test_faults' interrupt while the model is logged.
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)")],
    ids=["SIGINT"],
)
def test_a_signal_mid_run_ends_the_run_killed(tmp_path, sig, code, why):
    # The fit waits for a file the test never makes before the signal.
    args, env, release = waiting_model(tmp_path)
    process = start_sweeplab(*args, cwd=tmp_path, env=env)
    db = tmp_path / "outputs" / "mlflow.db"
    wait_for_running(db, 1)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    release.touch()
    assert process.returncode == code
    assert "Traceback" not in stderr
    (run,) = MlflowClient(f"sqlite:///{db}").search_runs(["1"])
    assert run.info.status == "KILLED"
    assert run.data.tags["sweeplab.error"] == why


@pytest.mark.fresh_store
def test_bad_value_is_one_line_no_traceback_and_nothing_logged(tmp_path):
    done = sweeplab("model.n_estimators=0", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sweeplab: error: model.n_estimators=0 is not allowed: must be an int in the range [1, inf)"
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


RF_KEYS = (
    "['bootstrap', 'ccp_alpha', 'criterion', 'max_depth', 'max_features', 'max_leaf_nodes', "
    "'max_samples', 'min_impurity_decrease', 'min_samples_leaf', 'min_samples_split', "
    "'min_weight_fraction_leaf', 'monotonic_cst', 'n_estimators', 'n_jobs', 'oob_score', "
    "'random_state', 'verbose', 'warm_start']"
)
UNKNOWN = "unknown hyperparameter of sklearn.ensemble.RandomForestRegressor: its parameters are"


@pytest.mark.fresh_store
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.n_estimators=abc"],
         "model.n_estimators='abc' is not allowed: must be an int in the range [1, inf)"),
        (["model.max_depht=3"],
         f"model.max_depht='3' is not allowed: {UNKNOWN} {RF_KEYS}"),
        (["+model.max_depht=3"],
         f"model.max_depht=3 is not allowed: {UNKNOWN} {RF_KEYS}"),
        (["model.min_samples_leaf=0"],
         "model.min_samples_leaf=0 is not allowed: must be an int in the range [1, inf) "
         "or a float in the range (0.0, 1.0)"),
        (["model=random_forst"],
         "model='random_forst' is not allowed: "
         "must be one of ['gradient_boosting', 'hist_gradient_boosting', 'lightgbm', "
         "'logistic_regression', 'random_forest', 'random_forest_classifier', 'ridge', 'xgboost']"),
        (["dataset.end_date=2023-02-30"],
         "dataset.end_date='2023-02-30' is not allowed: "
         "must be an ISO date like 2023-11-01 (no time zone), or 'now'"),
        (["dataset.n_rows=800000"],
         "dataset.n_rows=800000 is not allowed: must be <= 738825: "
         "more days would reach before year 1 from dataset.end_date=2023-11-01"),
        (["experiment.name=''"], "experiment.name='' is not allowed: must not be empty"),
        (["dataset=table", "dataset.drop=date"],
         "dataset.drop='date' is not allowed: must be a list: dataset.drop=[a,b]"),
        (["--config-dir", "no/such/folder"],
         "--config-dir 'no/such/folder' is not a readable directory: "
         "give the folder that holds your experiment/, model/, ... config files"),
        (["model.n_estimators=[1"],
         "cannot parse the override 'model.n_estimators=[1': no viable alternative at input '[1'"),
        (["-m", "--cfg", "hydra", "hydra/launcher=slurm"],
         "-m/--multirun cannot be combined with --cfg or --info: drop -m to print the config "
         "(--cfg hydra shows the launcher's settings)"),
    ],
    ids=["type", "typo", "plus-typo", "range", "option", "date", "calendar", "empty-name", "list",
         "config-dir", "grammar", "multirun-cfg"],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_key_and_creates_nothing(tmp_path, args, message):
    done = sweeplab(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"sweeplab: error: {message}\n"
    assert done.stdout == ""
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


@pytest.mark.fresh_store
@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_mistakes_in_a_users_own_config_files_are_one_line_naming_the_file(tmp_path, multirun):
    mine = tmp_path / "mine" / "experiment"
    mine.mkdir(parents=True)
    (mine / "unnamed.yaml").write_text("description: Produce models for dairy.\n")
    (mine / "broken.yaml").write_text("name: Dairy\ntags:\n  team: a: b\n")
    flags, grid = (["-m"], ["model.max_depth=3,6"]) if multirun else ([], [])
    unnamed = sweeplab(*flags, "--config-dir", str(tmp_path / "mine"), "experiment=unnamed",
                       *grid, cwd=tmp_path)  # fmt: skip
    assert unnamed.returncode == 2
    assert unnamed.stderr == (
        "sweeplab: error: experiment.name is not set: config file "
        f"'{tmp_path / 'mine' / 'experiment' / 'unnamed.yaml'}' has no `name:` (add it there, "
        "or experiment.name=... on the command line)\n"
    )
    broken = sweeplab(*flags, "--config-dir", str(tmp_path / "mine"), "experiment=broken",
                      *grid, cwd=tmp_path)  # fmt: skip
    assert broken.returncode == 2
    assert broken.stderr == (
        f"sweeplab: error: config file '{mine / 'broken.yaml'}' line 3, column 10 is not valid "
        "YAML: mapping values are not allowed here\n"
    )
    assert not (tmp_path / "outputs" / "mlflow.db").exists()


def test_a_primary_config_of_the_users_own_is_found_in_config_dir(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "dairy.yaml").write_text(
        "defaults:\n  - config\n  - override model: ridge\n  - _self_\n"
        "experiment:\n  name: Dairy_Models\n"
    )
    done = sweeplab("--config-dir", str(tmp_path / "mine"), "--config-name", "dairy",
                    "model.alpha=2.0", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/outputs/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("Dairy_Models").experiment_id])
    assert run.data.params["model"] == "ridge"
    assert run.data.params["alpha"] == "2.0"
    typo = sweeplab("--config-dir", str(tmp_path / "mine"), "--config-name", "dairy",
                    "model.alpah=2.0", cwd=tmp_path)  # fmt: skip
    assert typo.returncode == 2
    assert "model.alpah='2.0' is not allowed: unknown hyperparameter of" in typo.stderr


@pytest.mark.fresh_store
def test_help_shows_what_to_pick_and_the_values_a_run_would_use(tmp_path):
    secret_uri = "http://sweeper:hunter2@127.0.0.1:5999"
    done = sweeplab("--help", "model=ridge", "model.alpha=3", cwd=tmp_path,
                    env={"MLFLOW_TRACKING_URI": secret_uri})  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "model: gradient_boosting, hist_gradient_boosting, lightgbm" in out
    assert "[now: ridge]" in out
    # Where and how a sweep runs, which Hydra's own --help leaves to --hydra-help.
    assert "hydra/launcher (where a sweep's jobs run): basic, joblib, ray" in out
    assert "hydra/sweeper (how a sweep picks its jobs' values): basic" in out
    assert "hydra/sweeper/pruner (stop hopeless Optuna trials between folds): median, none," in out
    # Names no config file lists: bundled datasets, metrics, and the other command.
    assert (
        "dataset.name (with dataset=sklearn): diabetes (regression), iris (classification)" in out
    )
    assert "sweep.metric: regression: mae, mse, rmse, r2; classification: accuracy," in out
    assert "(sweeplab-tools --help)" in out
    # Resolved values, the command line's included; no interpolations, no password.
    assert "  alpha: 3" in out
    assert "uri: http://***@127.0.0.1:5999" in out
    assert "${" not in out and "hunter2" not in out
    assert not (tmp_path / "outputs").exists()
    bad = sweeplab("--help", "model=nope", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("sweeplab: error: model='nope' is not allowed: must be one of")
    # A broken file of the user's reads as it does for a run: file, line and column.
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "broken.yaml").write_text("name: x\ntags:\n  a: b: c\n")
    broken = sweeplab("--help", "--config-dir", str(tmp_path / "mine"), "experiment=broken",
                      cwd=tmp_path)  # fmt: skip
    assert broken.returncode == 2
    assert broken.stderr == (
        f"sweeplab: error: config file '{tmp_path / 'mine' / 'experiment' / 'broken.yaml'}' "
        "line 3, column 7 is not valid YAML: mapping values are not allowed here\n"
    )


def test_experiments_command_runs_the_tutorials_tag_search(tmp_path):
    assert sweeplab("model=ridge", cwd=tmp_path).returncode == 0
    found = sweeplab_tools(
        "experiments", "tags.`project_name` = 'grocery-forecasting'", cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    assert "1 experiment(s)" in found.stdout
    assert "Apple_Models" in found.stdout
    assert "project_name=grocery-forecasting" in found.stdout
    none = sweeplab_tools("experiments", "tags.`project_name` = 'bakery'", cwd=tmp_path)
    assert "0 experiment(s)" in none.stdout
    bad = sweeplab_tools("experiments", "project is apples", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith(
        "sweeplab-tools: error: cannot search with filter 'project is apples'"
    )
    assert "Traceback" not in bad.stderr


@pytest.mark.fresh_store
def test_experiments_command_refuses_what_it_cannot_search(tmp_path):
    def tools(*args):
        return sweeplab_tools("experiments", *args, cwd=tmp_path)

    missing = tools()
    assert missing.returncode == 2
    assert "no store at sqlite:///" in missing.stderr
    assert not (tmp_path / "outputs").exists()

    unknown = tools("--tracking", "cloud")
    assert unknown.returncode == 2
    assert "invalid choice: 'cloud'" in unknown.stderr

    not_a_store = tools("--tracking-uri", "mlruns")
    assert not_a_store.returncode == 2
    assert "tracking.uri='mlruns' is not allowed: must be a database URI" in not_a_store.stderr

    odd_but_valid = tools("--tracking-uri", f"sqlite:///{tmp_path}/a=b.db")
    assert "no store at sqlite:///" in odd_but_valid.stderr
    assert "Traceback" not in missing.stderr + not_a_store.stderr + odd_but_valid.stderr


def test_version_names_sweeplab_and_what_it_runs_on(tmp_path):
    done = sweeplab("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith(f"sweeplab {sweeplab_package.__version__} (hydra-core 1.3")


def test_models_of_an_extra_not_installed_are_named_with_it_and_not_offered(tmp_path, monkeypatch):
    from sweeplab.model.estimators import shipped_for
    from sweeplab.model.tasks import TASKS

    found = importlib.util.find_spec
    missing = {"lightgbm", "xgboost"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else found(name, *a)
    )
    assert shipped_for(TASKS["regression"]) == [
        "gradient_boosting", "hist_gradient_boosting", "random_forest", "ridge"
    ]  # fmt: skip
    done = sweeplab("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "lightgbm (extra: lightgbm)" in done.stdout
    assert "xgboost (extra: xgboost)" in done.stdout
    assert (
        "(extra: NAME): not installed; pip install 'sweeplab[NAME]' (in sweeplab's checkout: "
        "make install EXTRAS=NAME)"
    ) in " ".join(done.stdout.split())  # wrapped to the help's width
